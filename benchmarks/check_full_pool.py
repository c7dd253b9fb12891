"""Recompute per-setting MAP, MRR@10, R@1 and R@10 from the exact ranks, independently of
xeval's metric engine, and print the largest difference to ``RUN_DIR/eval`` per metric and kind.

    python benchmarks/check_full_pool.py RUN_DIR BENCH_DIR [--tol 3e-3]
    python benchmarks/check_full_pool.py RUN_DIR BENCH_DIR --recompute MODEL_DIR

With ``--recompute``, the exact ranks themselves are recomputed without any xeval code:
plain sentence-transformers ``encode`` in fp32 with the model's ``query``/``passage``
prompts, every query against the setting's whole corpus with NumPy, the tie rule (score
descending, then doc_id descending) applied by counting. Compare with an fp32 run.

For every setting with ``RUN_DIR/ranks/<setting>.parquet`` (the exact rank of every relevant
item over the setting's whole corpus), each query's values come from its sorted relevant
ranks with plain Python: AP = mean over the relevant items of (position among them / rank),
RR@10 = 1 / best rank if <= 10, R@k = share of relevant items ranked <= k. The relevant items
are read from the benchmark's qrels (relevance > 0) for the setting's queries and document
languages, so a ranks file that misses one is caught. Exit status 1 when a difference exceeds
``--tol`` (ties between duplicate texts are the only expected source of difference).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

METRICS = ("MAP", "MRR@10", "R@1", "R@10")


def per_query(ranks: list[int], n_rel: int) -> dict[str, float]:
    """The four values of one query from its relevant items' exact ranks."""
    ranks = sorted(ranks)
    ap = sum((i + 1) / r for i, r in enumerate(ranks)) / n_rel
    return {
        "MAP": ap,
        "MRR@10": 1.0 / ranks[0] if ranks and ranks[0] <= 10 else 0.0,
        "R@1": sum(r <= 1 for r in ranks) / n_rel,
        "R@10": sum(r <= 10 for r in ranks) / n_rel,
    }


def relevant_items(bench: Path) -> tuple[dict[str, set[str]], dict[str, str]]:
    """query -> relevant docs, doc -> language (from the benchmark)."""
    rel: dict[str, set[str]] = defaultdict(set)
    for row in pq.read_table(bench / "qrels.parquet").to_pylist():
        if row["relevance"] > 0:
            rel[row["query_id"]].add(row["doc_id"])
    corpus = pq.read_table(bench / "corpus.parquet", columns=["doc_id", "lang"]).to_pylist()
    return rel, {r["doc_id"]: r["lang"] for r in corpus}


def setting_values(
    rundir: Path, setting: str, langs: set[str] | None, rel, doc_lang
) -> dict[str, float]:
    """Mean of each metric over the setting's queries, from ranks/<setting>.parquet.

    ``langs``: the setting's document languages (None: all, a multi setting).
    """
    rows = pq.read_table(rundir / "ranks" / f"{setting}.parquet").to_pylist()
    by_query: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        by_query[r["query_id"]][r["doc_id"]] = int(r["rank"])
    sums = dict.fromkeys(METRICS, 0.0)
    n = 0
    for q in by_query:
        wanted = {d for d in rel[q] if langs is None or doc_lang[d] in langs}
        lacking = wanted - set(by_query[q])
        if lacking:
            raise SystemExit(f"{setting}: no exact rank for relevant {sorted(lacking)[:3]} of {q}")
        vals = per_query([by_query[q][d] for d in wanted], len(wanted))
        for m in METRICS:
            sums[m] += vals[m]
        n += 1
    return {m: sums[m] / n for m in METRICS} if n else {}


def recompute_ranks(bench: Path, model_dir: str, settings: list[str], rel) -> dict:
    """setting -> query -> relevant doc -> exact rank, from a fresh fp32 encoding."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model_dir, device="cpu")
    corpus = pq.read_table(bench / "corpus.parquet", columns=["doc_id", "lang", "text"])
    queries = pq.read_table(bench / "queries.parquet", columns=["query_id", "lang", "text"])
    c, q = corpus.to_pydict(), queries.to_pydict()
    enc = dict(batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    dvec = st.encode(c["text"], prompt=st.prompts["passage"], show_progress_bar=True, **enc)
    qvec = st.encode(q["text"], prompt=st.prompts["query"], show_progress_bar=True, **enc)
    dids, dl = np.array(c["doc_id"]), np.array(c["lang"])
    qrow = {qid: i for i, qid in enumerate(q["query_id"])}
    qlang = dict(zip(q["query_id"], q["lang"], strict=True))
    out: dict = {}
    for s in settings:
        kind, *langs = s.split("-")
        pool = np.ones(len(dids), bool) if kind == "multi" else dl == langs[-1]
        pd, pv = dids[pool], dvec[pool]
        pos = {d: i for i, d in enumerate(pd)}
        qs = [x for x in qrow if qlang[x] == langs[0] and any(d in pos for d in rel[x])]
        scores = qvec[[qrow[x] for x in qs]] @ pv.T
        out[s] = {}
        for i, x in enumerate(qs):
            row = scores[i]
            out[s][x] = {}
            for d in (d for d in rel[x] if d in pos):
                sd = row[pos[d]]
                ties = int(((row == sd) & (pd > d)).sum())
                out[s][x][d] = 1 + int((row > sd).sum()) + ties
    return out


def values_from(ranks: dict, langs: set[str] | None, rel, doc_lang) -> dict[str, float]:
    """Mean of each metric over the queries of one setting's recomputed ranks."""
    sums, n = dict.fromkeys(METRICS, 0.0), 0
    for q, by_doc in ranks.items():
        wanted = {d for d in rel[q] if langs is None or doc_lang[d] in langs}
        vals = per_query([by_doc[d] for d in wanted], len(wanted))
        for m in METRICS:
            sums[m] += vals[m]
        n += 1
    return {m: sums[m] / n for m in METRICS} if n else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rundir", type=Path)
    ap.add_argument("bench", type=Path)
    ap.add_argument("--tol", type=float, default=3e-3)
    ap.add_argument("--recompute", metavar="MODEL_DIR", help="recompute the ranks (see above)")
    args = ap.parse_args()
    rel, doc_lang = relevant_items(args.bench)
    recorded: dict[str, dict[str, float | None]] = defaultdict(dict)
    where: dict[str, tuple[str, str]] = {}
    for r in pq.read_table(args.rundir / "eval" / "per_setting.parquet").to_pylist():
        recorded[r["setting"]][r["metric"]] = r["value"]
        where[r["setting"]] = (r["kind"], r["doc_lang"])
    settings = json.loads((args.rundir / "run.json").read_text())["settings"]
    fresh = recompute_ranks(args.bench, args.recompute, settings, rel) if args.recompute else None
    worst: dict[tuple[str, str], tuple[float, str]] = {}
    skipped = []
    for s in settings:
        if fresh is None and not (args.rundir / "ranks" / f"{s}.parquet").is_file():
            skipped.append(s)
            continue
        kind, dlang = where[s]
        langs = None if kind == "multi" else set(dlang.split("+"))
        if fresh is not None:
            mine = values_from(fresh[s], langs, rel, doc_lang)
        else:
            mine = setting_values(args.rundir, s, langs, rel, doc_lang)
        for m, v in mine.items():
            got = recorded[s].get(m)
            diff = float("inf") if got is None else abs(got - v)
            key = (kind, m)
            if diff > worst.get(key, (-1.0, ""))[0]:
                worst[key] = (diff, s)
    print(f"{'kind':6s} {'metric':7s} {'max |diff|':>11s}  worst setting")
    for (kind, m), (d, s) in sorted(worst.items()):
        print(f"{kind:6s} {m:7s} {d:11.2e}  {s}")
    if skipped:
        print(f"no ranks/ file, not checked: {len(skipped)} settings (e.g. {skipped[0]})")
    bad = [k for k, (d, _) in worst.items() if d > args.tol]
    print("OK" if not bad else f"FAIL: {bad} exceed {args.tol}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Recompute per-setting MAP, MRR@10, R@1 and R@10 from the exact ranks, independently of
xeval's metric engine, and print the largest difference to ``RUN_DIR/eval`` per metric and kind.

    python benchmarks/check_full_pool.py RUN_DIR BENCH_DIR [--tol 3e-3]

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rundir", type=Path)
    ap.add_argument("bench", type=Path)
    ap.add_argument("--tol", type=float, default=3e-3)
    args = ap.parse_args()
    rel, doc_lang = relevant_items(args.bench)
    recorded: dict[str, dict[str, float | None]] = defaultdict(dict)
    where: dict[str, tuple[str, str]] = {}
    for r in pq.read_table(args.rundir / "eval" / "per_setting.parquet").to_pylist():
        recorded[r["setting"]][r["metric"]] = r["value"]
        where[r["setting"]] = (r["kind"], r["doc_lang"])
    settings = json.loads((args.rundir / "run.json").read_text())["settings"]
    worst: dict[tuple[str, str], tuple[float, str]] = {}
    skipped = []
    for s in settings:
        if not (args.rundir / "ranks" / f"{s}.parquet").is_file():
            skipped.append(s)
            continue
        kind, dlang = where[s]
        langs = None if kind == "multi" else set(dlang.split("+"))
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

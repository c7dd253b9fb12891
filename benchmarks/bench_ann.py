"""ANN quality: usearch HNSW against exact search on real multilingual-e5-small embeddings.

Encodes the ``ddtp-pool`` benchmark at ``--size`` passages (real DDTP text, 14 languages;
through the embedding cache, so a rerun encodes nothing) with ``--model``, then, as
``xeval run`` does for mono and cross settings, builds one HNSW index per document
language and searches it with the queries of every query language. For each point of
the grid (connectivity x expansion_search x dtype; expansion_add fixed) it prints:

- recall@k of the HNSW top-k against the exact top-k (same tie rule, exact rescoring),
  overall and per document language (the pool searched);
- the MRR@10 of every (query language, document language) setting with the benchmark's
  judgements, exact and HNSW, and their mean difference;
- build and search seconds (per grid point, summed over the pools).

The exact peer is :func:`xeval.retrieval.search.exact_search` in the same process.

    nice -n 10 python benchmarks/bench_ann.py --size 20000 --work /tmp/xeval-ann
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("XEVAL_SOURCES") or REPO.parent / "shared" / "data")
sys.path.insert(0, str(REPO))


def encode(args, bench):
    """Normalised query and passage vectors (through the embedding cache)."""
    from benchmarks.bench_search import model_and_info
    from xeval.precision import resolve_dtype, set_threads
    from xeval.retrieval.cache import EmbeddingCache
    from xeval.retrieval.encode import default_prompts, encode_texts, normalize

    set_threads(args.threads)
    st, info = model_and_info(args.model)
    prec = resolve_dtype(args.dtype, "cpu")
    prompts = default_prompts(st)
    out = []
    for what, table in (("query", bench.queries), ("passage", bench.corpus)):
        cache = EmbeddingCache(args.work / "cache", info["fingerprint"], prompts[what], prec.name)
        vec, stats = encode_texts(st, table["text"].to_list(), cache=cache, prompt=prompts[what],
                                  precision=prec, batch_size=32, progress=False)  # fmt: skip
        print(f"{what}: {stats}", file=sys.stderr)
        out.append(normalize(vec))
    return out[0], out[1], prec.name


def mrr10(top: np.ndarray, qids: list[str], dids: np.ndarray, rel: set[tuple[str, str]]) -> float:
    rr = []
    for q, row in zip(qids, top[:, :10], strict=True):
        hit = next((i for i, d in enumerate(dids[row]) if (q, d) in rel), None)
        rr.append(0.0 if hit is None else 1.0 / (hit + 1))
    return float(np.mean(rr)) if rr else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--model", default="multilingual-e5-small")
    ap.add_argument("--dtype", default="auto", help="encoding precision (xeval run's --dtype)")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--connectivity", default="8,16,32")
    ap.add_argument("--expansion-search", default="100,256,512,auto",
                    help="beams, comma-separated; auto = xeval's default by pool size")  # fmt: skip
    ap.add_argument("--index-dtypes", default="f32,f16,i8")
    ap.add_argument("--work", type=Path, default=Path("/tmp/xeval-ann"))
    args = ap.parse_args()
    from xeval.benchmark.builders.ddtp_pool import build_ddtp_pool
    from xeval.retrieval.search import HnswIndex, exact_search, tie_ranks

    args.work.mkdir(parents=True, exist_ok=True)
    bench = build_ddtp_pool(DATA / "ddtp", size=args.size, queries=args.queries)
    t0 = time.perf_counter()
    qvec, dvec, prec = encode(args, bench)
    enc_s = time.perf_counter() - t0
    corpus, queries = bench.corpus, bench.queries
    dids, dlang = corpus["doc_id"].to_numpy(), corpus["lang"].to_numpy()
    qids = queries["query_id"].to_list()
    rel = set(bench.qrels.filter(pl.col("relevance") > 0).select("query_id", "doc_id").iter_rows())
    langs = sorted(set(dlang))
    pools = {y: np.flatnonzero(dlang == y) for y in langs}
    pools = {y: p for y, p in pools.items() if len(p) > args.k}
    tie = {y: tie_ranks(dids[p].astype(object)) for y, p in pools.items()}
    exact = {y: exact_search(qvec, dvec[p], args.k, tie[y]).indices for y, p in pools.items()}
    mrr_exact = {y: mrr10(exact[y], qids, dids[p], rel) for y, p in pools.items()}
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; model {args.model} ({prec}); "
          f"{corpus.height} passages, {len(qids)} queries, encoded in {enc_s:.0f} s; "
          f"pools: {', '.join(f'{y} {len(p)}' for y, p in pools.items())}")  # fmt: skip
    print(f"| connectivity | expansion_search | dtype | recall@{args.k} | min recall (pool) "
          "| MRR@10 exact | MRR@10 hnsw | change | build s | search s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    grid = itertools.product(
        [int(x) for x in args.connectivity.split(",")], args.index_dtypes.split(",")
    )
    for conn, dt in grid:
        built, build_s = {}, 0.0
        for y, p in pools.items():  # one build per (connectivity, dtype); ef varies below
            t = time.perf_counter()
            built[y] = HnswIndex(dvec[p], connectivity=conn, dtype=dt)
            build_s += time.perf_counter() - t
        for ef in args.expansion_search.split(","):
            point(args, conn, ef, dt, built, build_s, exact, pools, tie, qvec, qids, dids, rel,
                  mrr_exact)  # fmt: skip


def point(args, conn, ef, dt, built, build_s, exact, pools, tie, qvec, qids, dids, rel, mrr_exact):
    """One grid point: recall@k per pool and overall, MRR@10 exact vs HNSW.

    ``ef`` "auto": each pool's beam from :func:`xeval.retrieval.search.auto_expansion`.
    """
    from xeval.retrieval.search import auto_expansion

    hits = total = 0
    per, m_h, search_s = {}, {}, 0.0
    for y, p in pools.items():
        idx = built[y]
        idx.params["expansion_search"] = auto_expansion(len(p)) if ef == "auto" else int(ef)
        t = time.perf_counter()
        top = idx.search(qvec, args.k, tie[y]).indices
        search_s += time.perf_counter() - t
        h = sum(len(np.intersect1d(a, b)) for a, b in zip(top, exact[y], strict=True))
        per[y] = h / exact[y].size
        hits, total = hits + h, total + exact[y].size
        m_h[y] = mrr10(top, qids, dids[p], rel)
    me, mh = np.mean(list(mrr_exact.values())), np.mean(list(m_h.values()))
    worst = min(per, key=per.get)
    print(f"| {conn} | {ef} | {dt} | {hits / total:.4f} | {per[worst]:.4f} ({worst}) | "
          f"{me:.4f} | {mh:.4f} | {mh - me:+.4f} | {build_s:.1f} | {search_s:.1f} |",
          flush=True)  # fmt: skip
    print("    per pool: " + ", ".join(f"{y} {v:.4f}" for y, v in per.items()), flush=True)


if __name__ == "__main__":
    main()

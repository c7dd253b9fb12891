"""Scale benchmark: ``xeval run`` + ``xeval evaluate`` end to end on 10k / 100k / 1M passages.

Builds the ``ddtp-pool`` benchmark (real DDTP text, 14 languages) at each ``--sizes``
(nested seeded samples sharing queries and judgements), builds the tiny test model, then
per size runs, each as its own process under ``/usr/bin/time -v`` (wall time and peak
resident memory of that process):

1. ``exact`` with the embedding cache as the previous sizes left it (this run encodes the
   passages new at this size: the cold row);
2. ``hnsw`` (every mono / cross setting through usearch; multi settings rank exactly):
   builds the HNSW indexes and stores them next to the cache;
3. ``hnsw`` again: the stored indexes are reused;
4. ``exact`` again, warm: the peer of rows 2 and 3.

and ``xeval evaluate`` after each. Prints one Markdown row per run (wall, peak RSS, the
run's own encode / search seconds from run.json) and the HNSW/exact ratios, plus the
recall@k of the HNSW runs against the exact run (mono and cross settings).

    nice -n 10 python benchmarks/bench_scale.py --sizes 10000,100000,1000000 --work /tmp/scale
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("XEVAL_SOURCES") or REPO.parent / "shared" / "data")
sys.path.insert(0, str(REPO))


# run name -> backend, in the order measured (the cold run fills the cache, the build the index)
RUNS = {"exact-cold": "exact", "hnsw-build": "hnsw", "hnsw-reuse": "hnsw", "exact-warm": "exact"}


def timed(cmd: list[str], log: Path) -> dict[str, float]:
    """Run ``cmd`` under ``/usr/bin/time -v``; wall seconds and peak RSS (MiB)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=REPO, env=env, text=True,
                          capture_output=True)  # fmt: skip
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    h, m, s = (float(x) if x else 0.0 for x in wall.groups())
    return {"wall_s": h * 3600 + m * 60 + s, "peak_mib": rss / 1024}


def bench_dir(work: Path, size: int, queries: int) -> Path:
    from xeval.benchmark.builders.ddtp_pool import build_ddtp_pool

    out = work / f"pool-{size}"
    if not out.exists():
        build_ddtp_pool(DATA / "ddtp", size=size, queries=queries).save(out)
    return out


def recall(exact: Path, approx: Path, k: int) -> float:
    """Mean over mono / cross settings and queries of |top-k(approx) & top-k(exact)| / k."""
    hits = total = 0
    for f in sorted((exact / "runs").glob("*.parquet")):
        if f.name.startswith("multi"):
            continue
        a = pl.read_parquet(f).filter(pl.col("rank") <= k).select("query_id", "doc_id")
        b = pl.read_parquet(approx / "runs" / f.name).filter(pl.col("rank") <= k)
        hits += a.join(b.select("query_id", "doc_id"), on=["query_id", "doc_id"]).height
        total += a.height
    return hits / max(total, 1)


def one_run(args, model: Path, bench: Path, out: Path, backend: str, logs: Path) -> dict:
    py = [sys.executable, "-m", "xeval"]
    run = [*py, "run", "-m", str(model), "-b", str(bench), "-o", str(out), "--backend", backend,
           "--k", str(args.k), "--cache-dir", str(args.work / "cache"), "--threads",
           str(args.threads), "--overwrite", "-q"]  # fmt: skip
    r = timed(run, logs / f"{out.name}.run.log")
    e = timed([*py, "evaluate", str(out)], logs / f"{out.name}.eval.log")
    meta = json.loads((out / "run.json").read_text())
    return {
        **r,
        "eval_wall_s": e["wall_s"],
        "eval_peak_mib": e["peak_mib"],
        "encoded": meta["encoding"]["passages"]["encoded"],
        "encode_s": meta["timings_s"]["encode"],
        "search_s": meta["timings_s"]["search"],
    }


def search_stage(n: int, nq: int, dim: int, backend: str, k: int) -> None:
    """One process: the search stage of a setting over ``n`` random unit vectors (JSON out)."""
    import time

    import numpy as np

    from xeval.retrieval.encode import normalize
    from xeval.retrieval.index_store import stored_index
    from xeval.retrieval.search import exact_search, pair_ranks, tie_ranks

    rng = np.random.default_rng(0)
    docs = normalize(rng.standard_normal((n, dim), dtype=np.float32))
    q = normalize(rng.standard_normal((nq, dim), dtype=np.float32))
    tie = tie_ranks(np.array([f"d{i:08d}" for i in range(n)], dtype=object))
    pairs = (np.arange(nq), rng.integers(0, n, nq))
    t0 = time.perf_counter()
    if backend == "exact":
        exact_search(q, docs, k, tie, pairs=pairs)
        out = {"build_s": 0.0, "search_s": time.perf_counter() - t0}
    else:
        index = stored_index(docs, None, {})
        t1 = time.perf_counter()
        index.search(q, k, tie)
        t2 = time.perf_counter()
        pair_ranks(q, docs, tie, *pairs)
        out = {"build_s": t1 - t0, "search_s": t2 - t1, "ranks_s": time.perf_counter() - t2}
    print(json.dumps(out))


def search_only(args) -> None:
    """Random unit vectors at each size, exact vs HNSW, each in its own timed process."""
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    print("| docs | backend | build s | search s | exact ranks s | process wall s | peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        for backend in ("exact", "hnsw"):
            cmd = [sys.executable, __file__, "--stage", backend, "--sizes", str(size),
                   "--queries", str(args.queries), "--k", str(args.k)]  # fmt: skip
            log = logs / f"stage-{size}-{backend}.log"
            t = timed(cmd, log)
            r = json.loads(log.read_text().splitlines()[0])
            print(f"| {size} | {backend} | {r['build_s']:.1f} | {r['search_s']:.1f} | "
                  f"{r.get('ranks_s', 0.0):.1f} | {t['wall_s']:.1f} | {t['peak_mib']:.0f} |",
                  flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=100, help="packages asked (x 6 languages)")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/xeval-scale"))
    ap.add_argument("--search-only", action="store_true",
                    help="the search stage alone on random unit vectors (dim 64)")  # fmt: skip
    ap.add_argument("--runs", default=",".join(RUNS),
                    help="which of the four runs to (re)measure; the others are read from "
                    "WORK/scale.json when recorded there")  # fmt: skip
    ap.add_argument("--stage", choices=["exact", "hnsw"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        return search_stage(int(args.sizes), args.queries, 64, args.stage, args.k)
    if args.search_only:
        return search_only(args)
    from xeval.models.tiny import build_tiny_model

    args.work.mkdir(parents=True, exist_ok=True)
    logs = args.work / "logs"
    logs.mkdir(exist_ok=True)
    model = args.work / "tiny"
    if not model.exists():
        build_tiny_model(model)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; torch threads {args.threads}")
    print("| docs | run | backend | encoded | encode s | search s | run wall s | run peak MiB "
          "| evaluate s | evaluate peak MiB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    store = args.work / "scale.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    wanted = args.runs.split(",")
    for size in (int(s) for s in args.sizes.split(",")):
        bench = bench_dir(args.work, size, args.queries)
        rows = results.get(str(size), {})
        for name, backend in RUNS.items():
            if name not in wanted:
                continue
            out = args.work / f"run-{size}-{name}"
            rows[name] = r = one_run(args, model, bench, out, backend, logs)
            print(f"| {size} | {name} | {backend} | {r['encoded']} | {r['encode_s']:.1f} | "
                  f"{r['search_s']:.1f} | {r['wall_s']:.1f} | {r['peak_mib']:.0f} | "
                  f"{r['eval_wall_s']:.1f} | {r['eval_peak_mib']:.0f} |", flush=True)  # fmt: skip
        ex = args.work / f"run-{size}-exact-warm"
        rows["recall"] = recall(ex, args.work / f"run-{size}-hnsw-reuse", args.k)
        w = rows["exact-warm"]
        for name in ("hnsw-build", "hnsw-reuse"):
            if not {name, "exact-warm"} <= set(wanted):
                continue  # a ratio only between rows of this invocation (same load)
            h = rows[name]
            print(f"<!-- {size}: {name}/exact-warm search {h['search_s'] / w['search_s']:.2f}, "
                  f"wall {h['wall_s'] / w['wall_s']:.2f}, peak {h['peak_mib'] / w['peak_mib']:.2f}"
                  " -->")  # fmt: skip
        print(f"<!-- {size}: recall@{args.k} hnsw vs exact (mono+cross) {rows['recall']:.4f} -->")
        results[str(size)] = rows
        store.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

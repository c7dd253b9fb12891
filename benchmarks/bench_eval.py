"""Evaluation speed, whole process: xeval vs pytrec_eval vs ranx on a 10k-query × 100-doc run.

Each tool runs in a fresh Python process that reads the run and the qrels from disk, scores
MRR@10, R@100, nDCG@10 and MAP per query and prints the means; the timing is the wall clock
of the whole process (interpreter start, imports, reading, scoring). One untimed warm-up
per tool first (numba cache for ranx, OS file cache for all), then ``--repeats`` timed runs;
the median is reported with ratios against pytrec_eval measured in the same run.

    python benchmarks/bench_eval.py [--queries 10000] [--docs 100] [--repeats 5]
                                    [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent

# Each snippet prints {"MRR@10": mean, "R@100": ..., "nDCG@10": ..., "MAP": ...} as JSON.
SNIPPETS = {
    "xeval (TREC)": """
import json, sys
import polars as pl
from xeval.metrics import read_trec_qrels, read_trec_run, score, validate_run
run = validate_run(read_trec_run(sys.argv[1]))
qrels = read_trec_qrels(sys.argv[2])
v = score(run, qrels, "MRR@10 R@100 nDCG@10 MAP")
print(json.dumps(dict(v.group_by("metric").agg(v=pl.col("value").mean()).iter_rows())))
""",
    "xeval (Parquet)": """
import json, sys
import polars as pl
from xeval.metrics import score, validate_run
run = validate_run(pl.read_parquet(sys.argv[3]))
qrels = pl.read_parquet(sys.argv[4])
v = score(run, qrels, "MRR@10 R@100 nDCG@10 MAP")
print(json.dumps(dict(v.group_by("metric").agg(v=pl.col("value").mean()).iter_rows())))
""",
    "pytrec_eval": """
import json, sys
import pytrec_eval
with open(sys.argv[1]) as f:
    run = pytrec_eval.parse_run(f)
with open(sys.argv[2]) as f:
    qrels = pytrec_eval.parse_qrel(f)
ev = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank", "recall_100", "ndcg_cut_10", "map"})
res = ev.evaluate(run)
n = len(qrels)  # queries the run lacks score 0
rr10 = sum(v["recip_rank"] for v in res.values() if v["recip_rank"] >= 0.1 - 1e-12)
print(json.dumps({"MRR@10": rr10 / n,
                  "R@100": sum(v["recall_100"] for v in res.values()) / n,
                  "nDCG@10": sum(v["ndcg_cut_10"] for v in res.values()) / n,
                  "MAP": sum(v["map"] for v in res.values()) / n}))
""",
    "ranx": """
import json, sys
from ranx import Qrels, Run, evaluate
qrels = Qrels.from_file(sys.argv[2], kind="trec")
run = Run.from_file(sys.argv[1], kind="trec")
m = evaluate(qrels, run, ["mrr@10", "recall@100", "ndcg@10", "map"], make_comparable=True)
print(json.dumps({"MRR@10": m["mrr@10"], "R@100": m["recall@100"], "nDCG@10": m["ndcg@10"],
                  "MAP": m["map"]}))
""",
}


def make_data(folder: Path, n_queries: int, n_docs: int, seed: int = 0) -> list[str]:
    """A synthetic run (distinct random scores) and qrels (1-3 relevant per query, some
    unretrieved), as TREC text and Parquet. Returns the four paths."""
    rng = np.random.default_rng(seed)
    pool = 1_000_000
    q = np.repeat(np.arange(n_queries), n_docs)
    docs = np.concatenate([rng.choice(pool, n_docs, replace=False) for _ in range(n_queries)])
    scores = rng.random(n_queries * n_docs)
    run = pl.DataFrame(
        {
            "query_id": pl.Series([f"q{i:06d}" for i in q]),
            "doc_id": pl.Series([f"d{d:07d}" for d in docs]),
            "score": scores,
        }
    )
    n_rel = rng.integers(1, 4, n_queries)
    qrows = []
    for i in range(n_queries):
        base = i * n_docs
        for _ in range(n_rel[i]):
            if rng.random() < 0.8:  # retrieved somewhere in the top 100
                d = docs[base + rng.integers(0, n_docs)]
            else:
                d = rng.integers(0, pool)
            qrows.append((f"q{i:06d}", f"d{d:07d}", 1))
    qrels = pl.DataFrame(
        qrows,
        schema={"query_id": pl.String, "doc_id": pl.String, "relevance": pl.Int32},
        orient="row",
    ).unique(["query_id", "doc_id"], keep="first", maintain_order=True)
    from xeval.benchmark.schema import write_trec_qrels
    from xeval.metrics import write_trec_run

    paths = [
        folder / "run.trec",
        folder / "qrels.trec",
        folder / "run.parquet",
        folder / "qrels.parquet",
    ]
    write_trec_run(run, paths[0], tag="synthetic")
    write_trec_qrels(qrels, paths[1])
    run.write_parquet(paths[2])
    qrels.write_parquet(paths[3])
    return [str(p) for p in paths]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_tool(code: str, args: list[str], env: dict[str, str]) -> tuple[float, float, dict]:
    """Wall time and CPU time (user + sys) of one whole process, and the means it printed."""
    cpu = _children_cpu()
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    elapsed = time.perf_counter() - t
    if out.returncode:
        raise SystemExit(f"tool failed:\n{out.stderr}")
    return elapsed, _children_cpu() - cpu, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tools", default=",".join(SNIPPETS), help="comma-separated subset")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    env = {**os.environ}
    env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))
    tools = [t.strip() for t in args.tools.split(",")]
    load_before = os.getloadavg()  # 1, 5, 15 min: the machine may be shared
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_data(Path(tmp), args.queries, args.docs)
        lines = Path(paths[0]).read_bytes().count(b"\n")
        print(
            f"run: {args.queries} queries x {args.docs} docs = {lines} lines; "
            f"{args.repeats} timed runs per tool after one warm-up"
        )
        for tool in tools:  # warm-up: numba cache (ranx), OS file cache, .pyc files
            run_tool(SNIPPETS[tool], paths, env)
        times: dict[str, list[float]] = {t: [] for t in tools}
        cpus: dict[str, list[float]] = {t: [] for t in tools}
        means: dict[str, dict] = {}
        for _ in range(args.repeats):  # round-robin, so load changes hit every tool alike
            for tool in tools:
                elapsed, cpu, means[tool] = run_tool(SNIPPETS[tool], paths, env)
                times[tool].append(elapsed)
                cpus[tool].append(cpu)
        for tool in tools:
            med = statistics.median(times[tool])
            results[tool] = {
                "median_s": med,
                "min_s": min(times[tool]),
                "median_cpu_s": statistics.median(cpus[tool]),
                "times_s": times[tool],
                "cpu_s": cpus[tool],
                "means": means[tool],
            }
            print(
                f"  {tool:16s} median {med:6.2f} s wall, {results[tool]['median_cpu_s']:6.2f} s "
                f"CPU (min wall {min(times[tool]):.2f})",
                flush=True,
            )
    ref = results.get("pytrec_eval", {}).get("median_s")
    ref_cpu = results.get("pytrec_eval", {}).get("median_cpu_s")
    agree = {}
    if "pytrec_eval" in results:
        for tool, r in results.items():
            agree[tool] = max(
                abs(r["means"][m] - results["pytrec_eval"]["means"][m]) for m in r["means"]
            )
    print("\nwhole process, medians; ratio = tool / pytrec_eval (lower is faster)")
    print(
        f"{'tool':16s} {'wall s':>7s} {'ratio':>6s} {'CPU s':>7s} {'ratio':>6s} "
        f"{'max |mean diff|':>16s}"
    )
    for tool, r in results.items():
        r["ratio_vs_pytrec_eval"] = r["median_s"] / ref if ref else None
        r["cpu_ratio_vs_pytrec_eval"] = r["median_cpu_s"] / ref_cpu if ref_cpu else None
        print(
            f"{tool:16s} {r['median_s']:7.2f} {r['ratio_vs_pytrec_eval'] or float('nan'):6.2f} "
            f"{r['median_cpu_s']:7.2f} {r['cpu_ratio_vs_pytrec_eval'] or float('nan'):6.2f} "
            f"{agree.get(tool, float('nan')):16.1e}"
        )
    from xeval.provenance import provenance, write_json

    args.out.mkdir(parents=True, exist_ok=True)
    record = provenance(
        benchmark="eval_speed",
        queries=args.queries,
        docs=args.docs,
        lines=lines,
        repeats=args.repeats,
        cpu_count=os.cpu_count(),
        load_avg_before=load_before,
        load_avg_after=os.getloadavg(),
        results=results,
        mean_agreement=agree,
    )
    write_json(args.out / "eval_speed.json", record)
    print(f"wrote {args.out / 'eval_speed.json'}")


if __name__ == "__main__":
    main()

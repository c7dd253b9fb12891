"""Whole ``xeval run`` wall time: the code of commit 81c3ef2 (before) vs this tree (after).

Runs ``python -m xeval run`` as a subprocess for each side, interleaved (before, after,
before, after, ...), on the same benchmark with the same model and default settings,
``--no-cache`` (every repeat encodes everything) and ``-q``. "Before" is a ``git worktree``
of the old commit in a temporary folder, imported through ``PYTHONPATH``. Then one more
run of this tree with ``--dtype fp32`` gives the per-setting MRR@10 agreement between
fp32 and the default (bf16 where the CPU has it): max |difference| and the settings
beyond 0.002.

Default: XQuAD-R with a seeded sample of 30 question units (330 questions) against the
full 13k-sentence corpus, or ``--languages`` to shrink it. ``--full`` takes every
question; ``--record`` appends the figures, the machine and the command to
``benchmarks/results/encode.md``. Unattended full run (about 20 minutes on an idle 2-core
machine)::

    nice .venv/bin/python benchmarks/bench_run.py --full --record
    nice .venv/bin/python benchmarks/bench_run.py --units 10 --languages en --kinds mono  # short
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BEFORE = "81c3ef2"
RESULTS = REPO / "benchmarks" / "results" / "encode.md"


def child_env(root: Path, keep_threads: bool, cache: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(root), XEVAL_CACHE=str(cache))
    if not keep_threads:  # both sides get torch's default threads unless asked otherwise
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.pop(var, None)
    return env


def xeval_run(root: Path, args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``python -m xeval run`` with the xeval of ``root``."""
    check = [sys.executable, "-c", "import xeval; print(xeval.__file__)"]
    where = subprocess.run(check, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    if not where.stdout.strip().startswith(str(root)):
        raise SystemExit(f"xeval imported from {where.stdout.strip()}, not from {root}")
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "xeval", "run", *args], env=env, cwd=cwd,
                         capture_output=True, text=True)  # fmt: skip
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode:
        raise SystemExit(f"xeval run failed ({root}):\n{res.stderr[-3000:]}")
    return wall, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


def mrr10(run_dir: Path, bench_dir: Path, languages: list[str] | None) -> dict[str, float]:
    """MRR@10 of every setting of a run directory (tie rule as written in its ranks)."""
    from xeval.benchmark.schema import load_benchmark
    from xeval.benchmark.settings import enumerate_settings

    out = {}
    for s in enumerate_settings(load_benchmark(bench_dir), languages=languages):
        f = run_dir / "runs" / f"{s.name}.parquet"
        if not f.exists():  # a setting left out by --kinds
            continue
        rel = s.qrels.filter(pl.col("relevance") > 0).select("query_id", "doc_id")
        hits = pl.read_parquet(f).filter(pl.col("rank") <= 10).join(rel, on=["query_id", "doc_id"])
        rr = hits.group_by("query_id").agg((1.0 / pl.col("rank").min()).alias("rr"))
        out[s.name] = float(rr["rr"].sum()) / len(s.query_ids)
    return out


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def machine() -> str:
    from xeval.precision import native_bf16, physical_cores

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{name}, {physical_cores()} physical cores, bf16: {native_bf16('cpu')[1]}, "
            f"load average {load:.1f} at start")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="multilingual-e5-small")
    ap.add_argument("--benchmark", type=Path, help="a built benchmark (default: build XQuAD-R)")
    ap.add_argument("--full", action="store_true", help="every XQuAD-R question")
    ap.add_argument("--units", type=int, default=30, help="question units sampled (not --full)")
    ap.add_argument("--languages", default=None, help="only these languages (comma-separated)")
    ap.add_argument("--kinds", default=None, help="only these setting kinds (comma-separated)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--before", default=BEFORE, help="the commit timed as 'before'")
    ap.add_argument("--keep-thread-env", action="store_true",
                    help="keep OMP_NUM_THREADS / MKL_NUM_THREADS for the child processes")  # fmt: skip
    ap.add_argument("--record", action="store_true", help=f"append the figures to {RESULTS}")
    ap.add_argument(
        "--keep", type=Path, help="work in this folder and keep the runs (default: temp)"
    )
    args = ap.parse_args()
    langs = args.languages.split(",") if args.languages else None
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = measure(args, langs, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp_s:
            report = measure(args, langs, Path(tmp_s))
    print(report)
    if args.record:
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write("\n" + report)
        print(f"appended to {RESULTS}")


def build(args: argparse.Namespace, tmp: Path) -> Path:
    if args.benchmark:
        return args.benchmark
    from xeval.benchmark.registry import build_benchmark

    units = None if args.full else args.units
    return build_benchmark("xquad-r", tmp / "bench", sample_queries=units, seed=0)


def measure(args: argparse.Namespace, langs: list[str] | None, tmp: Path) -> str:
    bench = build(args, tmp)
    old = tmp / "before"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(old),
                    args.before], check=True)  # fmt: skip
    try:
        return _measure(args, langs, tmp, bench, old)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)],
                       check=False)  # fmt: skip


def _measure(args, langs, tmp: Path, bench: Path, old: Path) -> str:
    common = ["-m", args.model, "-b", str(bench), "--no-cache", "-q"]
    if langs:
        common += ["--languages", ",".join(langs)]
    for kind in args.kinds.split(",") if args.kinds else []:
        common += ["--kind", kind]
    sides = {"before": old, "after": REPO}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    for i in range(args.repeats):
        for name, root in sides.items():
            env = child_env(root, args.keep_thread_env, tmp / "cache")
            out = tmp / f"{name}-{i}"
            times[name].append(xeval_run(root, [*common, "-o", str(out)], env, tmp))
            print(f"{name} #{i + 1}: wall, CPU s {times[name][-1]}", flush=True)
    fp32_out = tmp / "after-fp32"
    env = child_env(REPO, args.keep_thread_env, tmp / "cache")
    fp32_s = xeval_run(REPO, [*common, "-o", str(fp32_out), "--dtype", "fp32"], env, tmp)[0]
    return report(args, langs, bench, tmp, times, fp32_s)


def report(args, langs, bench: Path, tmp: Path, times, fp32_s: float) -> str:
    wall = {k: [w for w, _ in v] for k, v in times.items()}
    cpu = {k: [c for _, c in v] for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in wall.items()}
    meta = {k: json.loads((tmp / f"{k}-0" / "run.json").read_text()) for k in times}
    enc = {
        k: [json.loads((tmp / f"{k}-{i}" / "run.json").read_text())["timings_s"]["encode"]
            for i in range(len(wall[k]))]
        for k in times
    }  # fmt: skip
    m_fp32 = mrr10(tmp / "after-fp32", bench, langs)
    m_new = mrr10(tmp / "after-0", bench, langs)
    m_old = mrr10(tmp / "before-0", bench, langs)
    diff = {s: abs(m_new[s] - m_fp32[s]) for s in m_fp32}
    beyond = sorted(s for s, d in diff.items() if d > 0.002)
    old_vs_fp32 = max(abs(m_old[s] - m_fp32[s]) for s in m_fp32)
    prec = meta["after"]["encoding"].get("precision", {}).get("name", "?")
    cmd = " ".join(shlex.quote(a) for a in sys.argv)
    which = "every question" if args.full or args.benchmark else f"{args.units} question units"
    which += f", languages {','.join(langs)}" if langs else ""
    which += f", kinds {args.kinds}" if args.kinds else ""
    rows = [
        f"### `xeval run` before ({args.before}) vs after, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `python {cmd}`  ",
        f"Machine: {machine()}  ",
        f"Benchmark: {meta['after']['benchmark']['name']} ({which}), {len(meta['after']['settings'])} "
        f"settings; model {meta['after']['model']['label']}; default settings, --no-cache, "
        f"{args.repeats} interleaved repeat(s)",
        "",
        "| | wall s, median | wall s, each repeat | CPU s, each repeat | encode s, each repeat "
        "| search + write s | run folder MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in ("before", "after"):
        name = f"after ({prec})" if k == "after" else k
        rows.append(f"| {name} | {med[k]:.1f} | {', '.join(f'{x:.1f}' for x in wall[k])} | "
                    f"{', '.join(f'{x:.1f}' for x in cpu[k])} | "
                    f"{', '.join(f'{x:.1f}' for x in enc[k])} | "
                    f"{meta[k]['timings_s']['search']:.1f} | {size_mb(tmp / f'{k}-0'):.1f} |")  # fmt: skip
    ratio = {
        "median wall": med["after"] / med["before"],
        "best wall": min(wall["after"]) / min(wall["before"]),
        "median CPU": statistics.median(cpu["after"]) / statistics.median(cpu["before"]),
    }
    rows += [
        f"| after, --dtype fp32 | {fp32_s:.1f} | | | | | |",
        "",
        "**after / before: " + ", ".join(f"{k} {v:.2f}" for k, v in ratio.items()) + "**; "
        f"fp32 after / before (median wall) {fp32_s / med['before']:.2f}.",
        "",
        f"MRR@10 agreement, {prec} vs fp32, over {len(diff)} settings: max |difference| "
        f"{max(diff.values()):.4f}; settings beyond 0.002: {', '.join(beyond) or 'none'}. "
        f"(before vs after-fp32: max |difference| {old_vs_fp32:.4f}.)",
        "",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    main()

"""Real processes: two writers to one output, and kill -9 in the middle of every stage.

A small driver runs ``xeval`` in a subprocess and, when asked, stops at a chosen point
(just before an output is committed, between two encoding batches, after the first
checkpoint) and says so in a file, so the test can kill -9 it exactly there, or let it go
on. Re-running after the kill must give byte-for-byte the files of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, make_tiny_benchmark

from xeval.cli import main

DRIVER = r"""
import os, sys, time
from pathlib import Path

sys.path.insert(0, os.environ["XEVAL_REPO"])
mode = os.environ.get("HANG_AT", "")


def hang():
    Path(os.environ["HANG_SIGNAL"]).write_text(str(os.getpid()))
    hold = Path(os.environ.get("HANG_HOLD", "/nonexistent/never"))
    while not hold.exists():
        time.sleep(0.05)


def patch(owner, name, when):
    orig, calls = getattr(owner, name), [0]

    def wrapper(*a, **k):
        calls[0] += 1
        if when == "before" and calls[0] == 1:
            hang()
        out = orig(*a, **k)
        if when == "after" and calls[0] == 1:
            hang()
        return out

    setattr(owner, name, wrapper)


if mode == "commit":
    import xeval.provenance
    patch(xeval.provenance, "_commit", "before")
elif mode == "encode":
    from sentence_transformers import SentenceTransformer
    orig, n = SentenceTransformer.forward, [0]  # one call per encoding batch

    def forward(self, *a, **k):
        n[0] += 1
        if n[0] == 3:
            hang()
        return orig(self, *a, **k)

    SentenceTransformer.forward = forward
elif mode == "checkpoint":
    import transformers
    patch(transformers.Trainer, "_save_checkpoint", "after")

from xeval.cli import main
main(sys.argv[1:], prog_name="xeval")
"""


class Proc:
    """``xeval ARGS`` in a subprocess, optionally stopping at ``hang``."""

    def __init__(self, tmp: Path, args: list[str], hang: str = "", tag: str = "p") -> None:
        driver = tmp / "driver.py"
        driver.write_text(DRIVER)
        self.signal = tmp / f"{tag}.signal"
        self.hold = tmp / f"{tag}.hold"
        env = {
            **os.environ,
            "XEVAL_REPO": str(REPO),
            "HANG_AT": hang,
            "HANG_SIGNAL": str(self.signal),
            "HANG_HOLD": str(self.hold),
            "XEVAL_CACHE": str(tmp / "xeval-cache"),
            "OMP_NUM_THREADS": "1",
        }
        env.pop("XEVAL_DEBUG", None)
        self.p = subprocess.Popen(
            [sys.executable, str(driver), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_signal(self, timeout: float = 180) -> None:
        end = time.monotonic() + timeout
        while not self.signal.exists():
            if self.p.poll() is not None:
                pytest.fail(f"ended before its stop point:\n{self.p.stdout.read()}")
            if time.monotonic() > end:
                self.p.kill()
                pytest.fail("never reached its stop point")
            time.sleep(0.05)

    def release(self) -> None:
        self.hold.write_text("go")

    def kill9(self) -> None:
        os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(30)

    def finish(self, timeout: float = 180) -> tuple[int, str]:
        out, _ = self.p.communicate(timeout=timeout)
        return self.p.returncode, out


def _cli(*args: str) -> str:
    r = CliRunner().invoke(main, list(args))
    assert r.exit_code == 0, (r.output, r.exception)
    return r.output


def _files(root: Path, patterns: tuple[str, ...]) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for pat in patterns for p in sorted(root.glob(pat))
    }


def _partials(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.endswith((".partial", ".lock"))]


def _units(path: Path, word: str, n: int = 4) -> Path:
    path.write_text(
        "\n".join(
            json.dumps(
                {"unit_id": str(i), "lang": lang, "query": f"{word} q{i}", "passage": f"p{i}"}
            )
            for i in range(n)
            for lang in ("en", "de")
        ),
        encoding="utf-8",
    )
    return path


BENCH_FILES = ("corpus.parquet", "queries.parquet", "qrels.parquet", "qrels.trec", "README.md")
RUN_FILES = ("runs/*.parquet", "runs/*.trec", "ranks/*.parquet")
EVAL_FILES = ("eval/*.parquet", "eval/*.csv", "eval/*.md", "eval/matrix/*.csv")


# ---- two writers -------------------------------------------------------------------------------
def test_two_builders_one_output(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    a_src, b_src = _units(tmp_path / "a.jsonl", "alpha"), _units(tmp_path / "b.jsonl", "beta")
    build = ["build-benchmark", "parallel-jsonl", "-o", str(out), "-s"]
    a = Proc(tmp_path, [*build, str(a_src)], hang="commit", tag="a")
    a.wait_signal()  # a holds the lock, its benchmark complete but not committed
    b = Proc(tmp_path, [*build, str(b_src)], tag="b")
    rc_b, out_b = b.finish()
    assert rc_b == 2 and "another xeval process is writing" in out_b, out_b
    assert "Traceback" not in out_b
    a.release()
    rc_a, out_a = a.finish()
    assert rc_a == 0 and f"wrote {out}" in out_a, out_a
    assert "alpha" in (out / "queries.parquet").read_bytes().decode("latin-1")
    late = Proc(tmp_path, [*build, str(b_src)], tag="late")
    rc, msg = late.finish()
    assert rc == 2 and "exists; pass --overwrite" in msg
    # with --overwrite the second waits for the first, then replaces it whole
    a = Proc(tmp_path, [*build, str(a_src), "--overwrite"], hang="commit", tag="a2")
    a.wait_signal()
    b = Proc(tmp_path, [*build, str(b_src), "--overwrite"], tag="b2")
    time.sleep(1.0)
    assert b.p.poll() is None  # waiting for the lock
    a.release()
    assert a.finish()[0] == 0 and b.finish()[0] == 0
    queries = (out / "queries.parquet").read_bytes().decode("latin-1")
    assert "beta" in queries and "alpha" not in queries
    assert _partials(tmp_path) == []


def test_two_runs_one_output(tmp_path: Path, tiny_model: Path) -> None:
    bench = make_tiny_benchmark(n_units=3).save(tmp_path / "bench")
    args = ["run", "-m", str(tiny_model), "-b", str(bench), "-o", str(tmp_path / "run"), "-q"]
    procs = [Proc(tmp_path, args, tag=t) for t in ("a", "b")]
    results = sorted(p.finish() for p in procs)
    assert [rc for rc, _ in results] == [0, 2], results
    assert "exists" in results[1][1] or "another xeval process" in results[1][1]
    assert "Traceback" not in results[1][1]
    assert (tmp_path / "run" / "run.json").is_file() and _partials(tmp_path) == []


# ---- kill -9, re-run, same bytes -------------------------------------------------------------
def test_kill_build_benchmark(tmp_path: Path) -> None:
    src = _units(tmp_path / "u.jsonl", "gamma", n=6)
    args = ["build-benchmark", "parallel-jsonl", "-s", str(src), "-o"]
    _cli(*args, str(tmp_path / "ref"))
    p = Proc(tmp_path, [*args, str(tmp_path / "out")], hang="commit")
    p.wait_signal()
    p.kill9()
    assert not (tmp_path / "out").exists() and any(_partials(tmp_path))
    _cli(*args, str(tmp_path / "out"))
    assert _files(tmp_path / "out", BENCH_FILES) == _files(tmp_path / "ref", BENCH_FILES)
    assert _partials(tmp_path) == []


def test_kill_run_and_evaluate(tmp_path: Path, tiny_model: Path) -> None:
    """run killed between two encoding batches (cache shards half there), evaluate killed
    before its commit; the commit itself is shared with build-benchmark, tested above."""
    bench = make_tiny_benchmark(n_units=4).save(tmp_path / "bench")
    base = ["run", "-m", str(tiny_model), "-b", str(bench), "-q", "--batch-size", "2"]
    cache = ["--cache-dir", str(tmp_path / "cache")]
    _cli(*base, "-o", str(tmp_path / "ref"), "--no-cache")
    p = Proc(tmp_path, [*base, *cache, "-o", str(tmp_path / "run")], hang="encode")
    p.wait_signal()
    p.kill9()
    assert not (tmp_path / "run").exists()
    _cli(*base, *cache, "-o", str(tmp_path / "run"))
    assert _files(tmp_path / "run", RUN_FILES) == _files(tmp_path / "ref", RUN_FILES)
    assert _partials(tmp_path) == []
    _cli("evaluate", str(tmp_path / "ref"))
    p = Proc(tmp_path, ["evaluate", str(tmp_path / "run")], hang="commit", tag="eval")
    p.wait_signal()
    p.kill9()
    assert not (tmp_path / "run" / "eval").exists()
    _cli("evaluate", str(tmp_path / "run"))
    assert _files(tmp_path / "run", EVAL_FILES) == _files(tmp_path / "ref", EVAL_FILES)
    assert _partials(tmp_path / "run") == []


def test_kill_finetune(tmp_path: Path, tiny_model: Path) -> None:
    from xeval.training.pairs import benchmark_pairs, save_pairs

    pairs = save_pairs(benchmark_pairs(make_tiny_benchmark()), tmp_path / "pairs.parquet")
    args = ["finetune", "-m", str(tiny_model), "-p", str(pairs), "--batch-size", "4"]
    args += ["--max-steps", "6", "--save-steps", "2", "--seed", "3", "--device", "cpu"]
    args += ["--no-progress", "--threads", "1"]  # same float reductions in every process
    _cli(*args, "-o", str(tmp_path / "ref"))
    p = Proc(tmp_path, [*args, "-o", str(tmp_path / "ft")], hang="checkpoint")
    p.wait_signal()  # the first checkpoint is complete
    p.kill9()
    assert not (tmp_path / "ft" / "model").exists()
    _cli(*args, "-o", str(tmp_path / "ft"), "--resume")
    model = ("model/*.safetensors", "model/*.json", "model/**/*.json")
    got, ref = _files(tmp_path / "ft", model), _files(tmp_path / "ref", model)
    for card in (got, ref):  # the model card records when and by which command
        del card["model/xeval-model.json"]
    assert "model/model.safetensors" in got and got == ref

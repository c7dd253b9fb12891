"""Sharded ``xeval run`` under torchrun: shard assignment, exact merges, 2-process identity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from xeval.errors import XevalError
from xeval.retrieval import distributed as dd
from xeval.retrieval.run import run_benchmark
from xeval.retrieval.search import batch_rows, exact_search, tie_ranks

REPO = Path(__file__).resolve().parent.parent


def test_dist_from_env_and_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert dd.Dist.from_env() == dd.Dist(0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    d = dd.Dist.from_env()
    assert (d.rank, d.world_size, d.local_rank, d.active, d.root) == (2, 3, 0, True, False)
    for n in (0, 1, 2, 10, 11):
        cover = [i for r in range(3) for i in range(n)[dd.Dist(r, 3).shard(n)]]
        assert cover == list(range(n))
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(XevalError, match="outside"):
        dd.Dist.from_env()


@pytest.mark.parametrize("world", [1, 2, 3, 7])
@pytest.mark.parametrize("nq", [1, 5, 40])
def test_sharded_search_merges_to_the_exact_one_process_result(world: int, nq: int) -> None:
    rng = np.random.default_rng(world * 100 + nq)
    n, dim = 300, 16
    docs = rng.integers(-2, 3, size=(n, dim)).astype(np.float32)  # many tied scores
    docs[50:60] = docs[0]  # exact duplicates: ties broken by doc id
    queries = rng.standard_normal((nq, dim)).astype(np.float32)
    ids = [f"d{i:04d}" for i in rng.permutation(n)]
    tie = tie_ranks(ids)
    pq = rng.integers(0, nq, size=25)
    pd = rng.integers(0, n, size=25)
    memory_mb = 3 * 4 * n / 2**20  # three query rows a block: a 1-row last block too
    ref = exact_search(queries, docs, 10, tie, pairs=(pq, pd), memory_mb=memory_mb)
    uniq, target = np.unique(pd, return_inverse=True)
    pairs = dd.Pairs(pq, target, tie[pd], docs[uniq])
    parts = []
    for r in range(world):
        part = dd.Dist(r, world).shard(n)
        rows = np.arange(n)[part]
        block = batch_rows(n, memory_mb)
        parts.append(dd.search_shard(queries, docs[part], rows, tie[part], 10, pairs, block))
    top, ranks = dd.merge(parts, 10, tie)
    assert np.array_equal(top.indices, ref.indices)
    assert np.array_equal(top.scores, ref.scores)
    assert np.array_equal(ranks, ref.pair_ranks)


def test_sharded_run_refuses_no_cache(
    tiny_model: Path, tiny_benchmark_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(XevalError, match="embedding cache"):
        run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "o", use_cache=False,
                      progress=False)  # fmt: skip


def _tables(run: Path) -> dict[str, pl.DataFrame]:
    files = sorted([*run.glob("runs/*.parquet"), *run.glob("ranks/*.parquet")])
    return {str(f.relative_to(run)): pl.read_parquet(f) for f in files}


def _torchrun(tiny_model: Path, bench: Path, out: Path, cache: Path, backend: str):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "XEVAL_DEBUG": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "xeval", "run", "-m", str(tiny_model), "-b", str(bench), "-o", str(out),
           "--k", "5", "--backend", backend, "--cache-dir", str(cache), "--threads", "1", "-q"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_torchrun_two_processes_equal_one_process(
    tiny_model: Path, tiny_benchmark_dir: Path, tmp_path: Path
) -> None:
    for cache in ("cache1", "cache2"):  # both caches partly warm: English texts only
        run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / f"en-{cache}", k=5,
                      kinds=("mono",), languages=("en",), cache_dir=tmp_path / cache,
                      progress=False, threads=1)  # fmt: skip
    one = tmp_path / "one"
    run_benchmark(str(tiny_model), tiny_benchmark_dir, one, k=5, backend="exact",
                  cache_dir=tmp_path / "cache1", progress=False, threads=1)  # fmt: skip
    _torchrun(tiny_model, tiny_benchmark_dir, tmp_path / "two", tmp_path / "cache2", "exact")
    a, b = _tables(one), _tables(tmp_path / "two")
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        assert a[name].equals(b[name]), name
    meta = json.loads((tmp_path / "two" / "run.json").read_text())
    assert meta["distributed"]["world_size"] == 2
    passages = meta["encoding"]["passages"]
    assert (passages["texts"], passages["encoded"], passages["cached"]) == (18, 12, 6)
    # both ranks wrote into the shared cache: a one-process rerun encodes nothing
    again = run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "again", k=5,
                          backend="exact", cache_dir=tmp_path / "cache2", progress=False)  # fmt: skip
    assert again.passages["encoded"] == 0 and again.queries["encoded"] == 0


def test_torchrun_hnsw_shards_keep_exact_ranks(
    tiny_model: Path, tiny_benchmark_dir: Path, tmp_path: Path
) -> None:
    one = tmp_path / "one"
    run_benchmark(str(tiny_model), tiny_benchmark_dir, one, k=5, backend="exact",
                  cache_dir=tmp_path / "cache", progress=False, threads=1)  # fmt: skip
    _torchrun(tiny_model, tiny_benchmark_dir, tmp_path / "two", tmp_path / "cache", "hnsw")
    a, b = _tables(one), _tables(tmp_path / "two")
    assert a.keys() == b.keys()
    for name in a:
        if name.startswith("ranks/") or "multi" in name:  # exact in both runs
            assert a[name].equals(b[name]), name
        else:
            assert a[name].select("query_id", "rank").equals(b[name].select("query_id", "rank"))
    meta = json.loads((tmp_path / "two" / "run.json").read_text())
    assert set(meta["backends"].values()) == {"hnsw", "exact"}
    assert list((tmp_path / "cache" / "indexes").glob("*.usearch"))  # stored per shard


def test_torchrun_keeps_the_one_process_precision_rule(tiny_model: Path, tmp_path: Path) -> None:
    """``--dtype auto`` stays fp32 where a recorded bf16 check failed, sharded or not."""
    from tests.conftest import make_tiny_benchmark

    bench = make_tiny_benchmark()
    bench.name = "xquad-r"  # its recorded bf16 check failed
    bdir = bench.save(tmp_path / "bench")
    _torchrun(tiny_model, bdir, tmp_path / "two", tmp_path / "cache", "exact")
    one = run_benchmark(str(tiny_model), bdir, tmp_path / "one", k=5, backend="exact",
                        cache_dir=tmp_path / "cache", progress=False, threads=1)  # fmt: skip
    precision = json.loads((tmp_path / "two" / "run.json").read_text())["encoding"]["precision"]
    assert precision["name"] == one.precision == "fp32"
    assert "bf16 moved" in precision["reason"]
    assert one.passages["encoded"] == 0  # the sharded run filled the fp32 cache

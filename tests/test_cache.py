"""Nothing stale: precision in the cache key, damaged shards re-encoded, weights fingerprinted."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from xeval.retrieval.cache import CacheWarning, EmbeddingCache
from xeval.retrieval.run import run_benchmark


def _meta(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def test_precision_is_part_of_the_cache_key(tmp_path: Path) -> None:
    fp32 = EmbeddingCache(tmp_path, "fp", "p: ")
    bf16 = EmbeddingCache(tmp_path, "fp", "p: ", "bf16")
    assert fp32.folder != bf16.folder
    fp32.add(["a"], np.ones((1, 4), np.float32))
    assert bf16.lookup(["a"])[1].tolist() == [False]  # never served across precisions
    assert EmbeddingCache(tmp_path, "fp", "p: ", "fp32").lookup(["a"])[1].tolist() == [True]
    assert json.loads((fp32.folder / "meta.json").read_text())["precision"] == "fp32"


def test_damaged_shard_is_set_aside_and_reencoded(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "fp", "")
    cache.add(["a", "b"], np.ones((2, 4), np.float32))
    cache.add(["c"], 2 * np.ones((1, 4), np.float32))
    shards = sorted(cache.folder.glob("shard-*.npy"))
    bad = next(f for f in shards if np.load(f).shape[0] == 2)
    bad.write_bytes(bad.read_bytes()[:100])  # truncated
    with pytest.warns(CacheWarning, match="set aside"):
        vec, found = EmbeddingCache(tmp_path, "fp", "").lookup(["a", "b", "c"])
    assert found.tolist() == [False, False, True] and vec is not None and vec[2, 0] == 2
    assert bad.with_name(bad.name + ".damaged").exists() and not bad.exists()
    # a damaged key file and NaN vectors are set aside too
    cache = EmbeddingCache(tmp_path / "x", "fp", "")
    cache.add(["a"], np.full((1, 4), np.nan, np.float32))
    cache.add(["b"], np.ones((1, 4), np.float32))
    keys = sorted(cache.folder.glob("shard-*.keys.parquet"))
    b_keys = next(k for k in keys if np.load(str(k).replace(".keys.parquet", ".npy"))[0, 0] == 1)
    b_keys.write_bytes(b"not parquet")
    with pytest.warns(CacheWarning):
        vec, found = EmbeddingCache(tmp_path / "x", "fp", "").lookup(["a", "b"])
    assert found.tolist() == [False, False] and vec is None
    EmbeddingCache(tmp_path / "x", "fp", "").add(["c"], np.ones((1, 4), np.float32))
    (cache.folder / "meta.json").write_text("{broken")
    with pytest.warns(CacheWarning, match="metadata"):
        assert EmbeddingCache(tmp_path / "x", "fp", "").lookup(["c"])[1].tolist() == [False]


def test_damaged_shard_in_a_run_is_reencoded(tiny_model, tiny_benchmark_dir, tmp_path) -> None:
    cache = tmp_path / "cache"
    opts = {"k": 3, "cache_dir": cache, "progress": False, "kinds": ("mono",), "dtype": "fp32"}
    run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "a", **opts)
    for f in cache.rglob("shard-*.npy"):
        f.write_bytes(b"\x93NUMPY garbage")
    with pytest.warns(CacheWarning):
        run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "b", **opts)
    a, b = _meta(tmp_path / "a")["encoding"], _meta(tmp_path / "b")["encoding"]
    assert b["passages"]["cached"] == 0 and b["passages"]["encoded"] == a["passages"]["encoded"]
    run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "c", **opts)
    assert _meta(tmp_path / "c")["encoding"]["passages"]["encoded"] == 0  # healed


def test_changed_weights_always_miss_the_cache(tiny_model, tiny_benchmark_dir, tmp_path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    cache = tmp_path / "cache"
    opts = {"k": 3, "cache_dir": cache, "progress": False, "kinds": ("mono",), "dtype": "fp32"}
    run_benchmark(str(model), tiny_benchmark_dir, tmp_path / "a", **opts)
    run_benchmark(str(model), tiny_benchmark_dir, tmp_path / "b", **opts)
    first = _meta(tmp_path / "a")
    assert _meta(tmp_path / "b")["encoding"]["passages"]["encoded"] == 0
    # change a few weight bytes in place: same size, same mtime, the card left as it was
    weights = model / "model.safetensors"
    st = weights.stat()
    data = bytearray(weights.read_bytes())
    header = int.from_bytes(data[:8], "little") + 8
    for i in range(header + 16, header + 4096, 4):
        data[i] ^= 0x10
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert weights.stat().st_size == st.st_size
    run_benchmark(str(model), tiny_benchmark_dir, tmp_path / "c", **opts)
    after = _meta(tmp_path / "c")
    assert after["model"]["fingerprint"] != first["model"]["fingerprint"]
    assert after["encoding"]["passages"]["cached"] == 0
    assert after["encoding"]["passages"]["encoded"] == first["encoding"]["passages"]["encoded"]

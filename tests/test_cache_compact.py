"""The embedding cache's merged index: compaction is invisible to lookups, and safe."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from xeval.retrieval.cache import MERGED, CacheWarning, EmbeddingCache

DIM = 4


def _vec(ids) -> np.ndarray:
    """One distinct row per integer id (so every vector can be checked)."""
    ids = np.asarray(ids, dtype=np.float32)
    return np.stack([ids, ids + 0.5, -ids, np.ones_like(ids)], axis=1)


def _keys(ids) -> list[str]:
    return [f"k{i}" for i in ids]


def _fill(cache: EmbeddingCache, shards: int, per: int = 3, start: int = 0) -> list[int]:
    ids = []
    for s in range(shards):
        part = list(range(start + s * per, start + (s + 1) * per))
        cache.add(_keys(part), _vec(part))
        ids += part
    return ids


def _check(root: Path, ids: list[int]) -> None:
    vec, found = EmbeddingCache(root, "fp", "").lookup(_keys(ids))
    assert found.all() and vec is not None
    np.testing.assert_array_equal(vec, _vec(ids))


def test_compaction_preserves_lookups(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "fp", "")
    ids = _fill(cache, 10)
    cache.add(["k0", "dup"], _vec([99, 98]))  # a later duplicate of k0 (another vector)
    fresh = EmbeddingCache(tmp_path, "fp", "")
    before = fresh.index()
    first = before.filter(before["key"] == "k0")["shard"].item()
    assert cache.compact() and (cache.folder / MERGED).exists()
    after = EmbeddingCache(tmp_path, "fp", "")
    assert after.index().equals(before)  # same rows, same first-shard-wins choice
    assert after._uncovered == 0  # no key file read
    assert after.index().filter(after.index()["key"] == "k0")["shard"].item() == first
    _check(tmp_path, ids[1:])
    k0 = EmbeddingCache(tmp_path, "fp", "").lookup(["k0"])[0]
    dup_shard = before.filter(before["key"] == "dup")["shard"].item()
    assert k0 is not None and k0[0, 0] == (99 if first == dup_shard else 0)
    assert not cache.compact()  # nothing new to cover
    assert len(list(cache.folder.glob("shard-*.keys.parquet"))) == 11  # key files kept


def test_new_shards_after_compaction_are_seen(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "fp", "")
    ids = _fill(cache, 5)
    cache.compact()
    ids += _fill(cache, 3, start=100)
    fresh = EmbeddingCache(tmp_path, "fp", "")
    _check(tmp_path, ids)
    fresh.index()
    assert fresh._uncovered == 3
    assert not fresh.maybe_compact(after=3) and fresh.maybe_compact(after=2)
    again = EmbeddingCache(tmp_path, "fp", "")
    again.index()
    assert again._uncovered == 0
    _check(tmp_path, ids)


def test_damaged_shard_leaves_the_merged_index(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "fp", "")
    _fill(cache, 2, per=2)
    cache.compact()
    bad = sorted(cache.folder.glob("shard-*.npy"))[0]
    bad.write_bytes(b"\x93NUMPY garbage")
    with pytest.warns(CacheWarning, match="set aside"):
        found = EmbeddingCache(tmp_path, "fp", "").lookup(_keys(range(4)))[1]
    assert found.sum() == 2
    fresh = EmbeddingCache(tmp_path, "fp", "")  # no warning: its merged rows are ignored
    assert len(fresh) == 2 and fresh.lookup(_keys(range(4)))[1].sum() == 2


def test_corrupt_merged_index_is_recovered(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "fp", "")
    ids = _fill(cache, 6)
    cache.compact()
    merged = cache.folder / MERGED
    merged.write_bytes(merged.read_bytes()[:50])  # truncated
    with pytest.warns(CacheWarning, match="merged cache index"):
        _check(tmp_path, ids)  # read from the key files instead
    assert merged.with_name(MERGED + ".damaged").exists() and not merged.exists()
    assert EmbeddingCache(tmp_path, "fp", "").compact()  # rebuilt from the key files
    fresh = EmbeddingCache(tmp_path, "fp", "")
    fresh.index()
    assert fresh._uncovered == 0
    _check(tmp_path, ids)


def _run_threads(*targets) -> None:
    errors: list[BaseException] = []

    def wrap(f):
        def go():
            try:
                f()
            except BaseException as exc:  # reported below
                errors.append(exc)

        return go

    threads = [threading.Thread(target=wrap(f)) for f in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_concurrent_compactors_leave_a_valid_cache(tmp_path: Path) -> None:
    ids = _fill(EmbeddingCache(tmp_path, "fp", ""), 40, per=2)
    wrote: list[bool] = []

    def compactor() -> None:
        for _ in range(3):
            wrote.append(EmbeddingCache(tmp_path, "fp", "").compact())

    _run_threads(*[compactor] * 4)
    assert sum(wrote) == 1  # under the lock, the others found everything covered
    fresh = EmbeddingCache(tmp_path, "fp", "")
    fresh.index()
    assert fresh._uncovered == 0
    _check(tmp_path, ids)


def test_writer_and_compactor_keep_every_vector(tmp_path: Path) -> None:
    base = _fill(EmbeddingCache(tmp_path, "fp", ""), 5)
    written: list[int] = []
    done = threading.Event()

    def writer() -> None:
        cache = EmbeddingCache(tmp_path, "fp", "")
        for s in range(60):
            part = list(range(1000 + 2 * s, 1002 + 2 * s))
            cache.add(_keys(part), _vec(part))
            written.extend(part)
        done.set()

    def compactor() -> None:
        while not done.is_set():
            EmbeddingCache(tmp_path, "fp", "").compact()

    def reader() -> None:  # every shard seen at any moment is complete and correct
        while not done.is_set():
            seen = list(written)
            _check(tmp_path, base + seen)

    _run_threads(writer, compactor, reader)
    _check(tmp_path, base + written)
    EmbeddingCache(tmp_path, "fp", "").compact()
    _check(tmp_path, base + written)


def test_encoding_compacts_many_shards(tiny_model: Path, tmp_path: Path, monkeypatch) -> None:
    from xeval.models import load_model
    from xeval.retrieval import cache as cache_mod
    from xeval.retrieval.encode import encode_texts

    monkeypatch.setattr(cache_mod, "COMPACT_AFTER", 3)
    model = load_model(str(tiny_model), device="cpu")
    texts = [f"text number {i} " * (1 + i % 5) for i in range(40)]
    cache = EmbeddingCache(tmp_path, "fp", "p: ")
    opts = {"prompt": "p: ", "batch_size": 4, "chunk_size": 4, "progress": False}
    v1, _ = encode_texts(model, texts, cache=cache, **opts)  # 10 shards: more than 3
    assert (cache.folder / MERGED).exists()
    fresh = EmbeddingCache(tmp_path, "fp", "p: ")
    v2, stats = encode_texts(model, texts, cache=fresh, **opts)
    assert stats["encoded"] == 0 and fresh._uncovered == 0 and np.array_equal(v1, v2)

"""Scale: shard-independent scores, bounded search memory, stored HNSW indexes, ddtp-pool."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from xeval.benchmark.builders.ddtp_pool import _pieces, build_ddtp_pool
from xeval.retrieval.index_store import index_key, stored_index
from xeval.retrieval.search import block_scores, exact_search, pair_ranks, tie_ranks


@pytest.mark.parametrize("nq", [1, 2, 7])
@pytest.mark.parametrize("n", [5, 1500, 5000])
def test_block_scores_do_not_depend_on_the_other_documents(nq: int, n: int) -> None:
    rng = np.random.default_rng(n + nq)
    q = rng.standard_normal((nq, 48)).astype(np.float32)
    d = rng.standard_normal((n, 48)).astype(np.float32)
    full = block_scores(q, d)
    assert full.shape == (nq, n)
    np.testing.assert_allclose(full, q @ d.T, rtol=1e-5, atol=1e-5)
    for sub in (np.arange(n // 2), np.sort(rng.choice(n, size=max(1, n // 3), replace=False))):
        assert np.array_equal(block_scores(q, d[sub]), full[:, sub])


def test_exact_search_memory_does_not_grow_as_queries_times_documents() -> None:
    rng = np.random.default_rng(0)
    nq, n, dim = 1500, 20_000, 8  # the full score matrix would be 120 MB
    q = rng.standard_normal((nq, dim)).astype(np.float32)
    d = rng.standard_normal((n, dim)).astype(np.float32)
    tie = tie_ranks([f"d{i:06d}" for i in range(n)])
    pairs = (rng.integers(0, nq, 3000), rng.integers(0, n, 3000))
    tracemalloc.start()
    exact_search(q, d, 10, tie, pairs=pairs, memory_mb=4)
    pair_ranks(q, d, tie, *pairs, memory_mb=4)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 40 * 2**20, peak / 2**20  # a few 4 MB blocks, not 120 MB


def test_stored_index_is_reused_only_for_the_same_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    docs = rng.standard_normal((400, 16)).astype(np.float32)
    q = rng.standard_normal((5, 16)).astype(np.float32)
    tie = tie_ranks([f"d{i:03d}" for i in range(400)])
    params = {"connectivity": 8, "expansion_add": 64}
    first = stored_index(docs, tmp_path, params)
    files = sorted((tmp_path / "indexes").glob("*.usearch"))
    assert len(files) == 1 and files[0].stem == index_key(docs, dict(sorted(params.items())))
    again = stored_index(docs, tmp_path, params)
    assert again.index is not first.index
    a, b = first.search(q, 10, tie), again.search(q, 10, tie)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.scores, b.scores)
    assert sorted((tmp_path / "indexes").glob("*.usearch")) == files  # reused, not rebuilt
    changed = docs.copy()
    changed[0, 0] += 1.0
    stored_index(changed, tmp_path, params)
    stored_index(docs, tmp_path, {**params, "connectivity": 12})
    assert len(list((tmp_path / "indexes").glob("*.usearch"))) == 3
    files[0].write_bytes(b"not an index")
    with pytest.warns(UserWarning, match="unreadable stored index"):
        rebuilt = stored_index(docs, tmp_path, params)
    assert np.array_equal(rebuilt.search(q, 10, tie).indices, a.indices)


def test_pieces_of_a_description() -> None:
    pieces = _pieces("One two. Three four! Five six?\n\nSeven.")
    kinds = [k for k, _ in pieces]
    assert pieces[0] == ("desc", "One two. Three four! Five six?\n\nSeven.")
    assert ("sent", "Three four!") in pieces and ("win", "One two. Three four!") in pieces
    assert ("win", "One two. Three four! Five six?") in pieces
    assert kinds.count("para") == 2


@pytest.mark.slow
def test_ddtp_pool_sizes_share_queries_and_qrels(shared_data: Path) -> None:
    small = build_ddtp_pool(shared_data / "ddtp", size=3000, queries=20)
    big = build_ddtp_pool(shared_data / "ddtp", size=6000, queries=20)
    assert small.corpus.height == 3000 and big.corpus.height == 6000
    assert small.queries.equals(big.queries) and small.qrels.equals(big.qrels)
    assert set(small.qrels["doc_id"]) <= set(small.corpus["doc_id"])
    assert small.corpus["doc_id"].is_unique().all()


def test_encode_memory_bounds(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Token lengths in small chunks give the same counts; kernel caches are capped."""
    from xeval.models import load_model
    from xeval.retrieval.encode import KERNEL_CACHE_ENV, bound_kernel_caches, token_lengths

    model = load_model(str(tiny_model), device="cpu")
    texts = [f"word{i} " * (1 + 7 * i) for i in range(9)]
    whole = token_lengths(model, texts, "p: ")
    assert token_lengths(model, texts, "p: ", chunk=2).tolist() == whole.tolist()
    ids = model.tokenizer(["p: " + t for t in texts], truncation=False)["input_ids"]
    assert whole.tolist() == [len(x) for x in ids]
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "7")  # the user's own setting is kept
    bound_kernel_caches()
    assert (
        os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"]
        == KERNEL_CACHE_ENV["ONEDNN_PRIMITIVE_CACHE_CAPACITY"]
    )
    assert os.environ["LRU_CACHE_CAPACITY"] == "7"

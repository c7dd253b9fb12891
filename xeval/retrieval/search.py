"""Top-k search (exact or usearch HNSW) and exact ranks of relevant items.

Tie rule everywhere: score descending, then doc_id descending (trec_eval's rule). The
functions here take a ``tie_rank`` per document (0 = wins every tie); :func:`tie_ranks`
makes it from doc ids. Scores are inner products of the given vectors (normalise them
first for cosine).

Exact search scores queries in batches whose score block stays under ``memory_mb``,
so all-queries x all-documents is never held at once. HNSW finds candidates
approximately, then their scores are recomputed exactly and ordered by the tie rule.
Exact ranks of relevant items are always computed by brute force over the whole pool.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xeval.errors import XevalError

BACKENDS = ("auto", "exact", "hnsw")
HNSW_THRESHOLD = 1_000_000  # "auto" uses HNSW for pools larger than this (scale.md: exact
# ranks score every document anyway, so below 1M HNSW saves little and costs exactness)
DEFAULT_MEMORY_MB = 256
SCORE_CHUNK = 1024  # documents per matrix product in exact scoring (see block_scores)
# HNSW search beam by pool size (benchmarks/results/scale.md, ANN quality): the smallest
# beam that kept recall@100 >= 0.99 in every pool measured, up to 351k documents at 1M.
EXPANSION_BY_POOL = ((100_000, 512), (400_000, 1024), (None, 2048))


def auto_expansion(n_docs: int) -> int:
    """usearch ``expansion_search`` for a pool of ``n_docs``: wider beams for larger pools."""
    return next(ef for limit, ef in EXPANSION_BY_POOL if limit is None or n_docs <= limit)


def tie_ranks(doc_ids: Sequence[str]) -> np.ndarray:
    """Position of every doc in doc_id-descending order (0 wins ties)."""
    ids = np.asarray(doc_ids, dtype=object)
    order = np.argsort(ids, kind="stable")[::-1]  # doc ids are unique: no ties here
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[order] = np.arange(len(ids))
    return ranks


def choose_backend(backend: str, n_docs: int, k: int, threshold: int = HNSW_THRESHOLD) -> str:
    """Resolve ``auto``: HNSW above ``threshold`` documents (and when k < pool), else exact."""
    if backend not in BACKENDS:
        raise XevalError(f"unknown search backend {backend!r}; choose from {list(BACKENDS)}")
    if backend == "auto":
        return "hnsw" if n_docs > threshold and k < n_docs else "exact"
    return backend


@dataclass
class TopK:
    """Per query: ``k`` document indices (into the given doc matrix) and their scores."""

    indices: np.ndarray  # int64 [n_queries, k]
    scores: np.ndarray  # float32 [n_queries, k]
    pair_ranks: np.ndarray | None = None  # exact ranks of the requested (query, doc) pairs


def batch_rows(n_docs: int, memory_mb: float) -> int:
    return max(1, int(memory_mb * 2**20 / 4 / max(n_docs, 1)))


def _check_finite(x: np.ndarray, what: str) -> None:
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise XevalError(f"{what} row {bad} has NaN or infinite values")


def block_scores(queries: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """``queries @ docs.T`` whose every entry does not depend on which other docs are given.

    BLAS computes an entry with the same operations whatever column of a large enough
    product it is in, but its matrix-vector path (one row) and its small-matrix paths do
    not. So a single row is scored as two and the documents go through fixed-width
    products of :data:`SCORE_CHUNK` columns (the last one padded with zeros). A search
    sharded by documents thus gives every score the bits of the one-process search.
    """
    one = queries.shape[0] == 1
    q = np.concatenate([queries, queries]) if one else queries
    n = docs.shape[0]
    out = np.empty((q.shape[0], n), dtype=np.float32)
    for c in range(0, n - n % SCORE_CHUNK, SCORE_CHUNK):
        np.matmul(q, docs[c : c + SCORE_CHUNK].T, out=out[:, c : c + SCORE_CHUNK])
    if n % SCORE_CHUNK:
        c = n - n % SCORE_CHUNK
        pad = np.zeros((SCORE_CHUNK, docs.shape[1]), dtype=np.float32)
        pad[: n - c] = docs[c:]
        out[:, c:] = (q @ pad.T)[:, : n - c]
    return out[:1] if one else out


def _score_batches(
    queries: np.ndarray, docs: np.ndarray, memory_mb: float, step: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    step = step or batch_rows(docs.shape[0], memory_mb)
    for start in range(0, queries.shape[0], step):
        yield start, block_scores(queries[start : start + step], docs)


def _topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row; columns are in tie order already (lower column wins ties)."""
    n = scores.shape[1]
    kth = np.partition(scores, n - k, axis=1)[:, n - k]
    idx = np.empty((scores.shape[0], k), dtype=np.int64)
    for r in range(scores.shape[0]):
        cand = np.flatnonzero(scores[r] >= kth[r])  # ascending column = tie order
        order = np.lexsort((cand, -scores[r, cand]))[:k]
        idx[r] = cand[order]
    return idx, np.take_along_axis(scores, idx, axis=1)


def exact_search(
    queries: np.ndarray,
    docs: np.ndarray,
    k: int,
    tie_rank: np.ndarray,
    *,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    memory_mb: float = DEFAULT_MEMORY_MB,
) -> TopK:
    """Exact top-k by inner product, in memory-bounded query batches, with the tie rule.

    With ``pairs=(query_rows, doc_rows)`` it also returns the exact 1-based rank of each
    pair's document over all ``docs``, computed from the same score blocks as the top-k
    (so ranks and the run always agree).
    """
    queries, docs = _prepare(queries, docs, tie_rank)
    perm = np.argsort(tie_rank, kind="stable")
    dp = np.ascontiguousarray(docs[perm])
    n = dp.shape[0]
    k = min(k, n)
    idx = np.empty((queries.shape[0], k), dtype=np.int64)
    sc = np.empty((queries.shape[0], k), dtype=np.float32)
    ranks = None
    if pairs is not None:
        pq = np.asarray(pairs[0], dtype=np.int64)
        inv = np.empty(n, dtype=np.int64)
        inv[perm] = np.arange(n)
        pcol = inv[np.asarray(pairs[1], dtype=np.int64)]
        by_q = np.argsort(pq, kind="stable")
        pq_sorted = pq[by_q]
        ranks = np.empty(len(pq), dtype=np.int64)
        cols = np.arange(n)
    step = batch_rows(n, memory_mb)
    for start, block in _score_batches(queries, dp, memory_mb):
        i, s = _topk_rows(block, k)
        idx[start : start + len(i)] = perm[i]
        sc[start : start + len(i)] = s
        if ranks is None:
            continue
        lo, hi = np.searchsorted(pq_sorted, [start, start + block.shape[0]])
        sel = by_q[lo:hi]
        for s0 in range(0, len(sel), step):  # bound the pairs x docs comparison too
            p = sel[s0 : s0 + step]
            rows = block[pq[p] - start]
            target = rows[np.arange(len(p)), pcol[p]][:, None]
            higher = (rows > target).sum(axis=1)
            ties = ((rows == target) & (cols[None, :] < pcol[p][:, None])).sum(axis=1)
            ranks[p] = 1 + higher + ties
    return TopK(idx, sc, ranks)


def _prepare(queries: np.ndarray, docs: np.ndarray, tie_rank: np.ndarray):
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    docs = np.ascontiguousarray(docs, dtype=np.float32)
    if queries.ndim != 2 or docs.ndim != 2 or queries.shape[1] != docs.shape[1]:
        raise ValueError(f"shape mismatch: queries {queries.shape}, docs {docs.shape}")
    if len(tie_rank) != docs.shape[0]:
        raise ValueError("tie_rank must have one entry per document")
    if docs.shape[0] == 0:
        raise XevalError("cannot search an empty corpus")
    _check_finite(queries, "query embedding")
    _check_finite(docs, "document embedding")
    return queries, docs


class HnswIndex:
    """A usearch HNSW index over ``docs`` (inner product); exact rescoring of candidates."""

    def __init__(
        self,
        docs: np.ndarray,
        *,
        connectivity: int = 32,  # recall@100 >= 0.99 in every pool measured
        expansion_add: int = 128,  # (benchmarks/results/scale.md)
        expansion_search: int | None = None,  # None: auto_expansion(pool size)
        dtype: str = "f32",
        threads: int = 0,
        index: Any = None,
    ) -> None:
        """Build the graph over ``docs``, or take ``index``: one built over them before."""
        from usearch.index import Index

        self.docs = np.ascontiguousarray(docs, dtype=np.float32)
        _check_finite(self.docs, "document embedding")
        if expansion_search is None:
            expansion_search = auto_expansion(self.docs.shape[0])
        self.params = {
            "connectivity": connectivity,
            "expansion_add": expansion_add,
            "expansion_search": expansion_search,
            "dtype": dtype,
            "metric": "ip",
        }
        self.threads = threads
        if index is not None:
            if len(index) != self.docs.shape[0] or index.ndim != self.docs.shape[1]:
                raise XevalError(f"a stored index of {len(index)} vectors for {len(docs)} docs")
            self.index = index
            return
        self.index = Index(
            ndim=self.docs.shape[1],
            metric="ip",
            dtype=dtype,
            connectivity=connectivity,
            expansion_add=expansion_add,
            expansion_search=expansion_search,
        )
        self.index.add(np.arange(self.docs.shape[0], dtype=np.uint64), self.docs, threads=threads)

    @staticmethod
    def describe(params: dict[str, Any]) -> dict[str, Any]:
        """The settings an index built with ``params`` uses (defaults filled in), for run.json."""
        import inspect

        sig = inspect.signature(HnswIndex.__init__).parameters
        names = ("connectivity", "expansion_add", "expansion_search", "dtype")
        out = {n: params.get(n, sig[n].default) for n in names}
        if out["expansion_search"] is None:
            out["expansion_search"] = "by pool size: " + ", ".join(
                f"{ef} up to {lim:,} docs" if lim else f"{ef} above"
                for lim, ef in EXPANSION_BY_POOL
            )
        return out

    def search(
        self, queries: np.ndarray, k: int, tie_rank: np.ndarray, *, batch: int = 256
    ) -> TopK:
        """Approximate candidates, exact scores, tie rule within the returned k.

        The search beam is at least ``k`` (usearch's ``expansion_search``).
        """
        queries, _ = _prepare(queries, self.docs[:1], tie_rank[:1])
        n = self.docs.shape[0]
        k = min(k, n)
        self.index.expansion_search = max(self.params["expansion_search"], k)
        idx = np.empty((queries.shape[0], k), dtype=np.int64)
        sc = np.empty((queries.shape[0], k), dtype=np.float32)
        for start in range(0, queries.shape[0], batch):
            q = queries[start : start + batch]
            m = self.index.search(q, k, threads=self.threads)
            keys = np.asarray(m.keys, dtype=np.int64).reshape(len(q), -1)
            counts = np.asarray(m.counts).reshape(len(q))
            valid = np.arange(keys.shape[1])[None, :] < counts[:, None]
            safe = np.where(valid, keys, 0)
            s = np.einsum("bd,bkd->bk", q, self.docs[safe])
            s = np.where(valid, s, -np.inf).astype(np.float32)
            tr = np.where(valid, tie_rank[safe], np.iinfo(np.int64).max)
            order = np.lexsort((tr, -s), axis=-1)  # score desc, then doc_id desc, per row
            idx[start : start + len(q)] = np.take_along_axis(safe, order, axis=1)
            sc[start : start + len(q)] = np.take_along_axis(s, order, axis=1)
            for r in np.flatnonzero(counts < k):  # rare: the graph returned fewer than k
                order_r, s_r, keys_r = self._fill(q[r], keys[r, : counts[r]], k, tie_rank)
                idx[start + r], sc[start + r] = keys_r[order_r], s_r[order_r]
        return TopK(idx, sc)

    def _fill(self, q: np.ndarray, have: np.ndarray, k: int, tie_rank: np.ndarray):
        s_all = self.docs @ q
        rest = np.setdiff1d(np.arange(len(s_all)), have)
        extra = rest[np.lexsort((tie_rank[rest], -s_all[rest]))[: k - len(have)]]
        keys = np.concatenate([have, extra])
        s = s_all[keys]
        return np.lexsort((tie_rank[keys], -s)), s, keys


def exact_ranks(
    queries: np.ndarray,
    docs: np.ndarray,
    tie_rank: np.ndarray,
    pair_query: np.ndarray,
    pair_doc: np.ndarray,
    *,
    memory_mb: float = DEFAULT_MEMORY_MB,
) -> np.ndarray:
    """Exact 1-based rank of doc ``pair_doc[i]`` for query ``pair_query[i]`` over all docs.

    rank = 1 + #docs scoring higher + #docs scoring equal with a larger doc_id (lower tie
    rank): the position the doc has in the full ranking under the tie rule.
    """
    res = exact_search(
        queries, docs, 1, tie_rank, pairs=(pair_query, pair_doc), memory_mb=memory_mb
    )
    assert res.pair_ranks is not None
    return res.pair_ranks


def pair_ranks(
    queries: np.ndarray,
    docs: np.ndarray,
    tie_rank: np.ndarray,
    pair_query: np.ndarray,
    pair_doc: np.ndarray,
    *,
    memory_mb: float = DEFAULT_MEMORY_MB,
) -> np.ndarray:
    """Exact 1-based ranks of (query, doc) pairs: the pairs' query vectors times all docs.

    One matrix product per block of pairs (only the queries that have a pair are scored);
    for a search that already scores every document, pass ``pairs=`` to
    :func:`exact_search` instead, which takes the ranks from the same score blocks.
    """
    queries, docs = _prepare(queries, docs, tie_rank)
    pq = np.asarray(pair_query, dtype=np.int64)
    pd = np.asarray(pair_doc, dtype=np.int64)
    tie = np.asarray(tie_rank)
    out = np.empty(len(pq), dtype=np.int64)
    step = batch_rows(docs.shape[0], memory_mb)
    for s in range(0, len(pq), step):
        q, d = pq[s : s + step], pd[s : s + step]
        rows = queries[q] @ docs.T
        target = rows[np.arange(len(q)), d][:, None]
        higher = (rows > target).sum(axis=1)
        ties = ((rows == target) & (tie[None, :] < tie[d][:, None])).sum(axis=1)
        out[s : s + step] = 1 + higher + ties
    return out

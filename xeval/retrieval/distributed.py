"""Sharded runs under ``torchrun``: rank and world size, shard assignment, exact merges.

``torchrun --nproc_per_node N -m xeval run ...`` (or several nodes with a rendezvous)
sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :meth:`Dist.from_env` reads them and
:func:`init` joins the process group (gloo: the merges move small NumPy arrays on the CPU).

Every rank owns one contiguous slice of the corpus (:meth:`Dist.shard`): it encodes that
slice (and its slice of the queries) into the shared embedding cache, then searches its
slice of every setting's corpus. Rank 0 gathers each setting's per-shard results and
merges them exactly:

- top-k: the union of the shards' top-k holds the global top-k; one sort by score
  descending, then tie rank (doc_id descending) picks it;
- exact rank of a relevant document: 1 + the sum over shards of the documents that beat
  it there (higher score, or equal score and a lower tie rank).

Query blocks are the ones a single process uses (their size comes from the setting's whole
corpus) and :func:`xeval.retrieval.search.block_scores` gives every score the same bits for
any subset of documents, so the merged exact run equals the one-process run exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from xeval.errors import XevalError
from xeval.retrieval.search import _topk_rows, block_scores


@dataclass(frozen=True)
class Dist:
    """This process's place in a ``torchrun`` job (rank 0 of 1 outside one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Dist:
        """Rank, world size and local rank from torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError as exc:
            raise XevalError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers ({exc})") from None
        if world < 1 or not 0 <= rank < world:
            raise XevalError(f"rank {rank} is outside a world of size {world}")
        return cls(rank, world, local)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def root(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` items (sizes differ by at most one)."""
        lo = self.rank * n // self.world_size
        hi = (self.rank + 1) * n // self.world_size
        return slice(lo, hi)


def init(dist: Dist) -> bool:
    """Join the process group (gloo) if needed; True when this call created it."""
    import torch.distributed as td

    if not dist.active or td.is_initialized():
        return False
    td.init_process_group(backend="gloo")
    return True


def finish(created: bool) -> None:
    """Leave the process group this module created."""
    import torch.distributed as td

    if created and td.is_initialized():
        td.barrier()
        td.destroy_process_group()


def barrier(dist: Dist) -> None:
    if dist.active:
        import torch.distributed as td

        td.barrier()


def gather(dist: Dist, obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (in rank order); None on the other ranks."""
    if not dist.active:
        return [obj]
    import torch.distributed as td

    out: list[Any] | None = [None] * dist.world_size if dist.root else None
    td.gather_object(obj, out, dst=0)
    return out


def broadcast(dist: Dist, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not dist.active:
        return obj
    import torch.distributed as td

    box = [obj if dist.root else None]
    td.broadcast_object_list(box, src=0)
    return box[0]


@dataclass
class ShardPart:
    """One shard's answer for one setting: top-k (global rows) and partial rank counts."""

    indices: np.ndarray  # int64 [n_queries, k_shard], rows of the full corpus table
    scores: np.ndarray  # float32 [n_queries, k_shard]
    beaten: np.ndarray  # int64 [n_pairs]: shard docs ranked above each pair's document


@dataclass(frozen=True)
class Pairs:
    """(query, relevant doc) pairs: query row, the doc's vector row and its tie rank."""

    query: np.ndarray  # int64 [n_pairs], rows of the setting's queries
    target: np.ndarray  # int64 [n_pairs], rows of ``vectors``
    tie: np.ndarray  # int64 [n_pairs], the relevant doc's tie rank
    vectors: np.ndarray  # float32 [n_targets, dim], the relevant docs' vectors


def search_shard(
    queries: np.ndarray,
    docs: np.ndarray,
    rows: np.ndarray,
    tie: np.ndarray,
    k: int,
    pairs: Pairs,
    block_rows: int,
) -> ShardPart:
    """Exact top-k of ``queries`` over one shard's ``docs`` (global ``rows``, ``tie`` ranks)
    and, per pair, how many of these docs rank above the pair's document (``k=0``: only that).

    ``block_rows`` must be the query block of the one-process search (see the module doc).
    """
    nq = queries.shape[0]
    kk = min(k, docs.shape[0])
    perm = np.argsort(tie, kind="stable")
    dp, tp = np.ascontiguousarray(docs[perm]), tie[perm]
    idx = np.empty((nq, kk), dtype=np.int64)
    sc = np.empty((nq, kk), dtype=np.float32)
    beaten = np.zeros(len(pairs.query), dtype=np.int64)
    by_q = np.argsort(pairs.query, kind="stable")
    pq_sorted = pairs.query[by_q]
    if not docs.shape[0]:
        return ShardPart(idx, sc, beaten)
    for start in range(0, nq, block_rows):
        qb = queries[start : start + block_rows]
        block = block_scores(qb, dp)
        if kk:
            i, s = _topk_rows(block, kk)
            idx[start : start + len(qb)], sc[start : start + len(qb)] = rows[perm[i]], s
        lo, hi = np.searchsorted(pq_sorted, [start, start + len(qb)])
        sel = by_q[lo:hi]
        if not len(sel):
            continue
        target = block_scores(qb, pairs.vectors)  # same bits as in the owning shard
        for s0 in range(0, len(sel), block_rows):  # bound the pairs x docs comparison
            p = sel[s0 : s0 + block_rows]
            r = block[pairs.query[p] - start]
            t = target[pairs.query[p] - start, pairs.target[p]][:, None]
            ties = (r == t) & (tp[None, :] < pairs.tie[p][:, None])
            beaten[p] = (r > t).sum(axis=1) + ties.sum(axis=1)
    return ShardPart(idx, sc, beaten)


def merge(parts: list[ShardPart], k: int, tie: np.ndarray) -> tuple[ShardPart, np.ndarray]:
    """The exact global top-k (``tie`` ranks over the full corpus) and 1-based pair ranks."""
    idx = np.concatenate([p.indices for p in parts], axis=1)
    sc = np.concatenate([p.scores for p in parts], axis=1)
    k = min(k, idx.shape[1])
    order = np.lexsort((tie[idx], -sc), axis=-1)[:, :k]
    ranks = 1 + np.sum([p.beaten for p in parts], axis=0, dtype=np.int64)
    top = ShardPart(np.take_along_axis(idx, order, 1), np.take_along_axis(sc, order, 1), ranks)
    return top, ranks

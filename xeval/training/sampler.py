"""X-X, X-Y and hybrid batch sampling (Elmahdy et al., arXiv 2408.10536).

- ``xx``: every pair of a batch is monolingual in one language, drawn uniformly from the
  training languages;
- ``xy``: every pair of a batch is cross-lingual (query language != passage language);
- ``hybrid``: per batch, X-X with probability ``alpha``, else X-Y.

Guarantees (tested):

- **Reproducible**: epoch ``e`` is a pure function of (data, seed, e), so a resumed run
  that skips the batches already trained sees exactly the batches it would have seen.
- **In-batch negatives are clean**: no text (query or passage) and no unit occurs twice in
  a batch, so a translation of a pair's passage is never one of its negatives.
- **Several processes**: the sampler yields the *global* sequence; each group of
  ``world_size`` consecutive batches shares one mode (and X-X language) and is free of
  duplicates as a whole, so gathering negatives across devices keeps the batch semantics.
  Accelerate's ``BatchSamplerShard`` (used by the sentence-transformers trainer) hands batch
  ``i`` to rank ``i % world_size``; the epoch length is a multiple of ``world_size`` so
  every rank gets the same number of whole batches, none repeated, none lost.
  :func:`shard_batches` is that rule, for use outside the trainer.

An epoch is ``floor(N / (batch_size * world_size)) * world_size`` batches, N being the
number of rows the strategy draws from (X-X rows, X-Y rows, or all rows for hybrid). Each
pool is read through a seeded permutation, reshuffled when exhausted; a row that would
duplicate a text or unit already in the batch waits for the next batch.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import BatchSampler

from xeval.errors import XevalError

STRATEGIES = ("xx", "xy", "hybrid")


@dataclass(frozen=True)
class PairMeta:
    """Per-row metadata the sampler needs (the Dataset itself holds only text)."""

    query_lang: np.ndarray  # str objects
    passage_lang: np.ndarray
    unit: np.ndarray  # int codes
    query_text: np.ndarray  # int codes in one text space shared with passages
    passage_text: np.ndarray

    def __len__(self) -> int:
        return len(self.unit)

    @classmethod
    def from_lists(
        cls,
        queries: Sequence[str],
        passages: Sequence[str],
        query_langs: Sequence[str],
        passage_langs: Sequence[str],
        units: Sequence[str],
    ) -> PairMeta:
        texts: dict[str, int] = {}
        qcode = np.fromiter(
            (texts.setdefault(t, len(texts)) for t in queries), np.int64, len(queries)
        )
        pcode = np.fromiter(
            (texts.setdefault(t, len(texts)) for t in passages), np.int64, len(passages)
        )
        umap: dict[str, int] = {}
        ucode = np.fromiter((umap.setdefault(u, len(umap)) for u in units), np.int64, len(units))
        return cls(
            np.asarray(query_langs, dtype=object),
            np.asarray(passage_langs, dtype=object),
            ucode,
            qcode,
            pcode,
        )

    @classmethod
    def from_pairs(cls, df: Any) -> PairMeta:
        """From a pairs table (:mod:`xeval.training.pairs` schema)."""
        return cls.from_lists(
            df["query"].to_list(),
            df["passage"].to_list(),
            df["query_lang"].to_list(),
            df["passage_lang"].to_list(),
            df["unit_id"].to_list(),
        )


def detect_world_size() -> int:
    """Processes in the job: torch.distributed when initialised, else ``$WORLD_SIZE``, else 1."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size()
    except ImportError:  # pragma: no cover
        pass
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def shard_batches(batches: Sequence[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """The batches rank ``rank`` trains on: every ``world_size``-th, starting at ``rank``."""
    return list(batches[rank::world_size])


class _Pool:
    """Rows of one pool read through seeded permutations, with deferred rows first."""

    def __init__(self, rows: np.ndarray, rng: np.random.Generator) -> None:
        self.rows = rows
        self.rng = rng
        self.order: deque[int] = deque()
        self.deferred: deque[int] = deque()

    def _refill(self) -> None:
        self.order.extend(self.rng.permutation(self.rows).tolist())

    def take(self, k: int, used: set[int], keys: Callable[[int], tuple[int, ...]]) -> list[int]:
        out: list[int] = []
        waiting: list[int] = []
        # rows scanned before giving up: enough for a full reshuffle plus what is waiting
        budget = 2 * len(self.rows) + len(self.deferred) + k
        while len(out) < k:
            if budget == 0:
                raise XevalError(
                    f"cannot fill a batch of {k} with distinct texts and units from a pool of "
                    f"{len(self.rows)} rows: lower the batch size"
                )
            budget -= 1
            if self.deferred:
                row = self.deferred.popleft()
            else:
                if not self.order:
                    self._refill()
                row = self.order.popleft()
            ks = keys(row)
            if any(x in used for x in ks):
                waiting.append(row)
                continue
            used.update(ks)
            out.append(row)
        self.deferred.extendleft(reversed(waiting))
        return out


class BatchPlan:
    """Pure batch planning: which rows form each batch of an epoch, and in which mode."""

    def __init__(
        self,
        meta: PairMeta,
        batch_size: int,
        strategy: str = "hybrid",
        alpha: float = 0.5,
        seed: int = 0,
        world_size: int = 1,
    ) -> None:
        if strategy not in STRATEGIES:
            raise XevalError(f"unknown strategy {strategy!r}; choose from {list(STRATEGIES)}")
        if not 0.0 <= float(alpha) <= 1.0 or alpha != alpha:
            raise XevalError(f"alpha must lie in [0, 1], got {alpha}")
        if batch_size < 1:
            raise XevalError(f"batch size must be >= 1, got {batch_size}")
        if world_size < 1:
            raise XevalError(f"world size must be >= 1, got {world_size}")
        if len(meta) == 0:
            raise XevalError("no training pairs")
        self.meta, self.batch_size, self.strategy = meta, batch_size, strategy
        self.alpha = float(alpha) if strategy == "hybrid" else (1.0 if strategy == "xx" else 0.0)
        self.seed, self.world_size = int(seed), world_size
        mono = meta.query_lang == meta.passage_lang
        self.languages = sorted(set(meta.query_lang[mono].tolist()))
        self.mono_pools = {
            lang: np.flatnonzero(mono & (meta.query_lang == lang)) for lang in self.languages
        }
        self.cross_pool = np.flatnonzero(~mono)
        self._keys = np.stack(
            [
                meta.query_text,
                meta.passage_text,
                meta.unit + int(max(meta.query_text.max(), meta.passage_text.max())) + 1,
            ],
            axis=1,
        )
        self._check()
        n = {
            "xx": int(mono.sum()),
            "xy": len(self.cross_pool),
            "hybrid": len(meta),
        }[strategy]
        group = batch_size * world_size
        self.num_groups = n // group
        if self.num_groups == 0:
            raise XevalError(
                f"{n} usable pairs cannot fill one batch of {batch_size}"
                + (f" on each of {world_size} processes" if world_size > 1 else "")
            )

    def _distinct(self, rows: np.ndarray) -> int:
        """A lower bound on how many rows of a pool can share a batch (distinct units)."""
        return len(np.unique(self.meta.unit[rows]))

    def _check(self) -> None:
        group = self.batch_size * self.world_size
        who = f"batch size {self.batch_size}" + (
            f" x {self.world_size} processes" if self.world_size > 1 else ""
        )
        if self.alpha > 0:
            if not self.languages:
                raise XevalError(f"strategy {self.strategy!r} needs X-X pairs; the data has none")
            for lang, rows in self.mono_pools.items():
                if self._distinct(rows) < group:
                    raise XevalError(
                        f"{who} is larger than the {lang!r} X-X pool ({self._distinct(rows)} "
                        f"units): lower --batch-size or drop that language"
                    )
        if self.alpha < 1:
            if len(self.cross_pool) == 0:
                langs = sorted(
                    set(self.meta.query_lang.tolist()) | set(self.meta.passage_lang.tolist())
                )
                raise XevalError(
                    f"strategy {self.strategy!r} needs cross-lingual pairs; the data has "
                    f"{len(langs)} language(s) {langs} and no X-Y pair"
                )
            if self._distinct(self.cross_pool) < group:
                raise XevalError(
                    f"{who} is larger than the X-Y pool ({self._distinct(self.cross_pool)} units)"
                )

    def __len__(self) -> int:
        return self.num_groups * self.world_size

    def epoch(self, epoch: int) -> list[tuple[str, str | None, list[int]]]:
        """Every batch of ``epoch`` as (mode 'xx'|'xy', X-X language or None, row indices)."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        mono = {lang: _Pool(rows, rng) for lang, rows in self.mono_pools.items()}
        cross = _Pool(self.cross_pool, rng) if len(self.cross_pool) else None
        keys_arr = self._keys

        def keys(row: int) -> tuple[int, ...]:
            k = keys_arr[row]
            return (int(k[0]), int(k[1]), int(k[2]))

        out: list[tuple[str, str | None, list[int]]] = []
        for _ in range(self.num_groups):
            if self.alpha >= 1.0 or (self.alpha > 0.0 and rng.random() < self.alpha):
                lang = self.languages[int(rng.integers(len(self.languages)))]
                rows = mono[lang].take(self.batch_size * self.world_size, set(), keys)
                mode: str = "xx"
            else:
                lang = None
                assert cross is not None
                rows = cross.take(self.batch_size * self.world_size, set(), keys)
                mode = "xy"
            for r in range(self.world_size):
                out.append((mode, lang, rows[r * self.batch_size : (r + 1) * self.batch_size]))
        return out


class HybridBatchSampler(BatchSampler):
    """A batch sampler over a :class:`BatchPlan`, with the trainer's ``set_epoch`` hook.

    It has the interface of sentence-transformers' ``DefaultBatchSampler``; build it through
    :func:`make_batch_sampler`, whose result goes into
    ``SentenceTransformerTrainingArguments(batch_sampler=...)``.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = True,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
        *,
        meta: PairMeta,
        strategy: str = "hybrid",
        alpha: float = 0.5,
        world_size: int | None = None,
    ) -> None:
        # no super().__init__: it wants a sampler, and batches come from the plan
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, True
        self.valid_label_columns, self.generator, self.seed = valid_label_columns, generator, seed
        self.epoch = 0
        if len(dataset) != len(meta):
            raise XevalError(f"dataset has {len(dataset)} rows but the metadata {len(meta)}")
        self.plan = BatchPlan(
            meta, batch_size, strategy, alpha, seed, world_size or detect_world_size()
        )
        self._cache: tuple[int, list] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self, epoch: int | None = None) -> list[tuple[str, str | None, list[int]]]:
        e = self.epoch if epoch is None else epoch
        if self._cache is None or self._cache[0] != e:
            self._cache = (e, self.plan.epoch(e))
        return self._cache[1]

    def __iter__(self) -> Iterator[list[int]]:
        for _, _, rows in self.batches():
            yield rows

    def __len__(self) -> int:
        return len(self.plan)


class BatchSamplerFactory:
    """The callable sentence-transformers' trainer calls to build the batch sampler.

    Picklable (the trainer saves its arguments with every checkpoint): only the settings
    are pickled, not the metadata or the samplers built. ``holder`` (a list), when given,
    receives each sampler built, so a callback can reach it.
    """

    def __init__(
        self,
        meta: PairMeta,
        strategy: str = "hybrid",
        alpha: float = 0.5,
        world_size: int | None = None,
        holder: list | None = None,
    ) -> None:
        self.meta, self.strategy, self.alpha = meta, strategy, alpha
        self.world_size, self.holder = world_size, holder

    def __call__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = True,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
    ) -> HybridBatchSampler:
        if self.meta is None:
            raise XevalError("this batch-sampler factory was unpickled without its pair metadata")
        s = HybridBatchSampler(
            dataset,
            batch_size,
            drop_last,
            valid_label_columns,
            generator,
            seed,
            meta=self.meta,
            strategy=self.strategy,
            alpha=self.alpha,
            world_size=self.world_size,
        )
        if self.holder is not None:
            self.holder.append(s)
        return s

    def __getstate__(self) -> dict[str, Any]:
        return {
            "meta": None,
            "strategy": self.strategy,
            "alpha": self.alpha,
            "world_size": self.world_size,
            "holder": None,
        }

    def __repr__(self) -> str:
        return f"BatchSamplerFactory(strategy={self.strategy!r}, alpha={self.alpha})"


def make_batch_sampler(
    meta: PairMeta,
    strategy: str = "hybrid",
    alpha: float = 0.5,
    world_size: int | None = None,
    holder: list | None = None,
) -> BatchSamplerFactory:
    """The ``batch_sampler=`` value for ``SentenceTransformerTrainingArguments``."""
    return BatchSamplerFactory(meta, strategy, alpha, world_size, holder)

"""On-disk embedding cache keyed by model fingerprint, prompt, precision and text.

Layout (one folder per (model fingerprint, prompt, precision))::

    ROOT/<sha256(fingerprint, prompt[, precision])[:32]>/
        meta.json                  fingerprint, prompt, precision, dim, dtype (written once)
        shard-<id>.npy             float32 [n, dim] embeddings, exactly as the model made them
        shard-<id>.keys.parquet    key (sha256 of prompt + text), row: the index of that shard
        index.parquet              key, row, shard of many shards (written by compaction)
        index.lock                 held while compacting

A text's key is ``sha256_text(prompt, text)``; the folder name already binds the model
fingerprint, the prompt and the compute precision (``fp32`` folders keep the name they
had before precision was part of the key), so a changed model, prompt or precision lands
in another folder and can never reuse stale vectors: bf16 vectors are never served for an
fp32 request or the reverse. Shards are append-only and written atomically (the ``.npy``
first, then its key file, which is what makes the shard visible): concurrent writers never
touch the same file and a crash leaves at most an orphan ``.npy`` that is ignored.
Vectors are stored as float32 (the precision the search uses; no rounding surprise).
A damaged shard (unreadable, truncated, wrong shape, non-finite values) is reported with
a warning, moved aside as ``*.damaged`` and its texts are encoded again.

Merged index (compaction). Encoding stores a shard every 1,024 texts, so a large corpus
leaves thousands of key files, and opening each one in every new process is slow.
:meth:`EmbeddingCache.compact` therefore writes ``index.parquet``: the rows (key, row,
shard) of every key file present at the time, copied verbatim (duplicates included). A
reader lists the folder once (the key files present are the live shards), takes the
merged rows of live shards, reads only the key files of shards the merged index does not
cover, and keeps the first shard (by name) on duplicate keys, exactly as without it.

Why this is safe with several processes writing, reading and compacting at once:

- the per-shard key files are **never deleted** by compaction: a key file is immutable
  once written and stays the authority on whether its shard is live, so whatever
  ``index.parquet`` a reader sees (old, new or none) and whenever it lists the folder,
  every live shard is found either in the merged index or in its own key file. Deleting
  key files would race a reader that listed the folder (or opened the old merged index)
  just before; keeping them costs one directory entry per shard, not a file read;
- ``index.parquet`` is replaced atomically (``atomic_path``: write a temporary file,
  rename), so a reader sees the old merged index or the new one, never half of one;
- compactors take a lock (``index.lock``, ``filelock``), so two never both write; the
  automatic one (:meth:`maybe_compact`) only tries the lock and skips when it is held;
  under the lock the compactor reads the folder afresh, so a merged index is never older
  than the one it replaces. A shard written while a compaction runs is simply not covered
  yet: readers take it from its key file. Readers never need the lock: even two
  unlocked compactors would each write a correct merged index of the shards they saw;
- a merged row is used only while its shard's key file exists, so a shard set aside as
  damaged (its key file renamed) disappears from the merged index too;
- a damaged ``index.parquet`` (unreadable, wrong columns) is set aside as
  ``index.parquet.damaged`` with a warning; readers fall back to the key files and the
  next compaction writes a new one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from xeval.errors import XevalError
from xeval.provenance import atomic_path, sha256_text, write_json
from xeval.tables import read_json

DTYPE = np.float32
PRECISIONS = ("fp32", "bf16")
COMPACT_AFTER = 64  # key files not covered by the merged index before it is rewritten
MERGED = "index.parquet"
KEY_SUFFIX = ".keys.parquet"
_SCHEMA = {"key": pl.String, "row": pl.Int64, "shard": pl.String}


class CacheWarning(UserWarning):
    """A damaged part of the embedding cache was set aside (its texts are re-encoded)."""


def text_keys(texts: Sequence[str], prompt: str) -> list[str]:
    """Cache keys: SHA-256 of prompt and text (NUL-separated)."""
    return [sha256_text(prompt, t) for t in texts]


def default_cache_root() -> Path:
    """``$XEVAL_CACHE/embeddings`` (or the platform cache dir)."""
    from xeval.sources import cache_dir

    return cache_dir() / "embeddings"


class EmbeddingCache:
    """Embeddings of one model under one prompt, stored as append-only shards."""

    def __init__(
        self, root: str | Path, fingerprint: str, prompt: str, precision: str = "fp32"
    ) -> None:
        if not fingerprint:
            raise XevalError("an embedding cache needs a model fingerprint")
        if precision not in PRECISIONS:
            raise XevalError(f"cache precision must be one of {PRECISIONS}, got {precision!r}")
        self.fingerprint = fingerprint
        self.prompt = prompt
        self.precision = precision
        parts = (fingerprint, prompt) if precision == "fp32" else (fingerprint, prompt, precision)
        self.folder = Path(root) / sha256_text(*parts)[:32]
        self._index: pl.DataFrame | None = None
        self._uncovered = 0  # key files index() had to read (not in the merged index)
        self._shards: dict[str, np.ndarray] = {}

    # ---- reading -----------------------------------------------------------------
    def _meta(self) -> dict | None:
        f = self.folder / "meta.json"
        if not f.exists():
            return None
        try:
            meta = read_json(f)
            int(meta["dim"])
        except (XevalError, ValueError, KeyError, TypeError) as exc:
            self._set_aside(f, f"unreadable cache metadata ({exc})")
            return None
        same = (meta.get("fingerprint"), meta.get("prompt"), meta.get("precision", "fp32"))
        if same != (self.fingerprint, self.prompt, self.precision):
            raise XevalError(
                "cache folder belongs to another model, prompt or precision (hash collision?)",
                file=f,
            )
        return meta

    def _set_aside(self, f: Path, why: str, then: str = "its texts are encoded again") -> None:
        """Warn and rename a damaged file to ``*.damaged`` (kept for inspection)."""
        warnings.warn(f"{f}: {why}; set aside, {then}", CacheWarning, 2)
        with contextlib.suppress(OSError):
            f.replace(f.with_name(f.name + ".damaged"))

    def _drop_shard(self, shard: str, why: str) -> None:
        for f in (self.folder / f"{shard}.npy", self.folder / f"{shard}{KEY_SUFFIX}"):
            if f.exists():
                self._set_aside(f, why)
                why = "its shard is damaged"
        self._shards.pop(shard, None)
        if self._index is not None:
            self._index = self._index.filter(pl.col("shard") != shard)

    def _live_shards(self) -> list[str]:
        """Names of the shards whose key file is present (sorted: first shard wins)."""
        try:
            names = [e.name for e in os.scandir(self.folder)]
        except FileNotFoundError:
            return []
        keys = (n for n in names if n.startswith("shard-") and n.endswith(KEY_SUFFIX))
        return sorted(n.removesuffix(KEY_SUFFIX) for n in keys)

    def _read_merged(self) -> pl.DataFrame | None:
        """The merged index (key, row, shard), or None (absent, or damaged: set aside)."""
        f = self.folder / MERGED
        try:
            merged = pl.read_parquet(f).select(list(_SCHEMA)).cast(_SCHEMA)  # type: ignore[arg-type]
            if merged.null_count().sum_horizontal().item():
                raise ValueError("null values")
        except FileNotFoundError:
            return None
        except Exception as exc:  # polars raises several error types
            why = f"unreadable merged cache index ({type(exc).__name__})"
            self._set_aside(f, why, "the shards' own key files are read instead")
            return None
        return merged

    def _rows(self) -> tuple[pl.DataFrame, int]:
        """key, row, shard of every live shard (duplicates kept, shard order), and how
        many key files had to be read (the shards the merged index does not cover)."""
        live = self._live_shards()
        merged = self._read_merged() if live else None
        frames, covered = [], set()
        if merged is not None:
            merged = merged.filter(pl.col("shard").is_in(live))  # damaged shards set aside
            covered = set(merged["shard"].unique().to_list())
            frames.append(merged)
        uncovered = [s for s in live if s not in covered]
        for shard in uncovered:
            f = self.folder / f"{shard}{KEY_SUFFIX}"
            try:
                keys = pl.read_parquet(f).select(pl.col("key").cast(pl.String), "row")
            except FileNotFoundError:  # set aside by another process since the listing
                continue
            except Exception as exc:  # polars raises several error types
                self._drop_shard(shard, f"unreadable cache index ({type(exc).__name__})")
                continue
            frames.append(keys.with_columns(pl.lit(shard).alias("shard")).cast(_SCHEMA))  # type: ignore[arg-type]
        rows = pl.concat(frames) if frames else pl.DataFrame(schema=_SCHEMA)
        if len(frames) > 1:  # stable: rows keep their order within a shard
            rows = rows.sort("shard", maintain_order=True)
        return rows.select(list(_SCHEMA)), len(uncovered)

    def index(self) -> pl.DataFrame:
        """key, shard, row for every cached vector (the first shard wins on duplicates)."""
        if self._index is None:
            rows, self._uncovered = self._rows()
            self._index = rows.unique("key", keep="first", maintain_order=True)
        return self._index

    def compact(self, min_uncovered: int = 0, *, wait: bool = True) -> bool:
        """Write the merged index (``index.parquet``) covering every shard present now.

        Only when more than ``min_uncovered`` key files are not covered yet. Holds the
        folder's lock while it reads and writes, so two compactors never both write;
        with ``wait=False`` it gives up at once when another process holds the lock.
        Returns whether a merged index was written.
        """
        from filelock import FileLock, Timeout

        if not self.folder.is_dir():
            return False
        lock = FileLock(self.folder / "index.lock", blocking=wait)
        try:
            with lock:
                rows, uncovered = self._rows()  # afresh, under the lock
                self._index = rows.unique("key", keep="first", maintain_order=True)
                self._uncovered = uncovered
                if uncovered <= min_uncovered or rows.height == 0:
                    return False
                with atomic_path(self.folder / MERGED) as tmp:
                    rows.write_parquet(tmp, statistics=False)
                self._uncovered = 0
        except Timeout:
            return False
        return True

    def maybe_compact(self, after: int | None = None) -> bool:
        """Compact when more than ``after`` (:data:`COMPACT_AFTER`) key files are uncovered.

        Skipped when another process holds the lock (it is compacting already).

        What the encode path calls after storing shards. Compaction only saves reading
        time, so a failure to write (read-only folder, full disk) is a warning.
        """
        after = COMPACT_AFTER if after is None else after
        if self._index is not None and self._uncovered <= after:
            return False  # known from this object's last reading (no add() since)
        try:
            return self.compact(after, wait=False)
        except (OSError, XevalError) as exc:
            warnings.warn(f"{self.folder}: cache not compacted ({exc})", CacheWarning, 2)
            return False

    def __len__(self) -> int:
        return self.index().height

    def _shard(self, name: str, rows: int, dim: int) -> np.ndarray | None:
        """The shard's vectors (memory-mapped), or None when it is damaged (set aside)."""
        if name not in self._shards:
            f = self.folder / f"{name}.npy"
            try:
                arr = np.load(f, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                self._drop_shard(name, f"unreadable cache shard ({exc})")
                return None
            if arr.ndim != 2 or arr.shape[0] < rows or arr.shape[1] != dim or arr.dtype != DTYPE:
                self._drop_shard(name, f"cache shard of shape {arr.shape} {arr.dtype}")
                return None
            self._shards[name] = arr
        return self._shards[name]

    def lookup(self, keys: Sequence[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """Vectors for the cached keys and a boolean mask of which keys were found.

        The array has one row per key (rows of missing keys are zero), or is ``None``
        when nothing is cached.
        """
        found = np.zeros(len(keys), dtype=bool)
        idx = self.index()
        if not len(keys) or idx.height == 0:
            return None, found
        want = pl.DataFrame({"key": list(keys), "pos": np.arange(len(keys))})
        hits = want.join(idx, on="key", how="inner")
        if hits.height == 0:
            return None, found
        meta = self._meta()
        if meta is None:  # no (readable) metadata: nothing here can be trusted
            return None, found
        dim = int(meta["dim"])
        out = np.zeros((len(keys), dim), dtype=DTYPE)
        for (shard,), grp in hits.group_by("shard"):
            pos, rows = grp["pos"].to_numpy(), grp["row"].to_numpy()
            arr = self._shard(shard, int(rows.max()) + 1, dim)
            if arr is None:
                continue
            order = np.argsort(rows)  # sequential reads from the memory map
            vec = arr[rows[order]]
            if not np.isfinite(vec).all():
                self._drop_shard(shard, "cache shard holds NaN or infinite values")
                continue
            out[pos[order]] = vec
            found[pos] = True
        return (out, found) if found.any() else (None, found)

    # ---- writing -----------------------------------------------------------------
    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store one new shard (atomically); keys already cached are stored again harmlessly."""
        vectors = np.ascontiguousarray(vectors, dtype=DTYPE)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ValueError(f"{len(keys)} keys but vectors of shape {vectors.shape}")
        if not len(keys):
            return
        meta = self._meta()
        if meta is None:
            write_json(
                self.folder / "meta.json",
                {
                    "fingerprint": self.fingerprint,
                    "prompt": self.prompt,
                    "precision": self.precision,
                    "dim": int(vectors.shape[1]),
                    "dtype": "float32",
                    "key": "sha256(prompt NUL text NUL)",
                },
            )
        elif int(meta["dim"]) != vectors.shape[1]:
            raise XevalError(
                f"vectors of dim {vectors.shape[1]} for a cache of dim {meta['dim']}",
                file=self.folder / "meta.json",
            )
        name = f"shard-{uuid.uuid4().hex}"
        with atomic_path(self.folder / f"{name}.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, vectors)
        table = pl.DataFrame({"key": list(keys), "row": np.arange(len(keys), dtype=np.int64)})
        with atomic_path(self.folder / f"{name}{KEY_SUFFIX}") as tmp:
            table.write_parquet(tmp)
        self._index = None

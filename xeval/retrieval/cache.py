"""On-disk embedding cache keyed by model fingerprint, prompt, precision and text.

Layout (one folder per (model fingerprint, prompt, precision))::

    ROOT/<sha256(fingerprint, prompt[, precision])[:32]>/
        meta.json                  fingerprint, prompt, precision, dim, dtype (written once)
        shard-<id>.npy             float32 [n, dim] embeddings, exactly as the model made them
        shard-<id>.keys.parquet    key (sha256 of prompt + text), row: the index of that shard

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
"""

from __future__ import annotations

import contextlib
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

    def _set_aside(self, f: Path, why: str) -> None:
        """Warn and rename a damaged file to ``*.damaged`` (kept for inspection)."""
        warnings.warn(f"{f}: {why}; set aside, its texts are encoded again", CacheWarning, 2)
        with contextlib.suppress(OSError):
            f.replace(f.with_name(f.name + ".damaged"))

    def _drop_shard(self, shard: str, why: str) -> None:
        for f in (self.folder / f"{shard}.npy", self.folder / f"{shard}.keys.parquet"):
            if f.exists():
                self._set_aside(f, why)
                why = "its shard is damaged"
        self._shards.pop(shard, None)
        if self._index is not None:
            self._index = self._index.filter(pl.col("shard") != shard)

    def index(self) -> pl.DataFrame:
        """key, shard, row for every cached vector (the first shard wins on duplicates)."""
        if self._index is None:
            files = sorted(self.folder.glob("shard-*.keys.parquet"))
            frames = []
            for f in files:
                shard = f.name.removesuffix(".keys.parquet")
                try:
                    keys = pl.read_parquet(f).select(pl.col("key").cast(pl.String), "row")
                except Exception as exc:  # polars raises several error types
                    self._drop_shard(shard, f"unreadable cache index ({type(exc).__name__})")
                    continue
                frames.append(keys.with_columns(pl.lit(shard).alias("shard")))
            schema = {"key": pl.String, "row": pl.Int64, "shard": pl.String}
            frames = [x.cast(schema) for x in frames]  # type: ignore[arg-type]
            idx = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
            self._index = idx.select(list(schema)).unique("key", keep="first", maintain_order=True)
        return self._index

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
        with atomic_path(self.folder / f"{name}.keys.parquet") as tmp:
            table.write_parquet(tmp)
        self._index = None

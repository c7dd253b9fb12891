"""On-disk embedding cache keyed by model fingerprint, prompt and text.

Layout (one folder per (model fingerprint, prompt) pair)::

    ROOT/<sha256(fingerprint, prompt)[:32]>/
        meta.json                  fingerprint, prompt, dim, dtype (written once)
        shard-<id>.npy             float32 [n, dim] embeddings, exactly as the model made them
        shard-<id>.keys.parquet    key (sha256 of prompt + text), row: the index of that shard

A text's key is ``sha256_text(prompt, text)``; the folder name already binds the model
fingerprint and the prompt, so a changed model or prompt lands in another folder and can
never reuse stale vectors. Shards are append-only and written atomically (the ``.npy``
first, then its key file, which is what makes the shard visible): concurrent writers never
touch the same file and a crash leaves at most an orphan ``.npy`` that is ignored.
Vectors are stored as float32 (the precision the search uses; no rounding surprise).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from xeval.errors import XevalError
from xeval.provenance import atomic_path, sha256_text, write_json
from xeval.tables import read_json

DTYPE = np.float32


def text_keys(texts: Sequence[str], prompt: str) -> list[str]:
    """Cache keys: SHA-256 of prompt and text (NUL-separated)."""
    return [sha256_text(prompt, t) for t in texts]


def default_cache_root() -> Path:
    """``$XEVAL_CACHE/embeddings`` (or the platform cache dir)."""
    from xeval.sources import cache_dir

    return cache_dir() / "embeddings"


class EmbeddingCache:
    """Embeddings of one model under one prompt, stored as append-only shards."""

    def __init__(self, root: str | Path, fingerprint: str, prompt: str) -> None:
        if not fingerprint:
            raise XevalError("an embedding cache needs a model fingerprint")
        self.fingerprint = fingerprint
        self.prompt = prompt
        self.folder = Path(root) / sha256_text(fingerprint, prompt)[:32]
        self._index: pl.DataFrame | None = None
        self._shards: dict[str, np.ndarray] = {}

    # ---- reading -----------------------------------------------------------------
    def _meta(self) -> dict | None:
        f = self.folder / "meta.json"
        if not f.exists():
            return None
        meta = read_json(f)
        if meta.get("fingerprint") != self.fingerprint or meta.get("prompt") != self.prompt:
            raise XevalError(
                "cache folder belongs to another model or prompt (hash collision?)", file=f
            )
        return meta

    def index(self) -> pl.DataFrame:
        """key, shard, row for every cached vector (the first shard wins on duplicates)."""
        if self._index is None:
            files = sorted(self.folder.glob("shard-*.keys.parquet"))
            frames = []
            for f in files:
                try:
                    keys = pl.read_parquet(f)
                except Exception as exc:  # polars raises several error types
                    raise XevalError(f"unreadable cache index: {exc}", file=f) from None
                shard = f.name.removesuffix(".keys.parquet")
                frames.append(keys.with_columns(pl.lit(shard).alias("shard")))
            schema = {"key": pl.String, "row": pl.Int64, "shard": pl.String}
            idx = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
            self._index = idx.select(list(schema)).unique("key", keep="first", maintain_order=True)
        return self._index

    def __len__(self) -> int:
        return self.index().height

    def _shard(self, name: str) -> np.ndarray:
        if name not in self._shards:
            f = self.folder / f"{name}.npy"
            try:
                self._shards[name] = np.load(f, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise XevalError(f"unreadable cache shard: {exc}", file=f) from None
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
        dim = int(self._meta()["dim"])  # type: ignore[index]
        out = np.zeros((len(keys), dim), dtype=DTYPE)
        for (shard,), grp in hits.group_by("shard"):
            arr = self._shard(shard)
            pos, rows = grp["pos"].to_numpy(), grp["row"].to_numpy()
            order = np.argsort(rows)  # sequential reads from the memory map
            out[pos[order]] = arr[rows[order]]
            found[pos] = True
        return out, found

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

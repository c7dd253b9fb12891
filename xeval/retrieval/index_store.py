"""usearch HNSW indexes saved next to the embedding cache, reused while the vectors are unchanged.

Layout::

    ROOT/indexes/<key>.usearch   the graph and vectors (usearch's own format)
    ROOT/indexes/<key>.json      what the key binds: vector count, dim, parameters, versions

``key`` is a SHA-256 over the document vectors' bytes (after normalisation, in search
order), the index parameters and the usearch version, so an index is reused only for the
very vectors it was built from; a changed model, prompt, precision, corpus or parameter
builds (and stores) a new one. Files are written atomically; an unreadable or mismatched
file is rebuilt over.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from xeval.errors import XevalError
from xeval.provenance import atomic_path, write_json
from xeval.retrieval.search import HnswIndex


def index_key(docs: np.ndarray, params: dict[str, Any]) -> str:
    """SHA-256 over the vectors, their shape and the parameters (usearch version included)."""
    import usearch

    docs = np.ascontiguousarray(docs, dtype=np.float32)
    h = hashlib.sha256()
    meta = {"shape": list(docs.shape), "params": params, "usearch": usearch.__version__}
    h.update(json.dumps(meta, sort_keys=True).encode())
    h.update(memoryview(docs).cast("B"))
    return h.hexdigest()


def stored_index(docs: np.ndarray, root: Path | None, params: dict[str, Any]) -> HnswIndex:
    """The HNSW index over ``docs`` from ``root/indexes`` (built and stored when absent).

    ``root`` None: build without storing. ``params`` are :class:`HnswIndex`'s keywords.
    """
    if root is None:
        return HnswIndex(docs, **params)
    from usearch.index import Index

    key = index_key(docs, {k: v for k, v in sorted(params.items()) if k != "threads"})
    path = Path(root) / "indexes" / f"{key}.usearch"
    if path.exists():
        try:
            return HnswIndex(docs, **params, index=Index.restore(str(path)))
        except (XevalError, RuntimeError, ValueError, OSError) as exc:
            warnings.warn(f"{path}: unreadable stored index ({exc}); rebuilt", stacklevel=2)
    built = HnswIndex(docs, **params)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        built.index.save(str(tmp))
    write_json(path.with_suffix(".json"), {"n": len(docs), "dim": docs.shape[1], **built.params})
    return built

"""Batched encoding with the model's prompts, a progress bar and the embedding cache."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from xeval.retrieval.cache import DTYPE, EmbeddingCache, text_keys

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

QUERY_PROMPT_NAMES = ("query",)
PASSAGE_PROMPT_NAMES = ("passage", "document", "corpus", "doc")


def default_prompts(model: SentenceTransformer) -> dict[str, str]:
    """The model's own query / passage prompts (e5: ``query: `` / ``passage: ``), else ``""``."""
    prompts = dict(getattr(model, "prompts", None) or {})

    def pick(names: Sequence[str]) -> str:
        return next((prompts[n] for n in names if prompts.get(n)), "")

    return {"query": pick(QUERY_PROMPT_NAMES), "passage": pick(PASSAGE_PROMPT_NAMES)}


def uses_cosine(model: SentenceTransformer) -> bool:
    """Whether the model scores with cosine (the sentence-transformers default)."""
    name = getattr(model, "similarity_fn_name", None)
    return str(name or "cosine").lower() in ("cosine", "similarityfunction.cosine")


def encode_texts(
    model: SentenceTransformer,
    texts: Sequence[str],
    *,
    prompt: str = "",
    batch_size: int = 64,
    cache: EmbeddingCache | None = None,
    chunk_size: int = 1024,
    flush_seconds: float = 60.0,
    progress: bool = True,
    desc: str = "encode",
) -> tuple[np.ndarray, dict[str, int]]:
    """Embed ``texts`` (float32, one row each) with ``prompt`` prepended; reuse ``cache``.

    Duplicate texts are encoded once. Texts missing from the cache are encoded longest
    first in chunks of ``chunk_size``, and each chunk is stored as it finishes, so an
    interrupted run resumes where it stopped (a shard is also stored every
    ``flush_seconds``). Returns the vectors and counts
    ``{"texts", "unique", "cached", "encoded"}``.
    """
    from tqdm.auto import tqdm

    texts = list(texts)
    keys = text_keys(texts, prompt)
    uniq: dict[str, int] = {}
    first = [uniq.setdefault(k, len(uniq)) for k in keys]
    ukeys = list(uniq)
    utexts = [""] * len(ukeys)
    for t, i in zip(texts, first, strict=True):
        utexts[i] = t
    if cache is not None:
        vectors, found = cache.lookup(ukeys)
    else:
        vectors, found = None, np.zeros(len(ukeys), dtype=bool)
    todo = np.flatnonzero(~found)
    # longest first: similar lengths share a chunk, so little padding
    todo = todo[np.argsort([-len(utexts[i]) for i in todo], kind="stable")]
    bar = tqdm(
        total=len(ukeys), initial=int(found.sum()), desc=desc, unit="text", disable=not progress
    )
    with bar:
        done, batches, last = 0, [], time.monotonic()
        for b in range(0, len(todo), batch_size):
            batch = [utexts[i] for i in todo[b : b + batch_size]]
            out = model.encode(
                batch,
                prompt=prompt,
                batch_size=batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=False,
            )
            batches.append(np.asarray(out, dtype=DTYPE))
            bar.update(len(batch))
            pending = b + len(batch) - done
            end = b + len(batch) == len(todo)
            if end or pending >= chunk_size or time.monotonic() - last > flush_seconds:
                # store a shard per chunk (or per minute): an interruption loses little
                part = todo[done : done + pending]
                emb = np.concatenate(batches)
                if vectors is None:
                    vectors = np.zeros((len(ukeys), emb.shape[1]), dtype=DTYPE)
                vectors[part] = emb
                if cache is not None:
                    cache.add([ukeys[i] for i in part], emb)
                done, batches, last = done + pending, [], time.monotonic()
    if vectors is None:  # no texts at all
        dim = model.get_embedding_dimension() or 0
        vectors = np.zeros((0, dim), dtype=DTYPE)
    stats = {
        "texts": len(texts),
        "unique": len(ukeys),
        "cached": int(found.sum()),
        "encoded": len(todo),
    }
    return vectors[np.asarray(first, dtype=np.int64)], stats


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(DTYPE, copy=False)


def fingerprint_model(model: SentenceTransformer) -> str:
    """SHA-256 over a loaded model's weights, module layout and prompts.

    Used when no on-disk fingerprint is known (a model built in memory); two models
    with equal weights, modules and prompts get the same fingerprint.
    """
    import hashlib

    import torch

    h = hashlib.sha256()
    h.update(repr([type(m).__name__ for m in model]).encode())
    h.update(repr(sorted((getattr(model, "prompts", None) or {}).items())).encode())
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        h.update(repr(sorted(tok.get_vocab().items())).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()

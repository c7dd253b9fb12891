"""Batched encoding: length-sorted batches, tokenization ahead of the model, the cache.

The encode path (what ``xeval run`` uses) is sentence-transformers' own preprocessing and
forward pass, arranged to leave the CPU to the matrix products:

- every text is tokenized once up front (a fast-tokenizer batch call) to learn its length;
  the texts missing from the cache are then encoded longest first across the whole set,
  so each batch holds similar lengths and little padding;
- the next batch is tokenized in a thread while the model runs the current one;
- texts are truncated only at the model's own maximum (``max_seq_length``) and the
  truncated ones are counted;
- the forward pass runs under :meth:`xeval.precision.Precision.autocast` (bf16 or fp32).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xeval.retrieval.cache import DTYPE, EmbeddingCache, text_keys

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from xeval.precision import Precision

# oneDNN (and ideep, its C++ layer in torch) cache compiled kernels per input shape, 1,024
# of each by default; on CPU (bf16 above all: AMX kernels) an entry is ~0.1-1 MiB, and the
# longest-first plan meets every length from the maximum (512) down, so the caches grew by
# hundreds of MiB in a long encode. Lengths only decrease along the plan, so a shape is not
# met again after its batches: a small cache costs nothing. Both are read from the
# environment when the first kernel is built, so this only helps if set before that.
KERNEL_CACHE_ENV = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "128", "LRU_CACHE_CAPACITY": "128"}


def bound_kernel_caches() -> None:
    """Cap oneDNN's kernel caches (unless the environment already sets them)."""
    import os

    for name, value in KERNEL_CACHE_ENV.items():
        os.environ.setdefault(name, value)


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim``; else nothing).

    The first batches of the longest-first plan are the largest (up to the model's maximum
    length); what they, the tokenizer thread and the kernel caches freed stays in glibc's
    heaps (arenas) as free but resident memory (~200 MiB at 100k passages with the tiny
    model), on top of which the search stage then allocates. Called once after encoding.
    """
    import contextlib
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl): nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


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


@dataclass(frozen=True)
class EncodeOptions:
    """How to encode: prompt, batch size, precision, how often to store, progress."""

    prompt: str = ""
    batch_size: int = 64
    precision: Precision | None = None  # None: fp32
    chunk_size: int = 1024  # texts per stored cache shard
    flush_seconds: float = 60.0  # ... or a shard at least this often
    progress: bool = True
    desc: str = "encode"
    shard: tuple[int, int] = (0, 1)  # (rank, world): encode every world-th batch from rank
    reuse: bool = True  # False: encode every text (the cache is only written)


def token_lengths(
    model: SentenceTransformer, texts: Sequence[str], prompt: str, chunk: int = 1024
) -> np.ndarray:
    """Untruncated token count of ``prompt + text`` (special tokens included) per text."""
    tok = getattr(model, "tokenizer", None)
    if tok is None or not texts:
        return np.asarray([len(t) for t in texts], dtype=np.int64)
    out = np.empty(len(texts), dtype=np.int64)
    # token ids of a chunk at a time: bounded memory (the fast tokenizer's encodings and
    # their Python id lists are ~30 KB per text: 16k texts at once held ~500 MiB for good)
    for s in range(0, len(texts), chunk):
        enc = tok(
            [prompt + t for t in texts[s : s + chunk]],
            add_special_tokens=True,
            truncation=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        out[s : s + len(enc["input_ids"])] = [len(x) for x in enc["input_ids"]]
    return out


def max_length(model: SentenceTransformer) -> int | None:
    """The model's own maximum input length in tokens (None when it states none)."""
    n = getattr(model, "max_seq_length", None)
    return int(n) if n else None


def _batches(
    model: SentenceTransformer, texts: list[str], order: np.ndarray, opts: EncodeOptions
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """(text indices, features) per batch; the next batch is tokenized in a thread."""
    bs = opts.batch_size
    starts = range(0, len(order), bs)

    def prep(b: int) -> dict[str, Any]:
        return model.preprocess([texts[i] for i in order[b : b + bs]], prompt=opts.prompt)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xeval-tokenize") as pool:
        pending = pool.submit(prep, starts[0]) if starts else None
        for j, b in enumerate(starts):
            assert pending is not None
            features = pending.result()
            if j + 1 < len(starts):
                pending = pool.submit(prep, starts[j + 1])
            yield order[b : b + bs], features


def _forward(model: SentenceTransformer, features: dict[str, Any], opts: EncodeOptions):
    import contextlib

    import torch
    from sentence_transformers.util import batch_to_device

    features = batch_to_device(features, model.device)
    autocast = opts.precision.autocast() if opts.precision else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        emb = model(features)["sentence_embedding"]
    return emb.float().cpu().numpy()


def _dedupe(texts: list[str], prompt: str) -> tuple[list[str], list[str], np.ndarray]:
    keys = text_keys(texts, prompt)
    uniq: dict[str, int] = {}
    first = [uniq.setdefault(k, len(uniq)) for k in keys]
    utexts = [""] * len(uniq)
    for t, i in zip(texts, first, strict=True):
        utexts[i] = t
    return list(uniq), utexts, np.asarray(first, dtype=np.int64)


def encode_texts(
    model: SentenceTransformer,
    texts: Sequence[str],
    options: EncodeOptions | None = None,
    *,
    cache: EmbeddingCache | None = None,
    **overrides: Any,
) -> tuple[np.ndarray, dict[str, int]]:
    """Embed ``texts`` (float32, one row each) with the prompt prepended; reuse ``cache``.

    ``overrides`` set fields of :class:`EncodeOptions` (``prompt=``, ``batch_size=``, ...).
    Duplicate texts are encoded once. Missing texts are encoded longest first, and a
    shard is stored every ``chunk_size`` texts (or ``flush_seconds``), so an interrupted
    run resumes where it stopped. With ``shard=(rank, world)`` only that rank's batches are
    encoded (into ``cache``; the other rows come back zero). Returns the vectors and counts ``{"texts", "unique",
    "cached", "encoded", "truncated"}`` (truncated: encoded texts longer than the model's
    maximum, cut there).
    """
    import dataclasses

    bound_kernel_caches()
    opts = dataclasses.replace(options or EncodeOptions(), **overrides)
    texts = list(texts)
    ukeys, utexts, first = _dedupe(texts, opts.prompt)
    vectors, found = cache.lookup(ukeys) if cache is not None and opts.reuse else (None, None)
    found = np.zeros(len(ukeys), dtype=bool) if found is None else found
    todo = np.flatnonzero(~found)
    lengths = token_lengths(model, [utexts[i] for i in todo], opts.prompt)
    limit = max_length(model)
    truncated = int((lengths > limit).sum()) if limit else 0
    todo = todo[np.argsort(-lengths, kind="stable")]  # longest first: little padding
    if opts.shard[1] > 1:  # a rank takes whole batches of the one-process plan (same bits)
        todo = todo[(np.arange(len(todo)) // opts.batch_size) % opts.shard[1] == opts.shard[0]]
    vectors = _encode_todo(model, utexts, ukeys, todo, vectors, cache, opts, int(found.sum()))
    if len(todo):
        release_free_memory()
    if cache is not None:  # many new shards: merge their key files (next runs read one)
        cache.maybe_compact()
    if vectors is None:  # no texts at all (or none in this rank's batches)
        dim = model.get_embedding_dimension() or 0
        vectors = np.zeros((len(ukeys), dim), dtype=DTYPE)
    stats = {
        "texts": len(texts),
        "unique": len(ukeys),
        "cached": int(found.sum()),
        "encoded": len(todo),
        "truncated": truncated,
    }
    # every text unique: ``first`` is 0..n-1, so no copy of the vectors is needed
    return (vectors if len(ukeys) == len(texts) else vectors[first]), stats


def _encode_todo(model, utexts, ukeys, todo, vectors, cache, opts: EncodeOptions, cached: int):
    """Encode ``utexts[todo]`` in order into ``vectors``, storing cache shards as it goes."""
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(ukeys), initial=cached, desc=opts.desc, unit="text", disable=not opts.progress
    )
    done, parts, last = 0, [], time.monotonic()
    with bar:
        for idx, features in _batches(model, utexts, todo, opts):
            parts.append(_forward(model, features, opts))
            bar.update(len(idx))
            pending = sum(len(p) for p in parts)
            end = done + pending == len(todo)
            if end or pending >= opts.chunk_size or time.monotonic() - last > opts.flush_seconds:
                # store a shard per chunk (or per minute): an interruption loses little
                part, emb = todo[done : done + pending], np.concatenate(parts)
                if vectors is None:
                    vectors = np.zeros((len(ukeys), emb.shape[1]), dtype=DTYPE)
                vectors[part] = emb
                if cache is not None:
                    cache.add([ukeys[i] for i in part], emb)
                done, parts, last = done + pending, [], time.monotonic()
    return vectors


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

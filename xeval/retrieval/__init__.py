"""Encoding (with an embedding cache), exact and HNSW search, and the run writer."""

from __future__ import annotations

from xeval.retrieval.cache import EmbeddingCache
from xeval.retrieval.encode import default_prompts, encode_texts
from xeval.retrieval.run import run_benchmark
from xeval.retrieval.search import HnswIndex, exact_ranks, exact_search, tie_ranks
from xeval.tables import TIE_RULE

__all__ = [
    "TIE_RULE",
    "EmbeddingCache",
    "HnswIndex",
    "default_prompts",
    "encode_texts",
    "exact_ranks",
    "exact_search",
    "run_benchmark",
    "tie_ranks",
]

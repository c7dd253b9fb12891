"""Lexical retrieval: per-language analysis and BM25 (bm25s) over every setting."""

from __future__ import annotations

from xeval.retrieval.lexical.analysis import Analyzer, make_analyzer
from xeval.retrieval.lexical.bm25 import (
    BM25Config,
    BM25Index,
    BM25Result,
    is_bm25,
    parse_bm25,
    run_bm25,
    run_bm25_spec,
)

__all__ = [
    "Analyzer",
    "BM25Config",
    "BM25Index",
    "BM25Result",
    "is_bm25",
    "make_analyzer",
    "parse_bm25",
    "run_bm25",
    "run_bm25_spec",
]

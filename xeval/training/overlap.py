"""Overlap guard: training texts must not leak into the evaluation benchmark.

Texts are compared after :func:`xeval.text.normalise` (Unicode NFKC, case folding, punctuation
dropped, whitespace collapsed). The report counts, for the benchmark's queries and
documents, how many unique normalised texts also occur among the training texts (queries
and passages together), and their share; optionally the share of benchmark texts that
share one character n-gram (default 50, spaces removed) with any training text, which
catches near-copies an exact match misses.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xeval.errors import XevalError
from xeval.text import normalise

DEFAULT_MAX_SHARE = 0.001


def _ngram_hashes(texts: Iterable[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every character n-gram (spaces removed) and the index of its text."""
    hashes: list[int] = []
    owner: list[int] = []
    for i, t in enumerate(texts):
        s = t.replace(" ", "")
        grams = [s] if 0 < len(s) < n else [s[j : j + n] for j in range(len(s) - n + 1)]
        hashes.extend(hash(g) for g in grams)
        owner.extend([i] * len(grams))
    return np.asarray(hashes, dtype=np.int64), np.asarray(owner, dtype=np.int64)


def overlap_report(
    train_texts: Iterable[str], bench: Any, ngram: int | None = None
) -> dict[str, Any]:
    """Overlap figures of ``train_texts`` against a benchmark's queries and corpus."""
    train = {normalise(t) for t in train_texts}
    train.discard("")
    report: dict[str, Any] = {
        "benchmark": bench.name,
        "benchmark_fingerprint": bench.fingerprint,
        "normalisation": "NFKC, casefold, punctuation removed, whitespace collapsed",
        "train_unique_texts": len(train),
    }
    total_hit = total = 0
    for part, table in (("queries", bench.queries), ("corpus", bench.corpus)):
        texts = {normalise(t) for t in table["text"].to_list()}
        texts.discard("")
        hit = texts & train
        report[part] = {
            "unique_texts": len(texts),
            "exact_overlap": len(hit),
            "exact_share": len(hit) / len(texts) if texts else 0.0,
            "examples": sorted(hit, key=len, reverse=True)[:5],
        }
        total_hit += len(hit)
        total += len(texts)
    report["exact_overlap"] = total_hit
    report["exact_share"] = total_hit / total if total else 0.0
    if ngram:
        grams, _ = _ngram_hashes(train, ngram)
        bench_texts = sorted(
            {normalise(t) for t in (*bench.queries["text"], *bench.corpus["text"])} - {""}
        )
        hashes, owner = _ngram_hashes(bench_texts, ngram)
        shared = len(np.unique(owner[np.isin(hashes, grams)]))
        report["ngram"] = {
            "n": ngram,
            "unit": "characters, spaces removed",
            "texts_sharing_an_ngram": shared,
            "share": shared / len(bench_texts) if bench_texts else 0.0,
        }
    return report


def check_overlap(
    pairs: pl.DataFrame,
    benchmark: str | Path,
    *,
    allow: bool = False,
    max_share: float = DEFAULT_MAX_SHARE,
    ngram: int | None = None,
) -> dict[str, Any]:
    """Compare training pairs with the benchmark directory ``benchmark``; refuse on overlap.

    Raises :class:`XevalError` when the exact overlap share of the benchmark's unique texts
    exceeds ``max_share`` (or, with ``ngram``, the n-gram share does), unless ``allow``.
    The report is returned either way (with ``refused``/``allowed`` recorded).
    """
    from xeval.benchmark.schema import load_benchmark

    bench_dir = Path(benchmark)
    if not bench_dir.is_dir():
        raise XevalError("overlap check: benchmark directory not found", file=bench_dir)
    bench = load_benchmark(bench_dir)
    texts = pairs["query"].to_list() + pairs["passage"].to_list()
    report = overlap_report(texts, bench, ngram=ngram)
    report["benchmark_path"] = str(bench_dir)
    report["max_share"] = max_share
    share = max(report["exact_share"], report.get("ngram", {}).get("share", 0.0))
    report["over_limit"] = share > max_share
    report["allowed"] = bool(allow)
    if report["over_limit"] and not allow:
        q, c = report["queries"], report["corpus"]
        raise XevalError(
            f"training data overlaps benchmark {bench.name!r}: {q['exact_overlap']} of "
            f"{q['unique_texts']} query texts and {c['exact_overlap']} of {c['unique_texts']} "
            f"documents occur in the training pairs (share {report['exact_share']:.2%}"
            + (f"; {report['ngram']['share']:.2%} share a {ngram}-char n-gram" if ngram else "")
            + f", limit {max_share:.2%}); pass --allow-overlap to train anyway",
            file=bench_dir,
        )
    return report

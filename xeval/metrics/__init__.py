"""Retrieval metrics over Polars tables: run (query_id, doc_id, score), qrels (query_id, doc_id,
relevance) -> per-query values.

Two engines give the same numbers (tested per query against each other and pytrec_eval to
1e-9): ``"polars"`` (default; Polars expressions, fast start) and ``"ranx"`` (numba; imported
only when asked for). One tie rule everywhere: score descending, then doc_id descending
(trec_eval's). Definitions: :mod:`xeval.metrics.definitions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from xeval.errors import XevalError
from xeval.metrics.definitions import (
    DEFAULT_METRICS,
    Metric,
    parse_metric,
    parse_metrics,
)
from xeval.metrics.polars_engine import language_bias, missing_queries, rank_run
from xeval.metrics.trec import read_trec_qrels, read_trec_run, write_trec_run
from xeval.metrics.validate import check_fingerprint, validate_run
from xeval.tables import TIE_RULE

ENGINES = ("polars", "ranx")


def score(
    run: pl.DataFrame,
    qrels: pl.DataFrame,
    metrics: str | Iterable[str | Metric] | None = None,
    *,
    engine: str = "polars",
    keys: Sequence[str] = ("query_id",),
) -> pl.DataFrame:
    """Per-query values (``*keys, metric, value``) of the ranking metrics for a valid run.

    Language bias (``LB``) needs exact ranks over the pool: see :func:`language_bias`.
    """
    ms = parse_metrics(metrics)
    if engine == "polars":
        from xeval.metrics import polars_engine as eng
    elif engine == "ranx":
        from xeval.metrics import ranx_engine as eng  # type: ignore[no-redef]
    else:
        raise XevalError(f"unknown engine {engine!r}; choose from {list(ENGINES)}")
    return eng.score(run, qrels, ms, keys)


__all__ = [
    "DEFAULT_METRICS",
    "ENGINES",
    "TIE_RULE",
    "Metric",
    "check_fingerprint",
    "language_bias",
    "missing_queries",
    "parse_metric",
    "parse_metrics",
    "rank_run",
    "read_trec_qrels",
    "read_trec_run",
    "score",
    "validate_run",
    "write_trec_run",
]

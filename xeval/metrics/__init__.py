"""Retrieval metrics over Polars tables: run (query_id, doc_id, score), qrels (query_id, doc_id,
relevance) -> per-query values.

Two engines give the same numbers (tested per query against each other and pytrec_eval to
1e-9): ``"polars"`` (default; Polars expressions, fast start) and ``"ranx"`` (numba; imported
only when asked for). One tie rule everywhere: score descending, then doc_id descending
(trec_eval's). Every metric is one entry of :data:`REGISTRY`
(:mod:`xeval.metrics.definitions`); ``get(name)`` gives its parsed form
(``get("LB").lower_is_better``, ``get("MAP").fmt(v)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from xeval.errors import XevalError
from xeval.metrics.definitions import (
    DEFAULT_METRICS,
    REGISTRY,
    Metric,
    MetricSpec,
    get,
    metric_help,
    parse_metric,
    parse_metrics,
)
from xeval.metrics.polars_engine import (
    check_ranks,
    language_bias,
    missing_queries,
    rank_run,
    score_hits,
)
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
    """Per-query values (``*keys, metric, value``) of the run-based metrics for a valid run.

    The run's positions are taken as ranks: metrics that need exact ranks over the whole
    corpus (``LB``, ``QLP``) are left out here (see :func:`score_hits` on a ranks table, or
    :func:`xeval.evaluate`). Metrics ranx has no measure for are computed by Polars.
    """
    ms = [m for m in parse_metrics(metrics) if m.spec.exact != "always"]
    if engine == "polars":
        from xeval.metrics import polars_engine as eng
    elif engine == "ranx":
        from xeval.metrics import ranx_engine as eng  # type: ignore[no-redef]
    else:
        raise XevalError(f"unknown engine {engine!r}; choose from {list(ENGINES)}")
    out = eng.score(run, qrels, ms, keys)
    rest = [m for m in ms if engine == "ranx" and m.ranx_name() is None]
    if rest:
        from xeval.metrics import polars_engine

        out = pl.concat([out, polars_engine.score(run, qrels, rest, keys)])
    return out


__all__ = [
    "DEFAULT_METRICS",
    "ENGINES",
    "REGISTRY",
    "TIE_RULE",
    "Metric",
    "MetricSpec",
    "check_fingerprint",
    "check_ranks",
    "get",
    "language_bias",
    "metric_help",
    "missing_queries",
    "parse_metric",
    "parse_metrics",
    "rank_run",
    "read_trec_qrels",
    "read_trec_run",
    "score",
    "score_hits",
    "validate_run",
    "write_trec_run",
]

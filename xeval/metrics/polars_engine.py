"""The default scoring engine: Polars expressions (Rust), no JIT, no per-query Python loop.

Every query is ranked once under the tie rule (score descending, then doc_id descending), the
run is joined with the relevant qrels, and each metric is one aggregation over the hits. The
definitions are in :mod:`xeval.metrics.definitions`; parity with pytrec_eval and ranx is
tested per query to 1e-9.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from xeval.errors import XevalError
from xeval.metrics.definitions import Metric


def rank_run(run: pl.DataFrame, keys: Sequence[str] = ("query_id",)) -> pl.DataFrame:
    """Sort ``run`` under the tie rule and add ``rank`` (1-based, UInt32) within each query."""
    keys = list(keys)
    ordered = run.sort([*keys, "score", "doc_id"], descending=[False] * len(keys) + [True, True])
    return ordered.with_columns(rank=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over(keys))


def _idcg(rel: pl.DataFrame, keys: list[str], ks: set[int]) -> pl.DataFrame:
    """Ideal DCG per query at every cut-off in ``ks`` (0 = no cut-off)."""
    ideal = rel.sort([*keys, "relevance"], descending=[False] * len(keys) + [True]).with_columns(
        pos=pl.int_range(1, pl.len() + 1).over(keys)
    )
    gain = pl.col("relevance") / (pl.col("pos") + 1).log(2)
    return ideal.group_by(keys).agg(
        [
            gain.filter(pl.col("pos") <= k if k else pl.lit(True)).sum().alias(f"idcg_{k}")
            for k in ks
        ]
    )


def _n_rel(queries: pl.DataFrame, rel: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    counts = rel.group_by(keys).agg(n_rel=pl.len())
    return queries.join(counts, on=keys, how="left").with_columns(pl.col("n_rel").fill_null(0))


def relevant(qrels: pl.DataFrame, keys: Sequence[str] = ("query_id",)) -> pl.DataFrame:
    """The relevant rows of ``qrels`` (relevance > 0): ``*keys, doc_id, relevance`` (f64)."""
    return qrels.filter(pl.col("relevance") > 0).select(
        *keys, "doc_id", pl.col("relevance").cast(pl.Float64)
    )


def score_hits(
    hits: pl.DataFrame,
    qrels: pl.DataFrame,
    metrics: Sequence[Metric],
    keys: Sequence[str] = ("query_id",),
) -> pl.DataFrame:
    """Per-query values from a hits table: ranked relevant documents ``*keys, doc_id, rank``
    (plus ``doc_lang``, ``query_lang`` for language measures), from a run or exact ranks.

    Returns ``*keys, metric, value`` in the qrels' query order, then metric order. A query
    without hits gets the metric's ``empty`` value; rows whose value is None are dropped.
    """
    keys = list(keys)
    queries = qrels.select(keys).unique(maintain_order=True)
    if not metrics:
        return queries.head(0).with_columns(
            metric=pl.lit(None, pl.String), value=pl.lit(None, pl.Float64)
        )
    rel = relevant(qrels, keys)
    hits = (
        hits.join(rel, on=[*keys, "doc_id"], how="inner")
        .sort([*keys, "rank"])
        .with_columns(hit_no=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over(keys))
        .join(_n_rel(queries, rel, keys), on=keys, how="left")
    )
    ks = {m.k or 0 for m in metrics if m.family == "ndcg"}
    if ks:
        hits = hits.join(_idcg(rel, keys, ks), on=keys, how="left")
    per_query = hits.group_by(keys).agg([m.expr().alias(m.name) for m in metrics])
    wide = queries.join(per_query, on=keys, how="left", maintain_order="left").with_columns(
        [_fill(pl.col(m.name).cast(pl.Float64), m.spec.empty) for m in metrics]
    )
    long = wide.with_row_index("_q").unpivot(
        index=["_q", *keys],
        on=[m.name for m in metrics],
        variable_name="metric",
        value_name="value",
    )
    return long.sort("_q", maintain_order=True).drop("_q").drop_nulls("value")


def _fill(col: pl.Expr, empty: float | None) -> pl.Expr:
    return col.fill_nan(None).fill_null(empty) if empty is not None else col.fill_nan(None)


def score(
    run: pl.DataFrame,
    qrels: pl.DataFrame,
    metrics: Sequence[Metric],
    keys: Sequence[str] = ("query_id",),
) -> pl.DataFrame:
    """Per-query values: columns ``*keys, metric, value`` (one row per query and metric).

    ``run`` has ``*keys, doc_id, score`` (validated: no duplicates, finite scores); ``qrels``
    has ``*keys, doc_id, relevance``. Every query of ``qrels`` gets a value; a query the run
    lacks scores 0 (see :func:`missing_queries` to count them). The run's positions are the
    ranks: metrics that need exact ranks get them from :func:`score_hits` on a ranks table.
    """
    keys = list(keys)
    # only ranks matter below: keep the rows up to the deepest cut-off unless a metric needs all
    depth = None if any(m.k is None for m in metrics) else max(m.k for m in metrics)  # type: ignore[type-var]
    ranked = rank_run(run.select(*keys, "doc_id", "score"), keys)
    if depth is not None:
        ranked = ranked.filter(pl.col("rank") <= depth)
    return score_hits(ranked.drop("score"), qrels, metrics, keys)


def missing_queries(
    run: pl.DataFrame, qrels: pl.DataFrame, keys: Sequence[str] = ("query_id",)
) -> pl.DataFrame:
    """The queries of ``qrels`` that ``run`` does not contain (they score 0)."""
    keys = list(keys)
    return (
        qrels.select(keys)
        .unique(maintain_order=True)
        .join(run.select(keys).unique(), on=keys, how="anti", maintain_order="left")
    )


def check_ranks(
    ranks: pl.DataFrame,
    qrels: pl.DataFrame,
    keys: Sequence[str] = ("query_id",),
    *,
    file: str | None = None,
) -> pl.DataFrame:
    """Validate an exact-ranks table and return ``*keys, doc_id, rank`` (Int64).

    ``ranks`` holds the exact rank of every relevant item over the setting's whole corpus. A
    relevant item without a rank is an error: every value from it would be silently wrong.
    """
    keys = list(keys)
    for col in (*keys, "doc_id", "rank"):
        if col not in ranks.columns:
            raise XevalError(f"ranks table lacks column {col!r}; has {ranks.columns}", file=file)
    ranks = ranks.select(*keys, "doc_id", pl.col("rank").cast(pl.Int64, strict=False))
    bad = ranks.with_row_index("_row").filter(pl.col("rank").is_null() | (pl.col("rank") < 1))
    if bad.height:
        row = bad.row(0, named=True)
        raise XevalError(
            f"rank of ({row[keys[-1]]!r}, {row['doc_id']!r}) is missing or < 1",
            file=file,
            record=row["_row"] + 1,
        )
    dup = ranks.filter(pl.struct(*keys, "doc_id").is_duplicated())
    if dup.height:
        row = dup.row(0, named=True)
        raise XevalError(
            f"duplicate rank rows for ({row[keys[-1]]!r}, {row['doc_id']!r})", file=file
        )
    rel = qrels.filter(pl.col("relevance") > 0).select(*keys, "doc_id")
    lost = rel.join(ranks, on=[*keys, "doc_id"], how="anti")
    if lost.height:
        row = lost.row(0, named=True)
        raise XevalError(
            f"no exact rank for relevant item {row['doc_id']!r} of query {row[keys[-1]]!r} "
            f"({lost.height} relevant item(s) lack a rank); the ranks file must cover every "
            "relevant item",
            file=file,
        )
    return ranks


def language_bias(
    ranks: pl.DataFrame,
    qrels: pl.DataFrame,
    keys: Sequence[str] = ("query_id",),
    *,
    file: str | None = None,
) -> pl.DataFrame:
    """Max rank distance per query from exact ranks: columns ``*keys, value``.

    Queries with fewer than 2 relevant items are excluded (no distance).
    """
    from xeval.metrics.definitions import parse_metric

    hits = check_ranks(ranks, qrels, keys, file=file)
    return score_hits(hits, qrels, [parse_metric("LB")], keys).drop("metric")

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


def _metric_expr(m: Metric) -> pl.Expr:
    """The per-query aggregation over the hits table (one row per retrieved relevant doc)."""
    rank = pl.col("rank")
    within = rank <= m.k if m.k is not None else pl.lit(True)
    if m.family == "mrr":
        return (1.0 / rank.filter(within).min()).fill_null(0.0)
    if m.family == "recall":
        return within.sum() / pl.col("n_rel").first()
    if m.family == "precision":
        return within.sum() / float(m.k)  # type: ignore[arg-type]
    if m.family == "map":
        prec = (pl.col("hit_no") / rank).filter(within).sum()
        denom = pl.col("n_rel").first()
        if m.k is not None:
            denom = pl.min_horizontal(denom, pl.lit(m.k))
        return prec / denom
    if m.family == "ndcg":
        dcg = (pl.col("relevance") / (rank + 1).log(2)).filter(within).sum()
        return dcg / pl.col(f"idcg_{m.k or 0}").first()
    raise XevalError(f"{m.name} is not a ranking metric (language bias has its own function)")


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


def score(
    run: pl.DataFrame,
    qrels: pl.DataFrame,
    metrics: Sequence[Metric],
    keys: Sequence[str] = ("query_id",),
) -> pl.DataFrame:
    """Per-query values: columns ``*keys, metric, value`` (one row per query and metric).

    ``run`` has ``*keys, doc_id, score`` (validated: no duplicates, finite scores); ``qrels``
    has ``*keys, doc_id, relevance``. Every query of ``qrels`` gets a value; a query the run
    lacks scores 0 (see :func:`missing_queries` to count them). Rows are ordered by the qrels'
    query order, then metric order.
    """
    keys = list(keys)
    metrics = [m for m in metrics if m.family != "lb"]
    queries = qrels.select(keys).unique(maintain_order=True)
    if not metrics:
        return queries.head(0).with_columns(
            metric=pl.lit(None, pl.String), value=pl.lit(None, pl.Float64)
        )
    rel = qrels.filter(pl.col("relevance") > 0).select(
        *keys, "doc_id", pl.col("relevance").cast(pl.Float64)
    )
    n_rel = queries.join(rel.group_by(keys).agg(n_rel=pl.len()), on=keys, how="left").with_columns(
        pl.col("n_rel").fill_null(0)
    )
    # only ranks matter below: keep the rows up to the deepest cut-off unless a metric needs all
    depth = None if any(m.k is None for m in metrics) else max(m.k for m in metrics)  # type: ignore[type-var]
    ranked = rank_run(run.select(*keys, "doc_id", "score"), keys)
    if depth is not None:
        ranked = ranked.filter(pl.col("rank") <= depth)
    hits = (
        ranked.join(rel, on=[*keys, "doc_id"], how="inner")
        .sort([*keys, "rank"])
        .with_columns(hit_no=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over(keys))
        .join(n_rel, on=keys, how="left")
    )
    ks = {m.k or 0 for m in metrics if m.family == "ndcg"}
    if ks:
        hits = hits.join(_idcg(rel, keys, ks), on=keys, how="left")
    per_query = hits.group_by(keys).agg([_metric_expr(m).alias(m.name) for m in metrics])
    wide = queries.join(per_query, on=keys, how="left", maintain_order="left").with_columns(
        [pl.col(m.name).cast(pl.Float64).fill_null(0.0).fill_nan(0.0) for m in metrics]
    )
    long = wide.with_row_index("_q").unpivot(
        index=["_q", *keys],
        on=[m.name for m in metrics],
        variable_name="metric",
        value_name="value",
    )
    return long.sort("_q", maintain_order=True).drop("_q")


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


def language_bias(
    ranks: pl.DataFrame,
    qrels: pl.DataFrame,
    keys: Sequence[str] = ("query_id",),
    *,
    file: str | None = None,
) -> pl.DataFrame:
    """Max rank distance per query: columns ``*keys, value, n_rel``.

    ``ranks`` holds ``*keys, doc_id, rank``: the exact rank of every relevant item over the
    whole pooled corpus. Queries with fewer than 2 relevant items are excluded (no distance).
    A relevant item without a rank is an error: the distance would be silently wrong.
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
    rel = qrels.filter(pl.col("relevance") > 0).select(*keys, "doc_id")
    dup = ranks.filter(pl.struct(*keys, "doc_id").is_duplicated())
    if dup.height:
        row = dup.row(0, named=True)
        raise XevalError(
            f"duplicate rank rows for ({row[keys[-1]]!r}, {row['doc_id']!r})", file=file
        )
    joined = rel.join(ranks, on=[*keys, "doc_id"], how="left")
    lost = joined.filter(pl.col("rank").is_null())
    if lost.height:
        row = lost.row(0, named=True)
        raise XevalError(
            f"no exact rank for relevant item {row['doc_id']!r} of query {row[keys[-1]]!r} "
            f"({lost.height} relevant item(s) lack a rank); the ranks file must cover every "
            "relevant item",
            file=file,
        )
    per_query = joined.group_by(keys, maintain_order=True).agg(
        value=(pl.col("rank").max() - pl.col("rank").min()).cast(pl.Float64), n_rel=pl.len()
    )
    return per_query.filter(pl.col("n_rel") >= 2)

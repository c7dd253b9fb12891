"""``xeval.evaluate``: metrics on in-memory tables (Polars or pandas), no folders.

>>> import polars as pl, xeval
>>> run = pl.DataFrame({"query_id": ["q1", "q1", "q2"], "doc_id": ["a", "b", "c"],
...                     "score": [0.9, 0.8, 0.7]})
>>> qrels = pl.DataFrame({"query_id": ["q1", "q2"], "doc_id": ["b", "c"]})
>>> xeval.evaluate(run, qrels, metrics="MRR@2,R@1").value("MRR@2")
0.75
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from xeval.errors import XevalError
from xeval.evaluation.evaluate import ranks_from_run
from xeval.metrics import DEFAULT_METRICS, Metric, parse_metrics, score
from xeval.metrics.polars_engine import check_ranks, score_hits
from xeval.metrics.validate import validate_run


@dataclass
class FrameResult:
    """Per-query values (``query_id, metric, value``) and their means (``metric, value,
    n_queries, source``: ``run``, ``exact`` or ``unavailable``)."""

    per_query: pl.DataFrame
    summary_table: pl.DataFrame
    n_queries: int = 0

    def value(self, metric: str) -> float | None:
        """The mean of ``metric`` over the queries (None when unavailable)."""
        row = self.summary_table.filter(pl.col("metric") == metric)
        return row["value"][0] if row.height else None

    def summary(self) -> str:
        return "  ".join(
            f"{m}={_metric(m).fmt(v)}"
            for m, v in self.summary_table.select("metric", "value").iter_rows()
        )

    def __repr__(self) -> str:
        return f"FrameResult({self.n_queries} queries: {self.summary()})"


def _metric(name: str) -> Metric:
    return parse_metrics(name)[0]


def _frame(df: Any, what: str) -> pl.DataFrame:
    if isinstance(df, pl.DataFrame):
        return df
    try:
        return pl.from_pandas(df)
    except Exception as exc:  # not a pandas frame either
        raise XevalError(f"{what} must be a Polars or pandas DataFrame ({exc})") from None


def evaluate(
    run: Any,
    qrels: Any,
    metrics: str | list[str] | None = None,
    *,
    ranks: Any = None,
    n_docs: int | None = None,
    engine: str = "polars",
) -> FrameResult:
    """Score ``run`` (``query_id, doc_id, score``) against ``qrels`` (``query_id, doc_id[,
    relevance]``; no relevance column: every row is relevant).

    ``ranks`` (``query_id, doc_id, rank``; plus ``doc_lang``, ``query_lang`` for ``QLP``) gives
    the exact rank of every relevant item over the whole corpus: metrics that look below the
    run's cut-off come from it, and without it they are ``unavailable`` (null). Default
    metrics: the ranking ones of :data:`~xeval.metrics.DEFAULT_METRICS` (``LB``, ``QLP`` too
    when ``ranks`` is given). ``n_docs``: the corpus size; a run that lists that many documents
    per query is its own exact ranking (without it, the run's depth is its cut-off).
    """
    run = validate_run(_frame(run, "run"))
    qrels = _frame(qrels, "qrels")
    if "relevance" not in qrels.columns:
        qrels = qrels.with_columns(relevance=pl.lit(1, pl.Int32))
    qrels = qrels.select(pl.col("query_id", "doc_id").cast(pl.String), "relevance")
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if ranks is not None or not _metric(m).multi_only]
    ms = parse_metrics(metrics)
    depth: int | None = int(run.group_by("query_id").len()["len"].max() or 0)  # type: ignore[arg-type]
    if n_docs is not None and depth is not None and depth >= n_docs:
        depth = None  # complete: every metric from the run (language measures need ranks)
    from_run = [m for m in ms if not m.needs_exact(depth)]
    exact = [m for m in ms if m.needs_exact(depth)] if ranks is not None else []
    if ranks is None and depth is None and any(m.needs_exact(None) for m in ms):
        ranks = ranks_from_run(run, qrels)
        exact = [m for m in ms if m.needs_exact(None) and m.spec.key not in ("qlp",)]
    frames = [score(run, qrels, from_run, engine=engine)] if from_run else []
    if exact:
        table = _frame(ranks, "ranks")
        hits = check_ranks(table, qrels).join(
            table.select("query_id", "doc_id", *[c for c in ("doc_lang", "query_lang")
                                                  if c in table.columns]),
            on=["query_id", "doc_id"],
        )  # fmt: skip
        frames.append(score_hits(hits, qrels, exact))
    per_query = (
        pl.concat(frames)
        if frames
        else pl.DataFrame(schema={"query_id": pl.String, "metric": pl.String, "value": pl.Float64})
    )
    source = {m.name: "run" for m in from_run} | {m.name: "exact" for m in exact}
    rows = [(m.name, *_mean(per_query, m.name), source.get(m.name, "unavailable")) for m in ms]
    summary = pl.DataFrame(
        rows,
        schema={"metric": pl.String, "value": pl.Float64, "n_queries": pl.Int64,
                "source": pl.String},
        orient="row",
    )  # fmt: skip
    return FrameResult(per_query, summary, qrels["query_id"].n_unique())


def _mean(per_query: pl.DataFrame, name: str) -> tuple[float | None, int]:
    sub = per_query.filter(pl.col("metric") == name)["value"]
    return (sub.mean() if sub.len() else None), sub.len()  # type: ignore[return-value]

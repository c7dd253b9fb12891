"""The ranx engine (``--engine ranx``): same inputs, same per-query output as the Polars one.

How ranx is made to follow xeval's rules:

- **Tie rule.** ranx sorts each query's documents with numba's ``np.argsort`` (quicksort, not
  stable), so equal scores come out in an order that depends on the input. Each query's
  documents are therefore inserted in tie-rule order (score descending, then doc_id
  descending) *with their rank-derived score* ``-rank`` instead of the raw score: no two
  scores are equal, every metric depends on the order only, and ranx's sort reproduces the
  tie rule exactly. (Insertion order alone is not enough: on the tied test run of
  ``tests/test_metrics.py``, raw scores inserted in tie-rule order changed MRR on 39 of 73
  queries.)
- **pandas 3.** ``Run.from_df`` / ``Qrels.from_df`` fail a dtype check and Polars frames are
  refused, so both are built from dicts.
- **Missing queries** score 0 (``make_comparable=True``); queries with no relevant document,
  which ranx's ``Qrels`` cannot hold, score 0 as in the Polars engine.
- **MAP@k.** ranx divides by |rel| (like trec_eval's ``map_cut``); its value is rescaled by
  |rel| / min(|rel|, k) to xeval's XTREME-R definition.
- **numba cache.** ``NUMBA_CACHE_DIR`` defaults to ``<xeval cache>/numba`` so the ~30 s JIT
  compilation happens once per machine, not once per environment rebuild.

ranx is imported only when this engine is used (its import and JIT cost seconds).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import polars as pl

from xeval.metrics.definitions import Metric
from xeval.metrics.polars_engine import rank_run


def _import_ranx():
    if "NUMBA_CACHE_DIR" not in os.environ:
        from xeval.sources import cache_dir

        path = cache_dir() / "numba"
        path.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(path)
    import ranx

    return ranx


def ranx_name(m: Metric) -> str:
    """The ranx metric name for ``m`` (``MRR@10`` -> ``mrr@10``, ``R@100`` -> ``recall@100``)."""
    name = m.ranx_name()
    if name is None:
        raise ValueError(f"ranx has no measure for {m.name}")
    return name


def to_ranx(run: pl.DataFrame, qrels: pl.DataFrame, key: str = "query_id"):
    """Build ranx ``Qrels`` and ``Run`` (from dicts) that follow the tie rule exactly."""
    ranx = _import_ranx()
    rel = qrels.filter(pl.col("relevance") > 0)
    qd: dict[str, dict[str, int]] = {}
    for q, d, r in rel.select(key, "doc_id", "relevance").iter_rows():
        qd.setdefault(q, {})[d] = int(r)
    ranked = rank_run(run.select(key, "doc_id", "score"), (key,))
    rd: dict[str, dict[str, float]] = {}
    for q, docs, ranks in (
        ranked.group_by(key, maintain_order=True).agg("doc_id", "rank").iter_rows()
    ):
        rd[q] = {
            d: -float(r) for d, r in zip(docs, ranks, strict=True)
        }  # tie-rule order, distinct scores
    return ranx.Qrels.from_dict(qd), ranx.Run.from_dict(rd)


def score(
    run: pl.DataFrame,
    qrels: pl.DataFrame,
    metrics: Sequence[Metric],
    keys: Sequence[str] = ("query_id",),
) -> pl.DataFrame:
    """Per-query values, ``*keys, metric, value``, computed by ranx (see the module notes)."""
    keys = list(keys)
    metrics = [m for m in metrics if m.ranx_name() is not None]
    if len(keys) > 1:  # ranx has one query key: join the composite key into one string
        sep = "\x1f"
        composite = pl.concat_str(keys, separator=sep).alias("_key")
        long = score(
            run.select(composite, "doc_id", "score").rename({"_key": "query_id"}),
            qrels.select(composite, "doc_id", "relevance").rename({"_key": "query_id"}),
            metrics,
        )
        parts = pl.col("query_id").str.split_exact(sep, len(keys) - 1)
        return long.select(parts.struct.rename_fields(keys).alias("_k"), "metric", "value").unnest(
            "_k"
        )
    key = keys[0]
    queries = qrels.select(key).unique(maintain_order=True)
    if not metrics:
        return queries.head(0).with_columns(
            metric=pl.lit(None, pl.String), value=pl.lit(None, pl.Float64)
        )
    ranx = _import_ranx()
    n_rel = dict(qrels.filter(pl.col("relevance") > 0).group_by(key).len().iter_rows())
    values: dict[str, dict[str, float]] = {m.name: {} for m in metrics}
    scored = run.filter(pl.col(key).is_in(list(n_rel)))
    if n_rel and scored.height:
        rq, rr = to_ranx(scored, qrels, key=key)
        names = [ranx_name(m) for m in metrics]
        with warnings.catch_warnings():  # numba's uint64 -> int64 notice on hashed ids
            warnings.filterwarnings("ignore", message="unsafe cast")
            res = ranx.evaluate(
                rq, rr, names, return_mean=False, make_comparable=True, save_results_in_run=False
            )
        if len(names) == 1:
            res = {names[0]: res}
        qids = list(rr.keys())
        for m, name in zip(metrics, names, strict=True):
            arr = res[name]
            for q, v in zip(qids, arr, strict=True):
                v = float(v)
                if m.family == "map" and m.k is not None and n_rel[q] > m.k:
                    v = v * n_rel[q] / m.k
                values[m.name][q] = v
    rows = [
        (q, m.name, values[m.name].get(q, 0.0)) for q in queries[key].to_list() for m in metrics
    ]
    return pl.DataFrame(
        rows, schema={key: pl.String, "metric": pl.String, "value": pl.Float64}, orient="row"
    )

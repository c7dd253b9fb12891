"""QLP, the query-language preference rate, and LB by hand on a pooled multilingual setting."""

from __future__ import annotations

import polars as pl
import pytest

import xeval
from xeval.metrics import check_ranks, parse_metrics, score_hits

# three queries, one relevant item per language (en, de, fr); exact ranks over the pool
QRELS = pl.DataFrame(
    {
        "query_id": ["en1"] * 3 + ["de1"] * 3 + ["fr1"] * 3,
        "doc_id": ["en-a", "de-a", "fr-a"] * 3,
        "relevance": [1] * 9,
    }
)
RANKS = pl.DataFrame(
    {
        "query_id": ["en1"] * 3 + ["de1"] * 3 + ["fr1"] * 3,
        "doc_id": ["en-a", "de-a", "fr-a"] * 3,
        # en1: en first (1), de 4, fr 9; de1: en first (2), de 3, fr 7; fr1: fr first (1)
        "rank": [1, 4, 9, 2, 3, 7, 5, 6, 1],
    }
)
LANGS = {"en-a": "en", "de-a": "de", "fr-a": "fr"}


def _hits() -> pl.DataFrame:
    return check_ranks(RANKS, QRELS).with_columns(
        doc_lang=pl.col("doc_id").replace_strict(LANGS),
        query_lang=pl.col("query_id").str.slice(0, 2),
    )


def test_qlp_and_lb_by_hand() -> None:
    got = score_hits(_hits(), QRELS, parse_metrics("QLP,LB"))
    values = {(q, m): v for q, m, v in got.iter_rows()}
    # QLP: is the best-ranked relevant item the query-language one? en1 yes, de1 no, fr1 yes
    assert [values[(q, "QLP")] for q in ("en1", "de1", "fr1")] == [1.0, 0.0, 1.0]
    # LB: worst minus best rank: 9 - 1, 7 - 2, 6 - 1
    assert [values[(q, "LB")] for q in ("en1", "de1", "fr1")] == [8.0, 5.0, 5.0]


def test_qlp_through_the_notebook_api() -> None:
    run = RANKS.select("query_id", "doc_id", score=-pl.col("rank").cast(pl.Float64))
    res = xeval.evaluate(run.filter(pl.col("doc_id") == "en-a"), QRELS, "QLP,LB,R@1", ranks=_hits())
    assert res.value("QLP") == pytest.approx(2 / 3)
    assert res.value("LB") == pytest.approx(6.0)
    assert res.summary_table.filter(pl.col("metric") == "QLP")["source"][0] == "exact"
    # without exact ranks the language measures are unavailable, never guessed from the run
    res = xeval.evaluate(run, QRELS, "QLP,R@1")
    assert res.value("QLP") is None and res.value("R@1") is not None
    assert "QLP=—" in repr(res)


def test_qlp_is_in_evaluate_summary(tiny_benchmark_dir, tmp_path) -> None:
    from tests.test_evaluate import make_rundir
    from xeval.evaluation import evaluate_run

    rundir, _ = make_rundir(tiny_benchmark_dir, tmp_path / "run", perfect=True, seed=4)
    res = evaluate_run(rundir)
    assert "QLP" in res.summary().splitlines()[0]
    assert res.value("mono", "QLP") is None  # multi settings only
    assert 0.0 <= res.value("multi", "QLP") <= 1.0

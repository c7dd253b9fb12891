"""Metric core: parity with pytrec_eval and ranx (with ties), identities, language bias, bad input."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from xeval.errors import XevalError
from xeval.metrics import (
    language_bias,
    missing_queries,
    parse_metric,
    parse_metrics,
    rank_run,
    read_trec_qrels,
    read_trec_run,
    score,
    validate_run,
    write_trec_run,
)
from xeval.metrics.definitions import Metric

REPO = Path(__file__).resolve().parent.parent
# keep numba's JIT cache between test sessions (same place as noxfile.py)
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))

PARITY = "MRR MRR@10 R@1 R@5 R@100 P@5 nDCG@10 nDCG MAP MAP@20"
# our name -> pytrec_eval measure (MRR@10 and MAP@20 are derived, see _trec_value)
TREC = {
    "MRR": "recip_rank",
    "R@1": "recall_1",
    "R@5": "recall_5",
    "R@100": "recall_100",
    "P@5": "P_5",
    "nDCG@10": "ndcg_cut_10",
    "nDCG": "ndcg",
    "MAP": "map",
    "MAP@20": "map_cut_20",
}


def random_run(
    seed: int = 0, n_queries: int = 120, n_docs: int = 60, pool: int = 150
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A run full of ties (scores on a coarse grid, some queries all-equal) and graded qrels.

    Some queries have more than 20 relevant documents (MAP@20's denominator differs from
    trec_eval's), some have only zero-relevance judgements, and a few are absent from the run.
    """
    rng = np.random.default_rng(seed)
    run_rows, qrel_rows = [], []
    for q in range(n_queries):
        qid = f"q{q:03d}"
        docs = rng.choice(pool, n_docs, replace=False)
        # every tenth query is one big tie; the others have ~10 docs per score level
        scores = np.full(n_docs, 0.5) if q % 10 == 0 else rng.integers(0, 6, n_docs) / 5.0
        if q % 17 != 5:  # a few queries are missing from the run
            run_rows += [(qid, f"d{d:04d}", float(s)) for d, s in zip(docs, scores, strict=True)]
        n_rel = 30 if q % 7 == 0 else int(rng.integers(1, 8))
        for d in rng.choice(pool, n_rel, replace=False):
            rel = 0 if q % 23 == 1 else int(rng.integers(0, 4))
            qrel_rows.append((qid, f"d{d:04d}", rel))
    run = pl.DataFrame(run_rows, schema=["query_id", "doc_id", "score"], orient="row")
    qrels = pl.DataFrame(
        qrel_rows,
        schema={"query_id": pl.String, "doc_id": pl.String, "relevance": pl.Int32},
        orient="row",
    )
    return run, qrels


def _dicts(run: pl.DataFrame, qrels: pl.DataFrame):
    qd: dict[str, dict[str, int]] = {}
    for q, d, r in qrels.iter_rows():
        qd.setdefault(q, {})[d] = r
    rd: dict[str, dict[str, float]] = {}
    for q, d, s in run.select("query_id", "doc_id", "score").iter_rows():
        rd.setdefault(q, {})[d] = s
    return qd, rd


def pytrec_values(run: pl.DataFrame, qrels: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Per query, our metric names computed by pytrec_eval (trec_eval's own tie rule)."""
    import pytrec_eval

    qd, rd = _dicts(run, qrels)
    measures = {*TREC.values(), "num_rel"}
    res = pytrec_eval.RelevanceEvaluator(qd, measures).evaluate(rd)
    out = {}
    for q, v in res.items():
        vals = {name: v[t] for name, t in TREC.items()}
        # MRR@10: trec_eval's recip_rank is 1/r; it counts when r <= 10
        rr = v["recip_rank"]
        vals["MRR@10"] = rr if rr > 0 and round(1 / rr) <= 10 else 0.0
        # MAP@20: same sum, XTREME-R denominator min(|rel|, 20) instead of |rel|
        n_rel = v["num_rel"]
        if n_rel > 20:
            vals["MAP@20"] = v["map_cut_20"] * n_rel / 20
        out[q] = vals
    return out


def as_dict(values: pl.DataFrame) -> dict[tuple[str, str], float]:
    return {(q, m): v for q, m, v in values.select("query_id", "metric", "value").iter_rows()}


# ---- names ---------------------------------------------------------------------------------
def test_parse_metric_names() -> None:
    assert parse_metric("MRR@10") == Metric("mrr", 10)
    assert parse_metric("recall@100").name == "R@100"
    assert parse_metric("ndcg@10").name == "nDCG@10"
    assert parse_metric("map").name == "MAP"
    assert parse_metric("MAP@20") == Metric("map", 20)
    assert parse_metric("lb").name == "LB"
    assert [m.name for m in parse_metrics("MRR@10, R@1 R@1,MAP")] == ["MRR@10", "R@1", "MAP"]
    assert [m.name for m in parse_metrics(None)][-2:] == ["LB", "QLP"]  # QLP added to defaults
    for bad in ("R", "foo@3", "MRR@0", "LB@5", "nDCG@x"):
        with pytest.raises(XevalError):
            parse_metric(bad)


# ---- parity --------------------------------------------------------------------------------
def test_tie_rule_is_trec_evals() -> None:
    """Equal scores: doc_id descending. On this query RR is 0.5 (c, b, a), not 1.0 or 0.333."""
    run = pl.DataFrame({"query_id": ["q"] * 3, "doc_id": ["a", "b", "c"], "score": [1.0] * 3})
    qrels = pl.DataFrame({"query_id": ["q"], "doc_id": ["b"], "relevance": [1]})
    assert rank_run(run)["doc_id"].to_list() == ["c", "b", "a"]
    assert as_dict(score(run, qrels, "MRR"))[("q", "MRR")] == 0.5
    assert pytrec_values(run, qrels)["q"]["MRR"] == 0.5


def test_parity_with_pytrec_eval_on_ties() -> None:
    run, qrels = random_run(seed=1)
    ours = as_dict(score(run, qrels, PARITY))
    ref = pytrec_values(run, qrels)
    assert len(ref) > 100
    assert any(v["MAP@20"] != v["MAP"] for v in ref.values())  # the |rel| > 20 case occurs
    checked = 0
    for q, vals in ref.items():
        for name, v in vals.items():
            assert ours[(q, name)] == pytest.approx(v, abs=1e-9, rel=0), (q, name)
            checked += 1
    assert checked == len(ref) * len(parse_metrics(PARITY))
    # queries of the qrels absent from the run (pytrec_eval skips them) score 0 everywhere
    miss = missing_queries(run, qrels)["query_id"].to_list()
    assert miss and all(q not in ref for q in miss)
    assert all(ours[(q, m.name)] == 0.0 for q in miss for m in parse_metrics(PARITY))


def test_map_at_k_matches_trec_eval_when_few_relevant() -> None:
    """With |rel| <= k the XTREME-R and trec_eval denominators coincide: plain equality."""
    run, qrels = random_run(seed=2)
    ours = as_dict(score(run, qrels, "MAP@20"))
    import pytrec_eval

    qd, rd = _dicts(run, qrels)
    res = pytrec_eval.RelevanceEvaluator(qd, {"map_cut_20", "num_rel"}).evaluate(rd)
    few = [q for q, v in res.items() if v["num_rel"] <= 20]
    assert len(few) > 50
    for q in few:
        assert ours[(q, "MAP@20")] == pytest.approx(res[q]["map_cut_20"], abs=1e-9, rel=0)


@pytest.mark.slow
def test_parity_with_ranx_on_ties() -> None:
    """The one ranx test. Slow: ~45 s CPU with a cold numba cache (JIT), ~11 s warm."""
    run, qrels = random_run(seed=3, n_queries=80)
    ours = score(run, qrels, PARITY)
    theirs = score(run, qrels, PARITY, engine="ranx")
    assert theirs.height == ours.height
    joined = ours.join(theirs, on=["query_id", "metric"], suffix="_ranx")
    assert joined.height == ours.height
    assert (joined["value"] - joined["value_ranx"]).abs().max() <= 1e-9
    # and ranx agrees with trec_eval through the same path (like with like)
    ref = pytrec_values(run, qrels)
    rx = as_dict(theirs)
    for q, vals in ref.items():
        for name, v in vals.items():
            assert rx[(q, name)] == pytest.approx(v, abs=1e-9, rel=0), (q, name)
    # the tied query from test_tie_rule_is_trec_evals, and composite keys
    tie = pl.DataFrame({"query_id": ["q"] * 3, "doc_id": ["a", "b", "c"], "score": [1.0] * 3})
    tq = pl.DataFrame({"query_id": ["q"], "doc_id": ["b"], "relevance": [1]})
    assert as_dict(score(tie, tq, "MRR", engine="ranx"))[("q", "MRR")] == 0.5
    two = pl.concat([run.with_columns(setting=pl.lit(s)) for s in ("x", "y")])
    two_q = pl.concat([qrels.with_columns(setting=pl.lit(s)) for s in ("x", "y")])
    keys = ("setting", "query_id")
    a = score(two, two_q, "MAP nDCG@10", keys=keys)
    b = score(two, two_q, "MAP nDCG@10", keys=keys, engine="ranx")
    j = a.join(b, on=[*keys, "metric"])
    assert j.height == a.height == 4 * 80
    assert (j["value"] - j["value_right"]).abs().max() <= 1e-9


def test_map_equals_mrr_with_one_relevant_item() -> None:
    """AP = RR when each query has exactly one relevant item (XQuAD-R mono/cross)."""
    run, _ = random_run(seed=4)
    first = run.group_by("query_id", maintain_order=True).agg(pl.col("doc_id").last())
    qrels = first.with_columns(relevance=pl.lit(1, pl.Int32))
    vals = score(run, qrels, "MAP MRR MAP@20 MRR@20").pivot(
        on="metric", index="query_id", values="value"
    )
    assert (vals["MAP"] - vals["MRR"]).abs().max() < 1e-15
    assert (vals["MAP@20"] - vals["MRR@20"]).abs().max() < 1e-15
    assert vals["MRR"].min() < 0.5  # not all trivially equal to 1


def test_hand_computed_values() -> None:
    """q1 ranks: r1 (rel 2) at 2, r2 (rel 1) at 4, r3 unretrieved; k = 3."""
    run = pl.DataFrame(
        {"query_id": ["q1"] * 4, "doc_id": ["x", "r1", "y", "r2"], "score": [4.0, 3.0, 2.0, 1.0]}
    )
    qrels = pl.DataFrame(
        {"query_id": ["q1"] * 3, "doc_id": ["r1", "r2", "r3"], "relevance": [2, 1, 1]}
    )
    v = as_dict(score(run, qrels, "MRR@1 MRR@3 R@3 P@3 MAP MAP@3 nDCG@3"))
    q = "q1"
    assert v[(q, "MRR@1")] == 0.0 and v[(q, "MRR@3")] == 0.5
    assert v[(q, "R@3")] == pytest.approx(1 / 3) and v[(q, "P@3")] == pytest.approx(1 / 3)
    assert v[(q, "MAP")] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert v[(q, "MAP@3")] == pytest.approx((1 / 2) / 3)
    idcg = 2 + 1 / math.log2(3) + 1 / math.log2(4)
    assert v[(q, "nDCG@3")] == pytest.approx((2 / math.log2(3)) / idcg)


# ---- language bias -------------------------------------------------------------------------
def test_language_bias_hand_computed() -> None:
    qrels = pl.DataFrame(
        {
            "query_id": ["a", "a", "a", "b", "b", "c", "d", "d"],
            "doc_id": ["en", "de", "fr", "en", "de", "en", "en", "de"],
            "relevance": [1, 1, 1, 1, 1, 1, 1, 0],
        }
    )
    ranks = pl.DataFrame(
        {
            "query_id": ["a", "a", "a", "b", "b", "c", "d", "x"],
            "doc_id": ["en", "de", "fr", "en", "de", "en", "en", "en"],
            "rank": [1, 12, 5, 4, 3, 7, 2, 9],
        }
    )
    lb = language_bias(ranks, qrels)
    # a: 12 - 1 = 11; b: 4 - 3 = 1; c and d have one relevant item: excluded
    assert dict(lb.select("query_id", "value").iter_rows()) == {"a": 11.0, "b": 1.0}
    assert lb["value"].mean() == 6.0
    with pytest.raises(XevalError, match="no exact rank"):
        language_bias(ranks.filter(pl.col("doc_id") != "fr"), qrels, file="r.parquet")
    with pytest.raises(XevalError, match="duplicate"):
        language_bias(pl.concat([ranks, ranks.head(1)]), qrels)
    with pytest.raises(XevalError, match="< 1"):
        language_bias(ranks.with_columns(pl.col("rank") - 1), qrels)


# ---- bad input -----------------------------------------------------------------------------
QRELS = pl.DataFrame({"query_id": ["q1", "q2"], "doc_id": ["d1", "d2"], "relevance": [1, 1]})
CORPUS = pl.DataFrame({"doc_id": ["d1", "d2", "d3", "e1"], "lang": ["en", "en", "en", "de"]})
GOOD = pl.DataFrame({"query_id": ["q1", "q1"], "doc_id": ["d1", "d3"], "score": [0.2, 0.1]})


def _check(run: pl.DataFrame, **kw) -> pl.DataFrame:
    return validate_run(
        run,
        qrels=QRELS,
        corpus=CORPUS,
        doc_langs=("en",),
        file="runs/x.parquet",
        what="setting mono-en",
        **kw,
    )


def test_valid_run_passes_and_missing_queries_are_counted() -> None:
    run = _check(GOOD)
    assert run.schema == {"query_id": pl.String, "doc_id": pl.String, "score": pl.Float64}
    assert missing_queries(run, QRELS)["query_id"].to_list() == ["q2"]
    v = as_dict(score(run, QRELS, "MRR@10"))
    assert v == {("q1", "MRR@10"): 1.0, ("q2", "MRR@10"): 0.0}


@pytest.mark.parametrize(
    ("run", "match"),
    [
        (GOOD.with_columns(score=pl.Series([0.2, float("nan")])), r"record 2: .*nan.*finite"),
        (GOOD.with_columns(score=pl.Series([float("inf"), 0.1])), r"record 1: .*inf.*finite"),
        (GOOD.with_columns(score=pl.Series([-float("inf"), 0.1])), "finite"),
        (GOOD.head(0), "run is empty"),
        (pl.concat([GOOD, GOOD.head(1)]), r"duplicate \(query, doc\) line \('q1', 'd1'\)"),
        (GOOD.with_columns(query_id=pl.lit("zz")), "query 'zz' is unknown"),
        (GOOD.with_columns(query_id=pl.lit("q3")), "query 'q3' is not part of setting mono-en"),
        (GOOD.with_columns(doc_id=pl.Series(["d1", "nope"])), "doc 'nope' is unknown"),
        (GOOD.with_columns(doc_id=pl.Series(["d1", "e1"])), "doc 'e1' is in language 'de'"),
        (GOOD.with_columns(doc_id=pl.Series(["d1", None])), "null value"),
        (GOOD.drop("score"), r"lacks column\(s\) \['score'\]"),
        (GOOD.with_columns(score=pl.lit("high")), "wrong type"),
    ],
)
def test_bad_runs_raise(run: pl.DataFrame, match: str) -> None:
    known = pl.DataFrame({"query_id": ["q1", "q2", "q3"]})
    with pytest.raises(XevalError, match=match) as exc:
        _check(run, known_queries=known)
    assert "runs/x.parquet" in str(exc.value)


# ---- TREC files ----------------------------------------------------------------------------
def test_trec_round_trip_and_errors(tmp_path: Path) -> None:
    run, _ = random_run(seed=5, n_queries=10)
    path = write_trec_run(run, tmp_path / "run.trec", tag="t1")
    back = read_trec_run(path)
    assert back.height == run.height
    assert (
        back.join(run, on=["query_id", "doc_id"])
        .filter(pl.col("score") != pl.col("score_right"))
        .is_empty()
    )
    # ranks in the file follow the tie rule
    assert back["rank"].to_list() == rank_run(run)["rank"].cast(pl.Int32).to_list()
    # whitespace variants parse; a short line is an error naming its line
    (tmp_path / "odd.trec").write_text("q1\tQ0  d1 1 0.5 t\n\nq1 Q0 d2 2 0.25 t\n")
    assert read_trec_run(tmp_path / "odd.trec")["doc_id"].to_list() == ["d1", "d2"]
    (tmp_path / "bad.trec").write_text("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 0.25\n")
    with pytest.raises(XevalError, match=r"bad.trec, record 2: expected 6 fields"):
        read_trec_run(tmp_path / "bad.trec")
    (tmp_path / "nan.trec").write_text("q1 Q0 d1 1 nan t\n")
    with pytest.raises(XevalError, match="finite"):
        validate_run(read_trec_run(tmp_path / "nan.trec"))
    (tmp_path / "q.trec").write_text("q1 0 d1 1\nq1 0 d2 0\n")
    assert read_trec_qrels(tmp_path / "q.trec")["relevance"].to_list() == [1, 0]
    with pytest.raises(XevalError, match="file not found"):
        read_trec_run(tmp_path / "none.trec")
    (tmp_path / "abc.trec").write_text("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 abc t\n")
    with pytest.raises(XevalError, match=r"abc.trec, record 2: score is not a number: 'abc'"):
        read_trec_run(tmp_path / "abc.trec")
    (tmp_path / "qbad.trec").write_text("q1 0 d1 1\n\nq1 0 d2 x\n")
    with pytest.raises(XevalError, match=r"record 3: relevance is not an integer"):
        read_trec_qrels(tmp_path / "qbad.trec")

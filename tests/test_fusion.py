"""Fusion: equal to ranx.fuse on a hand-made case, the tie rule, the run directory, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from xeval.cli import main
from xeval.errors import XevalError
from xeval.fusion import FusionConfig, fuse_runs, fuse_setting

A = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}, "q2": {"d4": 0.9, "d5": 0.4}}
B = {"q1": {"d2": 0.8, "d4": 0.7, "d1": 0.1}, "q2": {"d5": 5.0, "d6": 1.0, "d4": 0.5}}


def _frame(run: dict[str, dict[str, float]]) -> pl.DataFrame:
    rows = [(q, d, s) for q, docs in run.items() for d, s in docs.items()]
    return pl.DataFrame(rows, schema=["query_id", "doc_id", "score"], orient="row")


def _as_dict(df: pl.DataFrame) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for q, d, s in df.select("query_id", "doc_id", "score").iter_rows():
        out.setdefault(q, {})[d] = s
    return out


@pytest.mark.parametrize(
    ("cfg", "norm", "method", "params"),
    [
        (FusionConfig("rrf"), None, "rrf", {"k": 60}),
        (FusionConfig("combsum"), "min-max", "sum", {}),
        (FusionConfig("combmnz", norm="max"), "max", "mnz", {}),
        (FusionConfig("wsum", weights=(0.3, 0.7)), "min-max", "wsum", {"weights": [0.3, 0.7]}),
    ],
)
def test_fusion_equals_ranx(cfg: FusionConfig, norm, method, params) -> None:
    from ranx import Run, fuse

    expected = fuse(
        [Run.from_dict(A), Run.from_dict(B)], norm=norm, method=method, params=params
    ).to_dict()
    got, dropped = fuse_setting([_frame(A), _frame(B)], cfg, k=100)
    assert dropped == 0
    got_d = _as_dict(got)
    assert got_d.keys() == expected.keys()
    for q in expected:
        assert got_d[q] == pytest.approx(dict(expected[q]), rel=1e-12)
    # ordered by the tie rule and ranked 1..n per query
    for _, g in got.group_by("query_id"):
        assert g["rank"].to_list() == list(range(1, g.height + 1))
        assert g["score"].to_list() == sorted(g["score"].to_list(), reverse=True)


def test_rrf_ranks_inputs_by_the_tie_rule() -> None:
    # every input score is tied: the tie rule ranks d3 > d2 > d1 (doc_id descending)
    tied = {"q": {"d1": 1.0, "d2": 1.0, "d3": 1.0}}
    got, _ = fuse_setting([_frame(tied), _frame(tied)], FusionConfig("rrf", rrf_k=60), k=10)
    scores = dict(zip(got["doc_id"], got["score"], strict=True))
    assert scores["d3"] == pytest.approx(2 / 61)
    assert scores["d2"] == pytest.approx(2 / 62)
    assert scores["d1"] == pytest.approx(2 / 63)
    assert got["doc_id"].to_list() == ["d3", "d2", "d1"]


def test_cut_to_k_and_queries_held_by_one_run_are_dropped() -> None:
    b = {**B, "q3": {"d1": 1.0}}
    got, dropped = fuse_setting([_frame(A), _frame(b)], FusionConfig("combsum"), k=2)
    assert dropped == 1
    assert got.group_by("query_id").len()["len"].max() == 2
    assert set(got["query_id"]) == {"q1", "q2"}


def _two_runs(bench: Path, tmp_path: Path) -> list[Path]:
    from xeval.retrieval.lexical import BM25Config, run_bm25

    a = run_bm25(bench, tmp_path / "a", BM25Config(k=10, progress=False)).out
    cfg = BM25Config(k1=1.5, b=0.75, stopwords=False, k=10, label="bm25-plain", progress=False)
    return [a, run_bm25(bench, tmp_path / "b", cfg).out]


def test_fused_run_evaluates_without_exact_ranks(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    from xeval.evaluation import evaluate_run

    runs = _two_runs(tiny_benchmark_dir, tmp_path)
    res = fuse_runs(runs, tmp_path / "fused", FusionConfig("rrf"))
    info = json.loads((tmp_path / "fused" / "run.json").read_text())
    assert info["exact_ranks"] is False and not (tmp_path / "fused" / "ranks").exists()
    assert info["fusion"]["method"] == "rrf" and len(info["fusion"]["inputs"]) == 2
    assert info["model"]["label"] == info["model"]["name"] == "rrf(bm25+bm25)"
    assert (
        info["benchmark"]["fingerprint"]
        == json.loads((runs[0] / "run.json").read_text())["benchmark"]["fingerprint"]
    )
    assert res.settings == info["settings"] and len(res.settings) == 12
    result = evaluate_run(tmp_path / "fused")
    assert result.value("mono", "MRR@10") > 0.5
    assert result.value("multi", "LB") is None  # no exact ranks: not computed


def test_cli_fuse(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    runs = [str(p) for p in _two_runs(tiny_benchmark_dir, tmp_path)]
    out = tmp_path / "cs"
    r = CliRunner().invoke(main, ["fuse", *runs, "--method", "combsum", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "combsum over min-max scores of 2 runs" in r.output
    bad = CliRunner().invoke(main, ["fuse", *runs, "--method", "wsum", "-o", str(tmp_path / "w")])
    assert bad.exit_code == 2 and "weights" in bad.output


def test_bad_input(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    from tests.conftest import make_tiny_benchmark
    from xeval.retrieval.lexical import BM25Config, run_bm25

    with pytest.raises(XevalError, match="unknown fusion method"):
        FusionConfig("borda-magic")
    with pytest.raises(XevalError, match="no normalisation"):
        FusionConfig("rrf", norm="min-max")
    a, b = _two_runs(tiny_benchmark_dir, tmp_path)
    with pytest.raises(XevalError, match="at least two runs"):
        fuse_runs([a], tmp_path / "one")
    with pytest.raises(XevalError, match="one per run"):
        fuse_runs([a, b], tmp_path / "w", FusionConfig("wsum", weights=(1.0,)))
    other = make_tiny_benchmark(n_units=4, langs=("en", "es")).save(tmp_path / "other-bench")
    c = run_bm25(other, tmp_path / "c", BM25Config(k=10, progress=False)).out
    with pytest.raises(XevalError, match="different benchmarks") as exc:
        fuse_runs([a, c], tmp_path / "mixed")
    assert str(c / "run.json") in str(exc.value)
    with pytest.raises(XevalError, match=r"no run\.json"):
        fuse_runs([a, tmp_path], tmp_path / "x")
    (a / "runs" / "mono-en.parquet").write_bytes(b"not parquet")
    with pytest.raises(XevalError, match="unreadable parquet"):
        fuse_runs([a, b], tmp_path / "y")
    assert not (tmp_path / "y").exists()

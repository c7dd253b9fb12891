"""Pair sources as registry entries, ``xeval pairs`` generated from the registry."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from xeval.cli import main
from xeval.errors import XevalError
from xeval.training.pairs import (
    PAIR_SOURCES,
    PairSourceSpec,
    PairsRequest,
    build_pairs,
    make_pairs,
    pair_sources,
    register_pairs,
)

KNOWN = {
    "ddtp",
    "finlex",
    "justice-canada",
    "lareqa-mlqa-r",
    "lareqa-xquad-r",
    "parallel-jsonl",
    "python-docs",
}


def _units(tmp_path: Path) -> Path:
    f = tmp_path / "units.jsonl"
    recs = [
        {"unit_id": "a", "lang": "en", "query": "Q en", "passage": "P en"},
        {"unit_id": "a", "lang": "de", "query": "Q de", "passage": "P de"},
        {"unit_id": "b", "lang": "en", "query": "Q2 en", "passage": "P2 en"},
    ]
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n", encoding="utf-8")
    return f


def test_every_source_is_discovered_next_to_its_builder() -> None:
    sources = pair_sources()
    assert set(sources) == KNOWN
    for spec in sources.values():
        assert spec.build.__module__.startswith("xeval.benchmark.builders."), spec.name
    assert sources["justice-canada"].build.__module__.endswith(".justice_canada")
    assert {o.name for o in sources["python-docs"].options} == {"languages", "max_passage_chars"}


def test_register_twice_is_refused() -> None:
    spec = pair_sources()["finlex"]
    with pytest.raises(ValueError, match="registered twice"):
        register_pairs("finlex", description="x")(lambda source, max_units: None)
    assert PAIR_SOURCES["finlex"] is spec


def test_unknown_source_and_option(tmp_path: Path) -> None:
    with pytest.raises(XevalError, match="unknown pair source 'nope'; known: ddtp"):
        build_pairs("nope")
    with pytest.raises(XevalError, match="takes no option"):
        build_pairs("parallel-jsonl", _units(tmp_path), languages="en")
    with pytest.raises(XevalError, match="reads your own file"):
        build_pairs("parallel-jsonl")


def test_make_pairs_one_call_typed_result(tmp_path: Path) -> None:
    out = tmp_path / "p.parquet"
    res = make_pairs(PairsRequest("parallel-jsonl", out, _units(tmp_path)))
    assert (res.rows, res.units, res.languages) == (5, 2, ("de", "en"))
    assert (res.mono_rows, res.cross_rows) == (3, 2)
    assert res.summary() == f"{out}: 5 pairs, 2 units, languages de en; 3 X-X and 2 X-Y"
    assert pl.read_parquet(out).height == 5
    with pytest.raises(XevalError, match="exists; pass --overwrite"):
        make_pairs(PairsRequest("parallel-jsonl", out, _units(tmp_path)))


def test_cli_generated_from_registry(tmp_path: Path, monkeypatch) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["pairs", "--help"])
    assert res.exit_code == 0 and all(name in res.output for name in KNOWN)
    res = runner.invoke(main, ["pairs", "python-docs", "--help"])
    assert (
        res.exit_code == 0 and "--languages" in res.output and "--max-passage-chars" in res.output
    )
    out = tmp_path / "p.parquet"
    args = ["pairs", "parallel-jsonl", "--source", str(_units(tmp_path)), "--out", str(out)]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "5 pairs, 2 units" in res.output
    assert json.loads(out.with_name("p.parquet.json").read_text())["source"] == "parallel-jsonl"
    res = runner.invoke(main, args)
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = runner.invoke(main, ["pairs", "parallel-jsonl", "--out", str(out)])
    assert res.exit_code == 2 and "--source" in res.output


def test_a_new_source_is_one_decorated_function(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def fake(source: Path, max_units: int | None, flavour: str = "x") -> pl.DataFrame:
        calls.append((source, max_units, flavour))
        return build_pairs("parallel-jsonl", _units(tmp_path))

    from xeval.training.pairs import PairOption

    spec = PairSourceSpec("fake", fake, "a fake", options=(PairOption("flavour"),))
    monkeypatch.setitem(PAIR_SOURCES, "fake", spec)
    res = CliRunner().invoke(
        main,
        ["pairs", "fake", "-s", str(tmp_path), "-o", str(tmp_path / "f.parquet"), "--flavour", "y"],
    )
    assert res.exit_code == 0, res.output
    assert calls == [(tmp_path, None, "y")]

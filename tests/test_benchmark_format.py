"""The canonical benchmark format: save/load, validation, settings, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import make_tiny_benchmark
from xeval.benchmark.schema import Benchmark, load_benchmark
from xeval.benchmark.settings import enumerate_settings
from xeval.errors import XevalError


def test_save_load_roundtrip(tmp_path: Path) -> None:
    bench = make_tiny_benchmark()
    out = bench.save(tmp_path / "b")
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "benchmark.json",
        "corpus.parquet",
        "qrels.parquet",
        "qrels.trec",
        "queries.parquet",
    ]
    loaded = load_benchmark(out)
    assert loaded.fingerprint == bench.fingerprint
    manifest = json.loads((out / "benchmark.json").read_text())
    assert manifest["counts"]["per_language"]["de"] == {"queries": 6, "documents": 6, "qrels": 18}
    assert manifest["languages"] == ["de", "en", "fr"]
    for key in ("fingerprint", "versions", "command", "created"):
        assert key in manifest
    lines = (out / "qrels.trec").read_text().splitlines()
    assert len(lines) == bench.qrels.height and lines[0].split() == ["de-q0", "0", "de-d0", "1"]


def test_fingerprint_ignores_row_order_but_not_content() -> None:
    a = make_tiny_benchmark()
    b = Benchmark(a.name, a.corpus.reverse(), a.queries.reverse(), a.qrels.reverse())
    assert a.fingerprint == b.fingerprint
    c = Benchmark(
        a.name, a.corpus.with_columns(pl.col("text").str.to_uppercase()), a.queries, a.qrels
    )
    assert c.fingerprint != a.fingerprint


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.corpus.vstack(b.corpus.head(1)), "duplicate doc_id 'en-d0'"),
        (lambda b: b.queries.vstack(b.queries.head(1)), "duplicate query_id 'en-q0'"),
    ],
)
def test_duplicate_ids(mutate, message: str) -> None:
    b = make_tiny_benchmark()
    if "doc_id" in message:
        b.corpus = mutate(b)
    else:
        b.queries = mutate(b)
    with pytest.raises(XevalError, match=message):
        b.validate()


def test_dangling_qrels_and_languages() -> None:
    b = make_tiny_benchmark()
    b.qrels = b.qrels.vstack(
        pl.DataFrame(
            {"query_id": ["en-q0"], "doc_id": ["nope"], "relevance": [1]}, schema=b.qrels.schema
        )
    )
    with pytest.raises(XevalError, match="unknown doc_id 'nope'"):
        b.validate()
    b = make_tiny_benchmark()
    b.qrels = b.qrels.vstack(
        pl.DataFrame(
            {"query_id": ["zz"], "doc_id": ["en-d0"], "relevance": [1]}, schema=b.qrels.schema
        )
    )
    with pytest.raises(XevalError, match="unknown query_id 'zz'"):
        b.validate()
    b = make_tiny_benchmark()
    b.manifest["languages"] = ["en", "de"]
    with pytest.raises(XevalError, match=r"\['fr'\] are used but not declared"):
        b.validate()
    b = make_tiny_benchmark()
    b.corpus = b.corpus.with_columns(
        lang=pl.when(pl.col("doc_id") == "fr-d1").then(pl.lit("")).otherwise("lang")
    )
    with pytest.raises(XevalError, match="'fr-d1' has no language"):
        b.validate()


def test_failed_save_leaves_nothing(tmp_path: Path) -> None:
    b = make_tiny_benchmark()
    b.qrels = b.qrels.with_columns(doc_id=pl.lit("missing"))
    with pytest.raises(XevalError):
        b.save(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    b = make_tiny_benchmark()
    b.save(tmp_path / "out")
    with pytest.raises(XevalError, match="--overwrite"):
        b.save(tmp_path / "out")
    b.save(tmp_path / "out", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(XevalError, match="does not exist"):
        load_benchmark(tmp_path / "none")
    (tmp_path / "x").mkdir()
    with pytest.raises(XevalError, match=r"no benchmark.json"):
        load_benchmark(tmp_path / "x")
    out = make_tiny_benchmark().save(tmp_path / "b")
    (out / "corpus.parquet").write_bytes(b"PAR1garbage")
    with pytest.raises(XevalError, match=r"corpus.parquet"):
        load_benchmark(out)


def test_settings_enumeration() -> None:
    b = make_tiny_benchmark(n_units=4, langs=("en", "de", "fr"))
    settings = enumerate_settings(b)
    kinds = [s.kind for s in settings]
    assert kinds.count("mono") == 3 and kinds.count("cross") == 6 and kinds.count("multi") == 3
    s = next(x for x in settings if x.name == "cross-en-de")
    assert s.doc_lang == "de" and s.qrels.height == 4
    assert set(s.corpus(b)["lang"].to_list()) == {"de"}
    assert all(q.startswith("en-") for q in s.query_ids)
    m = next(x for x in settings if x.name == "multi-fr")
    assert m.doc_lang == "all" and m.qrels.height == 12 and m.corpus(b).height == 12


def test_settings_drop_queries_without_relevant_item() -> None:
    b = make_tiny_benchmark(n_units=3, langs=("en", "de"))
    # unit q2 has no German document: cross-en-de keeps 2 queries, mono-de keeps 2
    b.qrels = b.qrels.filter(pl.col("doc_id") != "de-d2")
    b.corpus = b.corpus.filter(pl.col("doc_id") != "de-d2")
    by = {s.name: s for s in enumerate_settings(b)}
    assert len(by["cross-en-de"].query_ids) == 2
    assert len(by["mono-de"].query_ids) == 2
    assert len(by["multi-en"].query_ids) == 3


def test_settings_bad_requests() -> None:
    b = make_tiny_benchmark()
    with pytest.raises(XevalError, match="unknown setting kind"):
        enumerate_settings(b, kinds=["mono", "bilingual"])
    with pytest.raises(XevalError, match=r"\['xx'\] are not in"):
        enumerate_settings(b, languages=["en", "xx"])
    only = enumerate_settings(b, kinds=["cross"], languages=["en", "de"])
    assert [s.name for s in only] == ["cross-de-en", "cross-en-de"]


def test_demo_is_a_command_like_the_others(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from xeval.cli import main
    from xeval.demo import DemoResult

    r = CliRunner().invoke(main, ["demo", "--help"])
    assert r.exit_code == 0 and "--sample-queries" in r.output
    res = DemoResult(tmp_path / "b", tmp_path / "r", "tiny", "TABLE", 3.2)
    text = res.summary()
    assert text.startswith("TABLE") and str(tmp_path / "r" / "eval") in text and "3 s" in text

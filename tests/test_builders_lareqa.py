"""XQuAD-R and MLQA-R built from ../shared/data reproduce the published counts."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from xeval.benchmark.builders.lareqa import read_lareqa_file
from xeval.benchmark.registry import build, build_benchmark
from xeval.benchmark.settings import enumerate_settings
from xeval.cli import main
from xeval.errors import SourceNotFoundError, XevalError

pytestmark = pytest.mark.data


def test_xquad_r_counts(shared_data: Path) -> None:
    b = build("xquad-r", shared_data / "lareqa" / "xquad-r")
    assert b.corpus.height == 13_014
    per_lang = dict(b.queries.group_by("lang").len().iter_rows())
    assert len(per_lang) == 11 and set(per_lang.values()) == {1_190}
    docs = dict(b.corpus.group_by("lang").len().iter_rows())
    assert docs["en"] == 1_180 and docs["th"] == 852 and docs["de"] == 1_276
    # multilingual: 11 relevant per query
    assert set(b.qrels.group_by("query_id").len()["len"].to_list()) == {11}
    kinds = Counter(s.kind for s in enumerate_settings(b))
    assert kinds == {"cross": 110, "mono": 11, "multi": 11}
    # mono and cross: exactly one relevant item per query, every query kept
    for s in enumerate_settings(b, kinds=["mono", "cross"]):
        assert s.qrels.height == 1_190 == len(s.query_ids)


def test_mlqa_r_counts(shared_data: Path) -> None:
    b = build("mlqa-r", shared_data / "lareqa" / "mlqa-r")
    assert b.corpus.height == 20_534
    rel = b.qrels.group_by("query_id").len()["len"].value_counts().sort("len")
    assert dict(rel.iter_rows()) == {2: 130, 3: 789, 4: 3_280}
    per_lang = dict(b.queries.group_by("lang").len().iter_rows())
    assert per_lang["en"] == 1_148 and sum(per_lang.values()) == 4_199
    settings = enumerate_settings(b)
    kinds = Counter(s.kind for s in settings)
    assert kinds == {"cross": 42, "mono": 7, "multi": 7}
    cross = [len(s.query_ids) for s in settings if s.kind == "cross"]
    assert min(cross) == 161 and max(cross) == 517


def test_default_lookup_and_cli(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XEVAL_SOURCES", str(shared_data))
    res = CliRunner().invoke(
        main,
        ["build-benchmark", "xquad-r", "--out", str(tmp_path / "xq"), "--sample-queries", "10"],
    )
    assert res.exit_code == 0, res.output
    assert "110 cross" in res.output
    manifest = json.loads((tmp_path / "xq" / "benchmark.json").read_text())
    assert manifest["licence"] == "CC BY-SA 4.0"
    assert manifest["counts"]["queries"] == 110 and manifest["counts"]["documents"] == 13_014
    assert len(manifest["source"]["sha256"]) == 64 and manifest["builder_version"] == "1"


def test_help_explains_every_option() -> None:
    res = CliRunner().invoke(main, ["build-benchmark", "mlqa-r", "--help"])
    assert res.exit_code == 0
    for opt in ("--out", "--source", "--overwrite", "--sample-queries", "--seed", "XEVAL_SOURCES"):
        assert opt in res.output


def _copy(shared_data: Path, tmp_path: Path) -> Path:
    src = tmp_path / "xquad-r"
    shutil.copytree(shared_data / "lareqa" / "xquad-r", src)
    return src


def test_bad_json_names_file_and_nothing_is_written(shared_data: Path, tmp_path: Path) -> None:
    src = _copy(shared_data, tmp_path)
    (src / "de.json").write_text((src / "de.json").read_text()[:5000])
    with pytest.raises(XevalError, match=r"de\.json.*malformed JSON"):
        build_benchmark("xquad-r", tmp_path / "out", src)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_answer_outside_breaks_and_missing_field(tmp_path: Path) -> None:
    para = {
        "context": "A b. C d.",
        "sentences": ["A b.", "C d."],
        "sentence_breaks": [[0, 4], [5, 9]],
        "qas": [{"id": "q1", "question": "?", "answers": [{"answer_start": 40, "text": "x"}]}],
    }
    f = tmp_path / "en.json"
    f.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [para]}]}))
    with pytest.raises(
        XevalError, match=r"en\.json, record data\[0\]\.paragraphs\[0\] question 'q1'.*outside"
    ):
        read_lareqa_file(f, "en")
    del para["sentence_breaks"]
    f.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [para]}]}))
    with pytest.raises(XevalError, match="missing field 'sentence_breaks'"):
        read_lareqa_file(f, "en")
    f.write_bytes('{"data": []}'.encode("utf-16"))
    with pytest.raises(XevalError, match="not UTF-8"):
        read_lareqa_file(f, "en")


def test_missing_source_says_where(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XEVAL_SOURCES", str(tmp_path / "nowhere"))
    monkeypatch.setenv("XEVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    import xeval.sources as sources

    monkeypatch.setattr(sources, "__file__", str(tmp_path / "pkg" / "xeval" / "sources.py"))
    monkeypatch.setattr(
        sources, "download_source", lambda spec: (_ for _ in ()).throw(OSError("no network"))
    )
    with pytest.raises(SourceNotFoundError, match=r"(?s)lareqa/xquad-r.*download failed.*--source"):
        build("xquad-r")


def test_corpus_text_matches_source(shared_data: Path) -> None:
    b = build("xquad-r", shared_data / "lareqa" / "xquad-r", sample_queries=5)
    q = b.queries.filter(pl.col("lang") == "en").row(0, named=True)
    d = (
        b.qrels.filter(pl.col("query_id") == q["query_id"])
        .join(b.corpus, on="doc_id")
        .filter(pl.col("lang") == "en")
    )
    raw = json.loads((shared_data / "lareqa/xquad-r/en.json").read_text())
    for art in raw["data"]:
        for p in art["paragraphs"]:
            for qa in p["qas"]:
                if qa["id"] == q["unit_id"]:
                    start = qa["answers"][0]["answer_start"]
                    sent = next(
                        s
                        for s, (a, e) in zip(p["sentences"], p["sentence_breaks"], strict=False)
                        if a <= start < e
                    )
                    assert d["text"][0] == sent
                    return
    raise AssertionError("question not found")

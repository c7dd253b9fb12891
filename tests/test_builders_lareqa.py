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


# ---- damaged sources ---------------------------------------------------------------------------
def _para() -> dict:
    return {
        "context": "A b. C d.",
        "sentences": ["A b.", "C d."],
        "sentence_breaks": [[0, 4], [5, 9]],
        "qas": [{"id": "q1", "question": "?", "answers": [{"answer_start": 5, "text": "C"}]}],
    }


def _set(path: tuple, value: object):
    def edit(doc: dict) -> None:
        *head, last = path
        node = doc
        for key in head:
            node = node[key]
        node[last] = value

    return edit


P0 = ("data", 0, "paragraphs", 0)
Q0 = (*P0, "qas", 0)


@pytest.mark.parametrize(
    ("edit", "match", "record"),
    [
        (
            _set((*P0, "sentences"), "A b. C d."),
            "'sentences' must be list",
            "data[0].paragraphs[0]",
        ),
        (_set((*Q0, "id"), 17), "'id' must be str", "data[0].paragraphs[0] question 17"),
        (
            _set((*Q0, "answers", 0, "answer_start"), 40),
            "outside every sentence break",
            "data[0].paragraphs[0] question 'q1'",
        ),
        (
            _set((*Q0, "answers", 0, "answer_start"), "5"),
            "'answer_start' must be int",
            "data[0].paragraphs[0] question 'q1'",
        ),
        (_set((*Q0, "answers"), []), "no answer", "data[0].paragraphs[0] question 'q1'"),
        (_set((*P0, "qas"), {"id": "q1"}), "'qas' must be list", "data[0].paragraphs[0]"),
        (_set(("data", 0, "paragraphs"), "none"), "'paragraphs' must be list", "data[0]"),
        (_set(("data", 0), ["x"]), "an article must be dict", "data[0]"),
        (_set((*P0, "sentence_breaks", 1), [5]), "not \\[begin, end\\]", "sentences[1]"),
        (_set((*P0, "sentences", 1), 3), "a sentence must be str", "sentences[1]"),
        (_set((*Q0,), "q1"), "a question must be dict", "data[0].paragraphs[0]"),
        (_set((*Q0, "question"), None), "'question' must be str", "question 'q1'"),
    ],
)
def test_structure_errors_name_file_and_record(tmp_path: Path, edit, match: str, record) -> None:
    doc = {"data": [{"title": "t", "paragraphs": [_para()]}]}
    f = tmp_path / "en.json"
    f.write_text(json.dumps(doc))
    assert len(read_lareqa_file(f, "en")[1]) == 1  # the unedited file is fine
    edit(doc)
    f.write_text(json.dumps(doc))
    with pytest.raises(XevalError, match=match) as e:
        read_lareqa_file(f, "en")
    assert e.value.file == str(f) and record in str(e.value.record)


@pytest.mark.parametrize("top", ["[]", '{"data": {}}', '"data"', "3"])
def test_wrong_top_level_names_file(tmp_path: Path, top: str) -> None:
    f = tmp_path / "en.json"
    f.write_text(top)
    with pytest.raises(XevalError, match="no top-level 'data' list") as e:
        read_lareqa_file(f, "en")
    assert e.value.file == str(f)


def test_modified_copy_is_refused_unless_accepted(shared_data: Path, tmp_path: Path) -> None:
    src = _copy(shared_data, tmp_path)
    shutil.copyfile(src / "en.json", src / "de.json")  # valid JSON, wrong content
    with pytest.raises(XevalError, match="SHA-256 differs") as e:
        build_benchmark("xquad-r", tmp_path / "out", src)
    assert e.value.file == str(src / "de.json") and not (tmp_path / "out").exists()
    bench = build("xquad-r", src, accept_modified_source=True)
    check = bench.manifest["source_check"]
    assert check == {"pinned_files": 11, "modified_files": ["de.json"], "accepted_modified": True}
    assert bench.manifest["options"]["accept_modified_source"] is True


def test_modified_copy_cli_flag(shared_data: Path, tmp_path: Path) -> None:
    src = _copy(shared_data, tmp_path)
    raw = json.loads((src / "en.json").read_text())
    del raw["data"][-1]  # one article dropped
    (src / "en.json").write_text(json.dumps(raw))
    args = ["build-benchmark", "xquad-r", "--source", str(src), "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(main, args)
    assert (
        res.exit_code == 2 and "en.json" in res.output and "--accept-modified-source" in res.output
    )
    res = CliRunner().invoke(main, [*args, "--accept-modified-source"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "o" / "benchmark.json").read_text())
    assert manifest["source_check"]["modified_files"] == ["en.json"]


def test_pristine_copy_is_recorded_as_checked(shared_data: Path) -> None:
    bench = build("mlqa-r", shared_data / "lareqa" / "mlqa-r", sample_queries=3)
    assert bench.manifest["source_check"] == {
        "pinned_files": 7,
        "modified_files": [],
        "accepted_modified": False,
    }

"""BEIR folders and parallel JSONL: round trips and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_tiny_benchmark
from xeval.benchmark.export import export_benchmark
from xeval.benchmark.registry import build, build_benchmark
from xeval.benchmark.schema import load_benchmark
from xeval.cli import main
from xeval.errors import XevalError


def test_beir_roundtrip(tmp_path: Path) -> None:
    bench = make_tiny_benchmark()
    src = bench.save(tmp_path / "b")
    export_benchmark(src, tmp_path / "exp")
    for name in (
        "corpus.jsonl",
        "queries.jsonl",
        "qrels/test.tsv",
        "qrels.trec",
        "settings/cross-en-de.qrels",
    ):
        assert (tmp_path / "exp" / name).exists(), name
    again = build("beir", tmp_path / "exp")
    assert again.fingerprint == bench.fingerprint
    assert (
        json.loads((tmp_path / "exp" / "corpus.jsonl").read_text().splitlines()[0])["lang"] == "en"
    )


def test_trec_settings_export_matches_settings(tmp_path: Path) -> None:
    src = make_tiny_benchmark(n_units=3).save(tmp_path / "b")
    export_benchmark(src, tmp_path / "exp", fmt="trec")
    assert not (tmp_path / "exp" / "corpus.jsonl").exists()
    lines = (tmp_path / "exp" / "settings" / "mono-fr.qrels").read_text().splitlines()
    assert lines == ["fr-q0 0 fr-d0 1", "fr-q1 0 fr-d1 1", "fr-q2 0 fr-d2 1"]
    assert len(list((tmp_path / "exp" / "settings").iterdir())) == 3 + 6 + 3


def _parallel(tmp_path: Path, records: list[dict | str]) -> Path:
    f = tmp_path / "units.jsonl"
    f.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records)
        + "\n"
    )
    return f


def test_parallel_jsonl_roundtrip(tmp_path: Path) -> None:
    recs = [
        {
            "unit_id": "s1",
            "lang": "en",
            "query": "What is a lease?",
            "passage": "A lease is a contract.",
        },
        {
            "unit_id": "s1",
            "lang": "fr",
            "query": "Qu'est-ce qu'un bail ?",
            "passage": "Un bail est un contrat.",
        },
        {
            "unit_id": "s2",
            "lang": "en",
            "query": "Who pays rent?",
            "passage": "The tenant pays rent.",
        },
        {"unit_id": "s2", "lang": "fr", "passage": "Le locataire paie le loyer."},
    ]
    b = build("parallel-jsonl", _parallel(tmp_path, recs))
    assert b.queries.height == 3 and b.corpus.height == 4 and b.qrels.height == 6
    out = b.save(tmp_path / "bench")
    loaded = load_benchmark(out)
    assert loaded.fingerprint == b.fingerprint
    export_benchmark(out, tmp_path / "beir", fmt="beir")
    assert build("beir", tmp_path / "beir").fingerprint == b.fingerprint


@pytest.mark.parametrize(
    ("records", "match"),
    [
        (
            ['{"unit_id": "a", "lang": "en", "query": "q", "passage": "p"}', "{not json"],
            r"units\.jsonl, record line 2: malformed JSON",
        ),
        ([{"unit_id": "a", "query": "q", "passage": "p"}], r"record line 1: missing field 'lang'"),
        (
            [
                {"unit_id": "a", "lang": "en", "query": "q", "passage": "p"},
                {"unit_id": "a", "lang": "en", "query": "x", "passage": "y"},
            ],
            "duplicate",
        ),
        (
            [{"unit_id": "a", "lang": "en", "query": " ", "passage": ""}],
            "neither query nor passage",
        ),
        ([{"unit_id": "a", "lang": "", "query": "q", "passage": "p"}], "field 'lang' is empty"),
        ([], "no records"),
    ],
)
def test_parallel_jsonl_bad_input(tmp_path: Path, records, match: str) -> None:
    with pytest.raises(XevalError, match=match):
        build_benchmark("parallel-jsonl", tmp_path / "out", _parallel(tmp_path, records))
    assert not (tmp_path / "out").exists()


def test_wrong_encoding_names_line(tmp_path: Path) -> None:
    f = tmp_path / "units.jsonl"
    f.write_bytes(
        b'{"unit_id": "a", "lang": "en", "query": "q", "passage": "p"}\n{"unit_id": "b", "lang": "de", "query": "\xe4", "passage": "p"}\n'
    )
    with pytest.raises(XevalError, match=r"units\.jsonl, record line 2: not UTF-8"):
        build("parallel-jsonl", f)


def test_beir_bad_qrels_and_missing_lang(tmp_path: Path) -> None:
    src = make_tiny_benchmark(n_units=2).save(tmp_path / "b")
    export_benchmark(src, tmp_path / "exp", fmt="beir")
    qrels = tmp_path / "exp" / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "en-q0\tghost\t1\n")
    with pytest.raises(XevalError, match=r"test\.tsv: qrel names unknown doc_id 'ghost'"):
        build("beir", tmp_path / "exp")
    qrels.write_text("query-id\tcorpus-id\tscore\nen-q0\ten-d0\n")
    with pytest.raises(XevalError, match=r"line 2: expected 3"):
        build("beir", tmp_path / "exp")
    corpus = tmp_path / "exp" / "corpus.jsonl"
    corpus.write_text('{"_id": "x", "text": "no language"}\n')
    with pytest.raises(XevalError, match=r"corpus\.jsonl, record line 1: missing field 'lang'"):
        build("beir", tmp_path / "exp")


def test_cli_user_format_requires_source(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["build-benchmark", "beir", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--source" in res.output
    res = CliRunner().invoke(
        main,
        [
            "build-benchmark",
            "beir",
            "--out",
            str(tmp_path / "o"),
            "--source",
            str(tmp_path / "none"),
        ],
    )
    assert res.exit_code == 2 and "does not exist" in res.output


def test_cli_export(tmp_path: Path) -> None:
    src = make_tiny_benchmark(n_units=2).save(tmp_path / "b")
    res = CliRunner().invoke(main, ["export", str(src), "--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "e" / "qrels" / "test.tsv").exists()


# ---- relevance, language codes, line ends -------------------------------------------------------
def _beir(tmp_path: Path, qrels: str) -> Path:
    src = make_tiny_benchmark(n_units=2).save(tmp_path / "b")
    export_benchmark(src, tmp_path / "exp", fmt="beir")
    (tmp_path / "exp" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return tmp_path / "exp"


@pytest.mark.parametrize("score", ["0.5", "1.9", "inf", "nan", "-0.5", "1e300"])
def test_beir_relevance_must_be_whole(tmp_path: Path, score: str) -> None:
    src = _beir(tmp_path, f"en-q0\ten-d0\t1\nen-q1\ten-d1\t{score}\n")
    with pytest.raises(XevalError, match="not a whole number") as e:
        build_benchmark("beir", tmp_path / "out", src)
    assert e.value.record == "line 3" and e.value.file.endswith("test.tsv")
    assert not (tmp_path / "out").exists()


def test_beir_graded_and_repeated_qrels(tmp_path: Path) -> None:
    src = _beir(tmp_path, "en-q0\ten-d0\t2.0\nen-q0\ten-d0\t2\nen-q1\ten-d1\t1\n")
    b = build("beir", src)
    assert sorted(b.qrels["relevance"].to_list()) == [1, 2]
    (src / "qrels" / "test.tsv").write_text("en-q0\ten-d0\t1\nen-q1\ten-d1\t1\nen-q0\ten-d0\t0\n")
    with pytest.raises(XevalError, match="relevance 0 here and 1 on line 1") as e:
        build("beir", src)
    assert e.value.record == "line 3"


def test_beir_all_zero_qrels_refused(tmp_path: Path) -> None:
    with pytest.raises(XevalError, match="no qrel with a positive score"):
        build("beir", _beir(tmp_path, "en-q0\ten-d0\t0\n"))


def test_language_codes_are_normalised(tmp_path: Path) -> None:
    recs = [
        {"unit_id": "a", "lang": " EN ", "query": "q", "passage": "p"},
        {"unit_id": "a", "lang": "pt-BR", "query": "q2", "passage": "p2"},
    ]
    b = build("parallel-jsonl", _parallel(tmp_path, recs))
    assert sorted(b.queries["lang"].unique()) == ["en", "pt_BR"]
    recs.append({"unit_id": "a", "lang": "en", "query": "q3", "passage": "p3"})
    with pytest.raises(XevalError, match="language 'en' twice") as e:
        build("parallel-jsonl", _parallel(tmp_path, recs))
    assert e.value.record == "line 3"


@pytest.mark.parametrize("code", ["../x", "de/at", "a-b-c-d-e-f-g-h-i-j-k-l", "e n", "x"])
def test_bad_language_codes_are_refused(tmp_path: Path, code: str) -> None:
    recs = [
        {"unit_id": "a", "lang": "en", "query": "q", "passage": "p"},
        {"unit_id": "a", "lang": code, "query": "q2", "passage": "p2"},
    ]
    with pytest.raises(XevalError, match="language code") as e:
        build_benchmark("parallel-jsonl", tmp_path / "out", _parallel(tmp_path, recs))
    assert e.value.record == "line 2" and not (tmp_path / "out").exists()


def test_settings_names_stay_unambiguous(tmp_path: Path) -> None:
    """Codes never hold '-', the separator of setting names (cross-X-Y)."""
    recs = [
        {"unit_id": "a", "lang": "a-bc", "query": "q", "passage": "p"},
        {"unit_id": "a", "lang": "ab", "query": "q2", "passage": "p2"},
    ]
    with pytest.raises(XevalError, match="language code"):
        build("parallel-jsonl", _parallel(tmp_path, recs))
    recs[0]["lang"] = "ab-cd"
    b = build("parallel-jsonl", _parallel(tmp_path, recs))
    assert sorted(b.queries["lang"].unique()) == ["ab", "ab_CD"]


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c"])
def test_unicode_line_separators_inside_strings(tmp_path: Path, sep: str) -> None:
    recs = [
        {"unit_id": "a", "lang": "en", "query": f"one{sep}two", "passage": "p"},
        {"unit_id": "a", "lang": "de", "query": "q", "passage": f"x{sep}y"},
        "{broken",
    ]
    f = _parallel(tmp_path, recs)
    with pytest.raises(XevalError, match="malformed JSON") as e:
        build("parallel-jsonl", f)
    assert e.value.record == "line 3"
    f.write_text("\n".join(f.read_text(encoding="utf-8").split("\n")[:2]), encoding="utf-8")
    b = build("parallel-jsonl", f)
    assert f"one{sep}two" in b.queries["text"].to_list()


@pytest.mark.parametrize("target", ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"])
@pytest.mark.parametrize("damage", ["directory", "symlink-loop", "empty", "header-only"])
def test_beir_files_that_are_not_files(tmp_path: Path, target: str, damage: str) -> None:
    src = _beir(tmp_path, "en-q0\ten-d0\t1\n")
    path = src / target
    path.unlink()
    if damage == "directory":
        path.mkdir()
    elif damage == "symlink-loop":
        path.symlink_to(path)
    elif damage == "empty":
        path.write_text("")
    else:
        path.write_text("query-id\tcorpus-id\tscore\n" if target.endswith(".tsv") else "\n\n")
    with pytest.raises(XevalError) as e:
        build_benchmark("beir", tmp_path / "out", src)
    assert e.value.file == str(path) and not (tmp_path / "out").exists()

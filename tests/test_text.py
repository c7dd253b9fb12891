"""The text toolbox: one answer per question for builders, pair sources and the overlap guard."""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

import pytest

from xeval import text as T
from xeval.errors import XevalError

ZH = "指合理使用(Fair Dealing and Fair Use)和/或其他例外或限制。"


@pytest.mark.parametrize("code", ["zh", "zh-Hans", "zh-Hant", "zh_CN", "ZH"])
def test_one_script_answer_for_every_spelling_of_a_language(code: str) -> None:
    assert T.in_expected_script(ZH, code)
    assert T.keep_translation(ZH, code, "Fair dealing and fair use")[1] == "ok"
    assert not T.in_expected_script("This provision was not translated at all 中", code)


def test_latin_words_count_once() -> None:
    assert T.in_expected_script("Python 中有 curses/termcap 包吗？", "zh")
    assert T.in_expected_script("「翻案物」とは", "ja")
    assert not T.in_expected_script("open and possibly create a file", "ja")
    assert T.in_expected_script("Le ministre peut", "fr")
    assert not T.in_expected_script("Министр может", "fr")
    assert T.script_share("", T.expected_scripts("de")) == 0.0
    assert T.expected_scripts("sr") == {"CYRILLIC", "LATIN"}


def test_one_normalisation_and_its_keys() -> None:
    assert T.normalise("  Hello,   WORLD!! ") == "hello world"
    assert T.normalise("ｆｕｌｌ\u3000width") == "full width"
    assert T.dedup_key("Définitions — Loi!") == "définitionsloi"
    assert T.same_text("Open the file.", "open  the file")
    assert not T.same_text("Can I write functions in C++?", "Can I write functions in C?")
    assert T.dedupe(["a", "A ", "b"], T.dedup_key) == (["a", "b"], 1)


def test_stopwords_are_package_data_read_lazily() -> None:
    folder = resources.files("xeval.text") / "data" / "stopwords"
    assert folder.joinpath("en.txt").is_file() and folder.joinpath("de.txt").is_file()
    assert "the" in T.stopwords("en") and "und" in T.stopwords("de-AT")
    assert T.stopwords("xx") == frozenset()
    assert T.looks_english("The file is opened and the data is read from it.", "de")
    assert not T.looks_english("Die Datei wird geöffnet und die Daten werden gelesen.", "de")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("de", "de"), (" EN ", "en"), ("pt-BR", "pt_BR"), ("zh_hans", "zh_Hans"), ("fil", "fil")],
)
def test_language_code_rule(given: str, expected: str) -> None:
    assert T.check_lang(given, "f", 1) == expected


@pytest.mark.parametrize("bad", ["", "e", "../en", "en/x", "de\\x", "a b", "english", "é", 3, None])
def test_bad_language_codes_name_file_and_record(bad: object) -> None:
    with pytest.raises(XevalError, match="language code") as e:
        T.check_lang(bad, "corpus.jsonl", "line 4")
    assert e.value.file == "corpus.jsonl" and e.value.record == "line 4"


def test_no_module_outside_builders_imports_a_builder_private_module() -> None:
    root = Path(__file__).resolve().parent.parent / "xeval"
    offenders = []
    for path in root.rglob("*.py"):
        if path.parent.name == "builders":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "xeval.benchmark.builders._"
            ):
                offenders.append(f"{path.relative_to(root)}: {node.module}")
    assert offenders == []

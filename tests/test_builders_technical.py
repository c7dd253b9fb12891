"""python-faq and manpages builders, their parsing helpers, and technical training pairs."""

from __future__ import annotations

import gzip
import io
import lzma
import shutil
import tarfile
import time
import unicodedata
from pathlib import Path

import polars as pl
import pytest

from xeval import text as T
from xeval.benchmark.builders._po import rst_inline_to_text
from xeval.benchmark.builders._roff import parse_page, read_ar, unescape
from xeval.benchmark.builders.manpages import build_manpages, mask_names
from xeval.benchmark.builders.python_faq import build_faq, is_question
from xeval.benchmark.registry import build, get_builder
from xeval.benchmark.schema import load_benchmark
from xeval.errors import XevalError
from xeval.training.pairs import validate_pairs


# ---- quality filters ------------------------------------------------------------------------
def test_quality_filters() -> None:
    assert T.in_expected_script("ファイルを開く", "ja")
    assert T.in_expected_script("Python Software Foundation とは何ですか？", "ja")
    assert not T.in_expected_script("open and possibly create a file", "ja")
    assert not T.in_expected_script("открыть файл", "fr")
    assert T.looks_english("The file is opened and the data is read from it.", "de")
    assert not T.looks_english("Die Datei wird geöffnet und die Daten werden gelesen.", "de")
    assert T.looks_english("Open the file and read all of the data from it now", "ru")
    assert T.keep_translation("Open the file", "fr", "open the  file") == (
        False,
        "identical-to-english",
    )
    assert T.keep_translation("open a file", "ja", "x")[1] == "wrong-script"
    assert T.keep_translation("", "fr", "x") == (False, "empty")
    assert T.keep_translation("Ouvrir un fichier", "fr", "Open a file") == (True, "ok")
    text = "First sentence here. Second one is longer.\n\nAnother paragraph."
    assert T.bound_length(text, 100) == text
    assert T.bound_length(text, 50) == "First sentence here. Second one is longer."
    assert T.bound_length(text, 25) == "First sentence here."
    assert T.bound_length("x" * 10, 100, min_chars=20) == ""
    kept, dropped = T.dedupe(["a", "A ", "b"], T.dedup_key)
    assert kept == ["a", "b"] and dropped == 1


# ---- python-faq on a synthetic .po --------------------------------------------------------------
def _po(entries: list[tuple[int, str, str, bool]]) -> str:
    out = ['msgid ""\nmsgstr ""\n"Language: fr\\n"\n"Content-Type: text/plain; charset=UTF-8\\n"\n']
    for line, msgid, msgstr, fuzzy in entries:
        out.append(
            f"#: faq/general.rst:{line}\n"
            + ("#, fuzzy\n" if fuzzy else "")
            + f'msgid "{msgid}"\nmsgstr "{msgstr}"\n'
        )
    return "\n".join(out)


LONG_Q = "But " + "why " * 40 + "would anyone ask?"
FAQ_ENTRIES = [
    (5, "General Python FAQ", "FAQ générale", False),
    (13, "General Information", "Informations générales", False),
    (16, "What is Python?", "Qu'est-ce que Python ?", False),
    (18, "Python is an interpreted, interactive programming language with classes.",
     "Python est un langage de programmation interprété et interactif avec des classes.", False),
    (22, "It runs on many systems.", "", False),
    (40, "Why is it called Python?", "Pourquoi ce nom ?", True),
    (42, "It is named after a comedy group, not after the snake at all.",
     "Le nom vient d'un groupe de comédiens et non pas du serpent.", False),
    (60, "Another Section", "Une autre section", False),
    (63, "How do you remove multiple items from a list",
     "Comment supprimer plusieurs éléments d'une liste", False),
    (65, "Use a list comprehension to keep the items you want in the list.",
     "Utilisez une liste en compréhension pour garder les éléments voulus.", False),
    (68, LONG_Q, "Mais pourquoi donc poser cette question ?", False),
]  # fmt: skip


def _faq_tree(root: Path) -> Path:
    (root / "fr" / "faq").mkdir(parents=True)
    (root / "fr" / "faq" / "general.po").write_text(_po(FAQ_ENTRIES), encoding="utf-8")
    return root


def _faq_tarball(tmp: Path) -> Path:
    src = _faq_tree(tmp / "tree")
    out = tmp / "archives" / "python-docs-fr-abc1234.tar.xz"
    out.parent.mkdir()
    with tarfile.open(out, "w:xz") as tar:
        tar.add(src / "fr", arcname="fr")
    return out


def test_question_rule() -> None:
    assert is_question("What is Python?")
    assert is_question("How do I delete a file? (And other file questions...)")
    assert is_question("How do you remove multiple items from a list")
    assert not is_question(LONG_Q)
    assert not is_question("General Information")
    assert not is_question("How it works.")


def test_python_faq_synthetic(tmp_path: Path) -> None:
    bench = build_faq(_faq_tarball(tmp_path), "fr")
    en = bench.queries.filter(pl.col("lang") == "en")
    assert sorted(en["text"]) == [
        "How do you remove multiple items from a list",
        "What is Python?",
        "Why is it called Python?",
    ]
    fr = bench.queries.filter(pl.col("lang") == "fr")
    assert fr.height == 2  # the fuzzy question is no translation
    docs = dict(bench.corpus.filter(pl.col("lang") == "fr").select("unit_id", "text").iter_rows())
    what = next(u for u in docs if "what-is-python" in u)
    # first paragraph translated, second not: kept without the untranslated paragraph
    assert (
        docs[what]
        == "Python est un langage de programmation interprété et interactif avec des classes."
    )
    remove = next(u for u in docs if "remove-multiple" in u)
    assert "Mais pourquoi" in docs[remove]  # the long '?' paragraph is part of the answer
    assert bench.manifest["filters"]["fr:query-untranslated"] == 1
    en_docs = bench.corpus.filter(pl.col("lang") == "en")
    assert not en_docs["text"].str.contains("Another Section").any()
    # folder and archive give the same benchmark
    folder = build_faq(_faq_tree(tmp_path / "unpacked"), "fr")
    assert folder.fingerprint == bench.fingerprint


def test_python_faq_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(XevalError, match="does not exist"):
        build_faq(tmp_path / "nope", "fr")
    arc = _faq_tarball(tmp_path)
    bad = tmp_path / "trunc" / arc.name
    bad.parent.mkdir()
    bad.write_bytes(arc.read_bytes()[: arc.stat().st_size // 2])
    with pytest.raises(XevalError, match="truncated"):
        build_faq(bad, "fr")
    with pytest.raises(XevalError, match=r"language\(s\) \['ja'\]"):
        build_faq(arc.parent, "fr,ja")
    broken = tmp_path / "broken"
    (broken / "fr" / "faq").mkdir(parents=True)
    (broken / "fr" / "faq" / "general.po").write_text('msgid "x\nmsgstr', encoding="utf-8")
    with pytest.raises(XevalError, match=r"general\.po"):
        build_faq(broken, "fr")


# ---- manpages on a synthetic .deb ---------------------------------------------------------
EN_PAGE = r""".\" comment
.TH FOO 1
.SH NAME
foo, foobar \- frobnicate the widgets of foo
.SH SYNOPSIS
.B foo
.RI [ option ]
.SH DESCRIPTION
.B foo
frobnicates widgets. It reads the configuration and applies every rule to each
widget in turn (see
.BR bar (1)).
.PP
.EX
foo \-x \fIfile\fP
.EE
.PP
The second paragraph explains the options in detail so that the passage has prose.
"""
DE_PAGE = r""".TH FOO 1
.SH BEZEICHNUNG
foo, foobar \- die Widgets von foo verarbeiten
.SH ÜBERSICHT
.B foo
.SH BESCHREIBUNG
.B foo
verarbeitet Widgets. Es liest die Konfiguration und wendet jede Regel der Reihe nach
auf jedes Widget an.
.PP
The second paragraph explains the options in detail so that the passage has prose.
"""


def _ar_member(name: str, data: bytes) -> bytes:
    head = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return head + data + (b"\n" if len(data) % 2 else b"")


def make_deb(path: Path, pages: dict[str, str]) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, roff in pages.items():
            data = gzip.compress(roff.encode())
            info = tarfile.TarInfo(f"./usr/share/man/{name}.gz")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    body = b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n")
    body += _ar_member("data.tar.xz", lzma.compress(buf.getvalue()))
    path.write_bytes(body)
    return path


def _man_source(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    make_deb(
        root / "manpages_1_all.deb", {"man1/foo.1": EN_PAGE, "man1/foo2.1": ".so man1/foo.1\n"}
    )
    make_deb(
        root / "manpages-de_1_all.deb",
        {"de/man1/foo.1": DE_PAGE, "de/man1/onlyde.1": DE_PAGE},
    )
    return root


def test_roff_helpers() -> None:
    assert unescape(r"\fBls\fP \- list \(lqfiles\(rq\e") == "ls - list “files”\\"
    secs = parse_page(EN_PAGE)
    assert [s.heading for s in secs] == ["NAME", "SYNOPSIS", "DESCRIPTION"]
    desc = secs[2].prose()
    assert desc[0].startswith("foo frobnicates widgets.") and "bar(1))." in desc[0]
    assert len(desc) == 2  # the .EX block is code
    assert mask_names("print foo and foobar stats (foo.conf)", ["foo", "foobar"]) == (
        "print ___ and ___ stats (___.conf)"
    )
    with pytest.raises(XevalError, match="not an ar archive"):
        read_ar(b"PK\x03\x04", "x.deb")
    good = b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n")
    with pytest.raises(XevalError, match="truncated"):
        read_ar(good[:-2], "x.deb")


def test_manpages_synthetic(tmp_path: Path) -> None:
    bench = build_manpages(_man_source(tmp_path / "src"), "de")
    q = dict(bench.queries.select("query_id", "text").iter_rows())
    assert q == {
        "en/foo.1": "frobnicate the widgets of ___",
        "de/foo.1": "die Widgets von ___ verarbeiten",
    }
    docs = dict(bench.corpus.select("doc_id", "text").iter_rows())
    assert docs["de/foo.1"].startswith("foo verarbeitet Widgets.")
    assert "second paragraph" not in docs["de/foo.1"]  # still-English paragraph dropped
    assert docs["en/foo.1"].endswith("so that the passage has prose.")
    assert bench.qrels.height == 4
    assert bench.manifest["filters"]["de:paragraph-still-english"] == 1


def test_manpages_bad_sources(tmp_path: Path) -> None:
    src = _man_source(tmp_path / "src")
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    for deb in src.glob("*.deb"):
        raw = deb.read_bytes()
        (trunc / deb.name).write_bytes(raw[: len(raw) - 40])
    with pytest.raises(XevalError, match="truncated"):
        build_manpages(trunc, "de")
    only_de = tmp_path / "only-de"
    only_de.mkdir()
    shutil.copy(src / "manpages-de_1_all.deb", only_de)
    with pytest.raises(XevalError, match="no English man pages"):
        build_manpages(only_de, "de")
    with pytest.raises(XevalError, match="no language"):
        build_manpages(src, "xx")


# ---- real data -----------------------------------------------------------------------------
FAQ_COUNTS = {  # measured on ../shared/data/python-docs: (queries, documents)
    "en": (177, 177),
    "es": (175, 166),
    "fr": (176, 161),
    "ja": (176, 162),
    "ko": (165, 138),
    "pt_BR": (177, 169),
    "zh_CN": (177, 174),  # 175 before one script rule: 2 questions around identifiers kept
}


@pytest.mark.data
def test_python_faq_real(shared_data: Path, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    bench = build("python-faq", shared_data / "python-docs")
    assert time.perf_counter() - t0 < 60
    counts = {k: (v["queries"], v["documents"]) for k, v in bench.counts().items()}
    assert counts == FAQ_COUNTS
    en = bench.queries.filter(pl.col("lang") == "en")["text"]
    assert "What is Python?" in en.to_list()
    assert bench.manifest["repeated_questions"] == 1  # "What is Python?" twice
    out = bench.save(tmp_path / "faq")
    again = load_benchmark(out)
    assert again.fingerprint == bench.fingerprint
    assert "| ja | 176 | 162 |" in (out / "README.md").read_text()
    # a single archive (one language) works, and sizes sub-sample
    one = build("python-faq", next((shared_data / "python-docs").glob("python-docs-fr-*")), size=20)
    assert one.languages == ["en", "fr"]
    assert one.queries.filter(pl.col("lang") == "en").height == 20


@pytest.mark.data
def test_python_faq_truncated_real(shared_data: Path, tmp_path: Path) -> None:
    arc = next((shared_data / "python-docs").glob("python-docs-ja-*.tar.xz"))
    bad = tmp_path / arc.name
    bad.write_bytes(arc.read_bytes()[: arc.stat().st_size // 3])
    with pytest.raises(XevalError, match="truncated"):
        build("python-faq", bad)


MAN_COUNTS = {  # measured on ../shared/data/manpages: (queries, documents)
    "en": (1096, 1096),
    "de": (494, 502),
    "es": (398, 342),
    "fr": (892, 893),
    "ja": (919, 901),  # 917 before one script rule: 2 summaries around identifiers kept
    "pl": (279, 271),
    "ru": (832, 827),
}


@pytest.mark.data
def test_manpages_real_de(shared_data: Path, tmp_path: Path) -> None:
    bench = build("manpages", shared_data / "manpages", languages="de")
    counts = {k: (v["queries"], v["documents"]) for k, v in bench.counts().items()}
    assert counts == {k: MAN_COUNTS[k] for k in ("en", "de")}
    q = dict(bench.queries.select("query_id", "text").iter_rows())
    assert q["en/ldd.1"] == "print shared object dependencies"
    assert "malloc" not in q["en/malloc.3"]
    f = bench.manifest["filters"]
    share = f["de:paragraph-still-english"] / f["de:description-paragraphs"]
    assert 0.005 < share < 0.1
    out = bench.save(tmp_path / "man")
    assert load_benchmark(out).fingerprint == bench.fingerprint
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    deb = next((shared_data / "manpages").glob("manpages_*.deb"))
    (trunc / deb.name).write_bytes(deb.read_bytes()[:200_000])
    with pytest.raises(XevalError, match="truncated"):
        build("manpages", trunc)


@pytest.mark.slow
@pytest.mark.data
def test_manpages_real_all(shared_data: Path) -> None:
    bench = build("manpages", shared_data / "manpages")
    counts = {k: (v["queries"], v["documents"]) for k, v in bench.counts().items()}
    assert counts == MAN_COUNTS
    assert "| ja |" in bench.card


def test_registry_entries() -> None:
    for name in ("python-faq", "manpages"):
        spec = get_builder(name)
        assert spec.domain == "technical"
        assert {o.name for o in spec.options} == {"languages", "max_passage_chars", "size"}


# ---- training pairs ----------------------------------------------------------------------------
def _paragraphs(texts: pl.Series) -> set[str]:
    """Paragraphs up to case and spacing (punctuation kept: a one-word heading such as
    "Operations:" in a package description is no benchmark text)."""
    paras = (p for t in texts.to_list() for p in t.split("\n\n") if p.strip())
    return {" ".join(unicodedata.normalize("NFKC", p).casefold().split()) for p in paras}


@pytest.mark.data
def test_python_docs_pairs_disjoint_from_faq(shared_data: Path) -> None:
    from xeval.benchmark.builders.python_docs import python_docs_pairs

    pairs = validate_pairs(python_docs_pairs(shared_data / "python-docs", languages=["en", "fr"]))
    assert set(pairs["query_lang"]) == {"en", "fr"}
    assert not pairs["unit_id"].str.starts_with("faq/").any()
    per_unit = pairs.group_by("unit_id").len()
    assert set(per_unit["len"].to_list()) <= {1, 4}  # en-en only, or all four en/fr pairs
    assert pairs.filter(pl.col("query_lang") == "fr").height > 1000
    faq = build("python-faq", shared_data / "python-docs", languages="fr")
    bench_text = _paragraphs(faq.corpus["text"]) | _paragraphs(faq.queries["text"])
    train_text = _paragraphs(pairs["passage"]) | _paragraphs(pairs["query"])
    assert not (bench_text & train_text)
    # every heading and passage belongs to one unit only (no "Examples" in 100 sections)
    for col, lang in (("query", "query_lang"), ("passage", "passage_lang")):
        owners = pairs.select("unit_id", lang, col).unique().group_by(lang, col).len()
        assert owners["len"].max() == 1, col


def test_drop_repeated_text() -> None:
    from xeval.benchmark.builders.python_docs import drop_repeated_text

    units = {
        "a": {"en": ("Examples", "One.")},
        "b": {"en": ("examples:", "Two.")},  # the same heading up to case and punctuation
        "c": {"en": ("Locks", "Three."), "fr": ("Verrous", "Trois.")},
        "d": {"en": ("Queues", "Three.")},  # the same passage as c
        "e": {"en": ("Sockets", "Four.")},
    }
    kept, dropped = drop_repeated_text(units)
    assert set(kept) == {"e"} and dropped == 4


@pytest.mark.data
def test_ddtp_pairs_small(shared_data: Path) -> None:
    from xeval.benchmark.builders.ddtp import ddtp_pairs, mask_package

    assert mask_package("Tool to use libfoo", "libfoo-dev") == "Tool to use ___"
    pairs = validate_pairs(ddtp_pairs(shared_data / "ddtp", languages=["en", "sv"], max_units=3000))
    assert pairs["unit_id"].n_unique() == 3000
    assert pairs.filter(pl.col("query_lang") == "en", pl.col("passage_lang") == "en").height == 3000
    row = pairs.filter(pl.col("query_lang") == "sv", pl.col("passage_lang") == "en")
    assert row.height > 0
    units = pairs.filter(pl.col("query_lang") == "sv")["unit_id"].unique()
    assert (
        pairs.filter(pl.col("unit_id").is_in(units.implode()))
        .group_by("unit_id")
        .len()["len"]
        .min()
        == 4
    )


@pytest.mark.slow
@pytest.mark.data
def test_ddtp_pairs_disjoint_from_manpages(shared_data: Path) -> None:
    from xeval.benchmark.builders.ddtp import ddtp_pairs

    pairs = validate_pairs(ddtp_pairs(shared_data / "ddtp"))
    assert pairs["unit_id"].n_unique() > 50_000
    man = build("manpages", shared_data / "manpages")
    bench_text = _paragraphs(man.corpus["text"]) | _paragraphs(man.queries["text"])
    train_text = _paragraphs(pairs["passage"]) | _paragraphs(pairs["query"])
    assert not (bench_text & train_text)


def test_rst_inline() -> None:
    assert (
        rst_inline_to_text("See :func:`os.path.join` and ``x = 1``::")
        == "See os.path.join and x = 1:"
    )
    assert rst_inline_to_text("`the guide <https://x.org>`_ is *good*") == "the guide is good"

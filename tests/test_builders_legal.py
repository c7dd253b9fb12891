"""Legal builders: justice-canada, finlex, cc-legalcode, and their training pairs."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import polars as pl
import pytest

from xeval.benchmark.builders import justice_canada as jc
from xeval.benchmark.builders._legal import read_members
from xeval.benchmark.builders.finlex import finlex_pairs
from xeval.benchmark.builders.justice_canada import justice_canada_pairs
from xeval.benchmark.registry import build
from xeval.benchmark.schema import load_benchmark
from xeval.errors import XevalError
from xeval.text import dedup_key, in_expected_script

JC_ARCHIVE = "justice-canada/laws-lois-xml-d6853c4-acts.tar.xz"
FL_ARCHIVE = "finlex/finlex-data-151c941-asd-2023.tar.xz"
CC = "creativecommons-legalcode-4.0"


# ---- synthetic Justice Canada archive ---------------------------------------------------------
def _section(label: str, note: str | None, body: str, **attrs: str) -> str:
    a = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    mn = f"<MarginalNote>{note}</MarginalNote>" if note else ""
    return f"<Section{a}>{mn}<Label>{label}</Label>{body}</Section>"


def _act(sections: list[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><Statute><Identification/><Body>'
        + "".join(sections)
        + "</Body></Statute>"
    ).encode()


LONG_EN = "The Minister may make regulations respecting the {} of goods imported into Canada."
LONG_FR = "Le ministre peut prendre des règlements concernant {} des marchandises importées."


def _jc_files() -> dict[str, bytes]:
    en_a = [
        _section(
            "1", "Short title", "<Text>This Act may be cited as the Widget Act, a test.</Text>"
        ),
        _section(
            "2",
            "Definitions",
            "<Definition><Text><DefinedTermEn>widget</DefinedTermEn> means a small gadget "
            "of any kind whatsoever (<DefinedTermFr>bidule</DefinedTermFr>)</Text></Definition>",
        ),
        _section("3", "Storage of widgets", f"<Text>{LONG_EN.format('storage')}</Text>"),
        _section("4", None, "<Text><Repealed>[Repealed, 2019, c. 1, s. 2]</Repealed></Text>"),
        _section("5", "Amendment", "<Text>[Amendment]</Text>"),
        _section("6", "Other Act", f"<Text>{LONG_EN.format('sale')}</Text>", type="amending"),
        _section("7", "Labelling of widgets", f"<Text>{LONG_EN.format('labelling')}</Text>"),
    ]
    fr_a = [
        _section("1", "Titre abrégé", "<Text>Loi sur les bidules, une loi de test ici.</Text>"),
        _section(
            "2",
            "Définitions",
            "<Definition><Text><DefinedTermFr>bidule</DefinedTermFr> Petit gadget de toute sorte, "
            "quel qu’il soit. (<DefinedTermEn>widget</DefinedTermEn>)</Text></Definition>",
        ),
        _section("3", "Entreposage des bidules", f"<Text>{LONG_FR.format('l’entreposage')}</Text>"),
        _section("4", None, "<Text><Repealed>[Abrogé, 2019, ch. 1, art. 2]</Repealed></Text>"),
        _section("5", "Modification", "<Text>[Modification]</Text>"),
        _section("6", "Autre loi", f"<Text>{LONG_FR.format('la vente')}</Text>", type="amending"),
        _section("7", "Étiquetage des bidules", f"<Text>{LONG_FR.format('l’étiquetage')}</Text>"),
    ]
    en_b = [
        _section("1", "Short title", "<Text>This Act may be cited as the Gadget Act, too.</Text>"),
        _section("2", "Export of gadgets", f"<Text>{LONG_EN.format('export')}</Text>"),
    ]
    fr_b = [
        _section("1", "Titre abrégé", "<Text>Loi sur les gadgets, elle aussi, pour test.</Text>"),
        _section("2", "Exportation des gadgets", f"<Text>{LONG_FR.format('l’exportation')}</Text>"),
    ]
    return {
        "eng/acts/W-1.xml": _act(en_a),
        "fra/lois/W-1.xml": _act(fr_a),
        "eng/acts/G-2.xml": _act(en_b),
        "fra/lois/G-2.xml": _act(fr_b),
    }


def _write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def jc_archive(tmp_path: Path) -> Path:
    folder = tmp_path / "justice-canada"
    folder.mkdir()
    return _write_tar(folder / "laws-lois-xml-test-acts.tar.xz", _jc_files())


def test_justice_canada_synthetic_rules(jc_archive: Path) -> None:
    bench = build("justice-canada", jc_archive, size=0)
    units = set(bench.corpus["unit_id"].to_list())
    # repealed (4), placeholder (5) and amending (6) sections are out
    assert units == {"G-2/s1", "G-2/s2", "W-1/s1", "W-1/s2", "W-1/s3", "W-1/s7"}
    # "Short title" occurs twice: restricted (no query), its sections stay as distractors
    q = bench.queries.filter(pl.col("lang") == "en")
    assert sorted(q["text"].to_list()) == [
        "Definitions",
        "Export of gadgets",
        "Labelling of widgets",
        "Storage of widgets",
    ]
    # the other language's defined term is removed with its brackets
    d = bench.corpus.filter(pl.col("doc_id") == "en-W-1/s2")["text"][0]
    assert d == "widget means a small gadget of any kind whatsoever"
    assert "widget" not in bench.corpus.filter(pl.col("doc_id") == "fr-W-1/s2")["text"][0]
    # pooled qrels: a query is relevant to its section in both languages
    rel = bench.qrels.filter(pl.col("query_id") == "fr-q-W-1/s3")["doc_id"].sort().to_list()
    assert rel == ["en-W-1/s3", "fr-W-1/s3"]
    assert bench.manifest["heading_policy"] == "restrict"


def test_justice_canada_archive_folder_and_unpacked_agree(jc_archive: Path, tmp_path: Path) -> None:
    tree = tmp_path / "unpacked"
    for name, data in _jc_files().items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    fps = {
        build("justice-canada", src, size=0).fingerprint
        for src in (jc_archive, jc_archive.parent, tree)
    }
    assert len(fps) == 1


def test_justice_canada_size_and_pairs_disjoint(jc_archive: Path) -> None:
    # W-1 gives 4 units and G-2 2: size 3 fits only G-2 whatever the seed order
    bench = build("justice-canada", jc_archive, size=3)
    assert bench.manifest["acts"] == ["G-2"]
    pairs = justice_canada_pairs(jc_archive, size=3)
    assert set(pairs["unit_id"].str.split("/").list.first()) == {"W-1"}
    # unique headings only, every ordered language pair
    assert pairs.height == 4 * 3
    assert sorted(pairs.filter(pl.col("query_lang") == "en")["query"].unique()) == [
        "Definitions",
        "Labelling of widgets",
        "Storage of widgets",
    ]
    shared = set(pairs["passage"]) & set(bench.corpus["text"])
    assert not shared


def test_truncated_and_missing_sources(jc_archive: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut" / "laws-lois-xml-x.tar.xz"
    cut.parent.mkdir()
    cut.write_bytes(jc_archive.read_bytes()[:300])
    with pytest.raises(XevalError, match="truncated or corrupt"):
        build("justice-canada", cut)
    with pytest.raises(XevalError, match="does not exist"):
        build("justice-canada", tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(XevalError, match="no Justice Canada XML files"):
        build("justice-canada", empty)
    with pytest.raises(XevalError, match="no Finlex statute XML"):
        build("finlex", empty)
    with pytest.raises(XevalError, match="missing"):
        build("cc-legalcode", empty)


def test_helpers() -> None:
    assert dedup_key("Définitions — Loi!") == "définitionsloi"
    assert in_expected_script("Le ministre peut", "fr")
    assert not in_expected_script("Министр может", "fr")
    assert in_expected_script(
        "指合理使用(Fair Dealing and Fair Use)和/或其他例外或限制。", "zh-Hans"
    )
    assert not in_expected_script("This provision was not translated at all 中", "zh-Hans")
    assert in_expected_script("「翻案物」とは", "ja")


# ---- real data -----------------------------------------------------------------------------
def test_truncated_real_archives(shared_data: Path, tmp_path: Path) -> None:
    for rel, name in ((JC_ARCHIVE, "justice-canada"), (FL_ARCHIVE, "finlex")):
        cut = tmp_path / Path(rel).name
        with open(shared_data / rel, "rb") as f:
            cut.write_bytes(f.read(2_000_000))
        with pytest.raises(XevalError, match="truncated or corrupt") as exc:
            build(name, cut)
        assert str(cut) in str(exc.value)


def test_justice_canada_real_default(shared_data: Path, tmp_path: Path) -> None:
    bench = build("justice-canada", shared_data / "justice-canada")
    c = bench.counts()
    assert c["en"] == {"queries": 2351, "documents": 4368, "qrels": 4702}
    assert c["fr"] == {"queries": 2335, "documents": 4368, "qrels": 4670}
    assert bench.manifest["n_acts"] == 107
    assert bench.corpus.height <= 2 * jc.DEFAULT_SIZE
    # restricted headings: every query text is unique in its language
    assert bench.queries.group_by("lang", "text").len()["len"].max() == 1
    assert not bench.corpus["text"].str.contains(r"^\[Repealed").any()
    assert bench.corpus.filter(pl.col("text").is_duplicated()).height == 0
    loaded = load_benchmark(bench.save(tmp_path / "jc"))
    assert loaded.fingerprint == bench.fingerprint
    assert "restricted" in loaded.card


def test_finlex_real(shared_data: Path, tmp_path: Path) -> None:
    bench = build("finlex", shared_data / "finlex")
    c = bench.counts()
    assert c["fi"] == {"queries": 3236, "documents": 4431, "qrels": 6472}
    assert c["sv"] == {"queries": 3236, "documents": 4431, "qrels": 6472}
    statutes = bench.manifest["statutes"]
    assert len(statutes) == 357 and "731/1999" in statutes
    assert bench.manifest["n_statutes_in_source"] == 1314
    assert (
        not bench.queries.filter(pl.col("lang") == "fi")["text"].str.contains("^Voimaantulo$").any()
    )
    loaded = load_benchmark(bench.save(tmp_path / "fl"))
    assert loaded.fingerprint == bench.fingerprint


def test_cc_legalcode_real(shared_data: Path, tmp_path: Path) -> None:
    bench = build("cc-legalcode", shared_data / CC)
    c = bench.counts()
    assert len(c) == 31
    assert c["en"]["queries"] == 18 and c["en"]["documents"] == 28
    assert c["ja"]["queries"] == 18 and c["de"]["queries"] == 17
    assert bench.manifest["n_units"] == 28
    # deduplicated across licences: no English body twice
    en = bench.corpus.filter(pl.col("lang") == "en")
    assert en["text"].n_unique() == en.height
    # "Attribution" differs between licences: all its variants are relevant
    q = bench.queries.filter((pl.col("lang") == "en") & (pl.col("text") == "Attribution"))
    rel = bench.qrels.filter(pl.col("query_id") == q["query_id"][0])["doc_id"]
    assert {d.split("-", 1)[1] for d in rel if d.startswith("en-")} == {
        "by/s3a",
        "by-sa/s3a",
        "by-nd/s3a",
    }
    loaded = load_benchmark(bench.save(tmp_path / "cc"))
    assert loaded.fingerprint == bench.fingerprint


def test_cc_legalcode_missing_file(shared_data: Path, tmp_path: Path) -> None:
    src = tmp_path / CC
    shutil.copytree(shared_data / CC, src)
    (src / "by-sa_4.0.html").unlink()
    with pytest.raises(XevalError, match=r"by-sa_4\.0\.html"):
        build("cc-legalcode", src)


@pytest.mark.slow
def test_justice_canada_pairs_real(shared_data: Path) -> None:
    src = shared_data / "justice-canada"
    bench = build("justice-canada", src)
    pairs = justice_canada_pairs(src)
    assert pairs["unit_id"].n_unique() == 11426 and pairs.height == 4 * 11426
    acts = set(pairs["unit_id"].str.split("/").list.first())
    assert not acts & set(bench.manifest["acts"])
    bench_text = {dedup_key(t) for t in bench.corpus["text"]} | {
        dedup_key(t) for t in bench.queries["text"]
    }
    assert not {dedup_key(t) for t in pairs["passage"]} & bench_text
    assert not {dedup_key(t) for t in pairs["query"]} & bench_text


@pytest.mark.slow
def test_finlex_pairs_real(shared_data: Path) -> None:
    src = shared_data / "finlex"
    bench = build("finlex", src)
    pairs = finlex_pairs(src)
    assert pairs["unit_id"].n_unique() == 2017 and pairs.height == 4 * 2017
    statutes = {u.rsplit("/", 1)[0] for u in pairs["unit_id"]}
    assert not statutes & set(bench.manifest["statutes"])
    bench_text = {dedup_key(t) for t in bench.corpus["text"]} | {
        dedup_key(t) for t in bench.queries["text"]
    }
    assert not {dedup_key(t) for t in pairs["passage"]} & bench_text
    assert not {dedup_key(t) for t in pairs["query"]} & bench_text
    small = finlex_pairs(src, max_units=10)
    assert small.height == 40 and set(small["unit_id"]) <= set(pairs["unit_id"])


def test_read_members_names_member(tmp_path: Path) -> None:
    arc = _write_tar(tmp_path / "a.tar.xz", {"x/eng/acts/A.xml": b"<a/>"})
    got = read_members(arc, "*.tar.xz", lambda n: n.endswith(".xml"), what="test")
    assert got == {"x/eng/acts/A.xml": b"<a/>"}

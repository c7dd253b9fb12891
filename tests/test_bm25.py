"""BM25: per-language analysis, scores against bm25s, exact ranks, the run directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from xeval.cli import main
from xeval.errors import XevalError
from xeval.retrieval.lexical import BM25Config, BM25Index, make_analyzer, parse_bm25, run_bm25
from xeval.retrieval.lexical.bm25 import top_and_ranks


# ---- analysis --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lang", "text", "stem"),
    [
        ("en", "The dogs were running", ["dog", "were", "run"]),
        ("de", "Die Häuser wurden gebaut", ["haus", "wurd", "gebaut"]),
        ("fr", "Les maisons blanches", ["maison", "blanch"]),
        ("fi", "taloissa", ["talo"]),
        ("pt_BR", "as casas", ["cas"]),
    ],
)
def test_stemming_where_snowball_has_the_language(lang: str, text: str, stem: list[str]) -> None:
    a = make_analyzer(lang)
    assert a.scheme == "snowball" and a.stemmer
    assert a(text) == stem


@pytest.mark.parametrize("lang", ["vi", "fy", "lv", "mi", "sl", "uk"])
def test_no_stemming_where_no_stemmer_exists(lang: str) -> None:
    a = make_analyzer(lang)
    assert a.scheme == "words" and a.stemmer is None
    assert a("Running Houses 42") == ["running", "houses", "42"]


def test_stopwords_can_be_switched_off() -> None:
    assert make_analyzer("en")("the dog") == ["dog"]
    assert make_analyzer("en", stopwords=False)("the dog") == ["the", "dog"]


def test_indic_vowel_signs_do_not_split_words() -> None:
    # Python's re splits Devanagari words at every vowel sign; the analyzer must not
    assert len(make_analyzer("hi", stopwords=False)("राजधानी दिल्ली")) == 2


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("zh-Hans", "北京是中华人民共和国的首都"),
        ("ja", "東京は日本の首都です"),
        ("ko", "서울은 대한민국의 수도이다"),
        ("th", "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย"),
    ],
)
def test_cjk_and_thai_are_cut_into_subword_pieces(tiny_model: Path, lang: str, text: str) -> None:
    a = make_analyzer(lang, tokenizer=tiny_model / "tokenizer.json")
    terms = a(text)
    assert a.scheme == "subword" and a.stemmer is None
    assert len(terms) >= 3, terms  # one unsplit run of characters would be one term
    assert all(t and "\u2581" not in t and t in text for t in terms)


def test_missing_subword_tokenizer_falls_back_to_bigrams(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="xeval models install"):
        a = make_analyzer("ja", tokenizer=tmp_path / "absent.json")
    assert a.scheme == "bigram"
    assert a("東京都") == ["東京", "京都"]


# ---- scoring ---------------------------------------------------------------------------------
DOCS = {
    "d1": "the cat sat on the mat",
    "d2": "a dog and a cat",
    "d3": "dogs chase cats in the garden garden",
    "d4": "nothing relevant here",
    "d5": "a dog and a cat",  # same text as d2: a tie, broken by doc_id descending
}
QUERIES = [["cat"], ["dog", "cat"], ["garden", "garden"], ["zebra"]]


def test_scores_and_order_match_bm25s() -> None:
    import bm25s

    ids = list(DOCS)
    tokens = [t.split() for t in DOCS.values()]
    cfg = BM25Config(k1=1.2, b=0.75)
    index = BM25Index.build(ids, tokens, cfg)
    ours = index.scores(QUERIES)
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index(tokens, show_progress=False)
    col = {d: i for i, d in enumerate(index.doc_ids)}
    for r, q in enumerate(QUERIES):
        expected = ref.get_scores(q)
        got = np.array([ours[r, col[d]] for d in ids])
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
        order = sorted(ids, key=lambda d: (-expected[ids.index(d)], [-ord(c) for c in d]))
        idx, _, _ = top_and_ranks(ours[r : r + 1], len(ids), np.array([], int), np.array([], int))
        top = list(index.doc_ids[idx[0]])
        assert [d for d in top if expected[ids.index(d)] > 0] == [
            d for d in order if expected[ids.index(d)] > 0
        ]
    assert list(index.doc_ids) == sorted(ids, reverse=True)
    assert ours[1, col["d5"]] == ours[1, col["d2"]] > 0


def test_exact_ranks_equal_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(7, 40)).astype(np.float64)  # many ties
    rows = np.repeat(np.arange(7), 3)
    cols = rng.integers(0, 40, size=len(rows))
    idx, top, ranks = top_and_ranks(scores, 10, rows, cols)
    for r in range(7):
        full = np.lexsort((np.arange(40), -scores[r]))  # score desc, then column (tie order)
        assert list(idx[r]) == list(full[:10])
        np.testing.assert_array_equal(top[r], scores[r, full[:10]])
        for p in np.flatnonzero(rows == r):
            assert ranks[p] == int(np.flatnonzero(full == cols[p])[0]) + 1


# ---- the run directory -----------------------------------------------------------------------
def test_run_bm25_writes_a_run_that_evaluates(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    from xeval.evaluation import evaluate_run

    res = run_bm25(tiny_benchmark_dir, tmp_path / "run", BM25Config(k=5, progress=False))
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["model"]["name"] == "bm25" and info["exact_ranks"] is True
    assert info["bm25"]["k1"] == 0.9 and info["bm25"]["library"]["bm25s"]
    assert info["analyzers"]["de"]["stemmer"] == "snowball:german"
    assert any(s.startswith("cross-") for s in res.settings)
    for s in res.settings:
        run = pl.read_parquet(tmp_path / "run" / "runs" / f"{s}.parquet")
        ranks = pl.read_parquet(tmp_path / "run" / "ranks" / f"{s}.parquet")
        assert run.group_by("query_id").len()["len"].max() == 5
        both = ranks.join(run, on=["query_id", "doc_id"], suffix="_run")
        assert (both["rank"] == both["rank_run"]).all()  # exact ranks agree with the run
    result = evaluate_run(tmp_path / "run")
    assert result.value("mono", "MRR@10") > 0.5
    assert result.value("multi", "LB") is not None


def test_cli_run_bm25(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-run"
    args = ["run", "--model", "bm25:k1=1.2,b=0.75", "-b", str(tiny_benchmark_dir), "-o", str(out)]
    r = CliRunner().invoke(main, [*args, "-q", "--kind", "mono"])
    assert r.exit_code == 0, r.output
    assert "BM25, 3 settings" in r.output
    info = json.loads((out / "run.json").read_text())
    assert info["bm25"]["b"] == 0.75 and info["model"]["label"] == "bm25(k1=1.2,b=0.75)"
    bad = CliRunner().invoke(main, ["run", "--model", "bm25:k2=1", "-b", str(tiny_benchmark_dir),
                                    "-o", str(tmp_path / "x")])  # fmt: skip
    assert bad.exit_code == 2 and "bad BM25 parameter" in bad.output


@pytest.mark.parametrize("spec", ["bm25:k1", "bm25:k1=x", "bm25:method=okapi", "bm25:b=2"])
def test_bad_bm25_specs(spec: str) -> None:
    with pytest.raises(XevalError):
        parse_bm25(spec)


def test_library_run_benchmark_dispatches_bm25(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    """``run_benchmark("bm25", ...)`` (what the study's baseline cells call) runs BM25."""
    from xeval.retrieval import run_benchmark

    run_benchmark("bm25", tiny_benchmark_dir, tmp_path / "run", k=5, progress=False, label="lex")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["exact_ranks"] is True and info["label"] == "lex"
    assert sorted(p.name for p in (tmp_path / "run" / "ranks").iterdir())

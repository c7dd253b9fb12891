"""Property-based fuzzing of the user-format readers (parallel JSONL, BEIR).

Whatever the input, a build either yields a valid benchmark or raises XevalError; never
another exception, and never an output directory left behind on failure.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xeval.benchmark.registry import build_benchmark
from xeval.benchmark.schema import load_benchmark
from xeval.errors import XevalError

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# short texts that include line and paragraph separators, tabs, quotes and odd code points
ALPHABET = [*"ab éж中 \t\"'\\/-_.", "\u2028", "\u0085", "\x00", "\r"]
TEXT = st.text(alphabet=st.sampled_from(ALPHABET), max_size=8)
GOOD_TEXT = TEXT.filter(lambda t: t.strip())
GOOD_LANG = st.sampled_from(["en", "de", " FR", "pt-BR", "zh_hans"])
BAD_LANG = st.sampled_from(["", "../x", "e n", "a-b-c-d-e-f-g-h-i-j-k-l"]) | TEXT
SCALAR = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=True) | TEXT
JSON_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


def _mostly(good: st.SearchStrategy, bad: st.SearchStrategy = JSON_VALUE) -> st.SearchStrategy:
    """``good`` 15 times in 16, else ``bad`` (a wrong type, an odd or missing value)."""
    return st.sampled_from(range(16)).flatmap(lambda k: bad if k == 7 else good)


def _line(record: st.SearchStrategy[dict]) -> st.SearchStrategy[str]:
    """A JSONL line: mostly a record, sometimes another JSON value or no JSON at all."""
    as_json = record.map(lambda r: json.dumps(r, ensure_ascii=False))
    return _mostly(as_json, JSON_VALUE.map(json.dumps) | TEXT)


UNIT_RECORD = st.fixed_dictionaries(
    {
        "unit_id": _mostly(st.sampled_from(["u1", "u2", "u3"]) | st.integers(0, 2)),
        "lang": _mostly(GOOD_LANG, BAD_LANG),
        "query": _mostly(GOOD_TEXT),
        "passage": _mostly(GOOD_TEXT),
    }
)


def _check(builder: str, source: Path, out: Path) -> None:
    try:
        path = build_benchmark(builder, out, source)
    except XevalError:
        assert not out.exists(), "output directory left after a failed build"
        assert not [p for p in out.parent.iterdir() if p.name.startswith((".out", "out."))]
        return
    bench = load_benchmark(path)
    assert bench.queries.height > 0 and bench.corpus.height > 0 and bench.qrels.height > 0


@FUZZ
@given(lines=st.lists(_line(UNIT_RECORD), max_size=8))
def test_parallel_jsonl_fuzz(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "units.jsonl"
        src.write_text("\n".join(lines), encoding="utf-8")
        _check("parallel-jsonl", src, Path(tmp) / "out")


QREL_LINE = (
    st.tuples(
        st.sampled_from(["q0", "q1", "ghost"]) | TEXT,
        st.sampled_from(["d0", "d1", "ghost"]) | TEXT,
        st.sampled_from(["1", "0", "2", "0.5", "1.9", "-1", "inf", "x", ""]),
    ).map("\t".join)
    | TEXT
)


def _beir_records(ids: list[str]) -> st.SearchStrategy[list[str]]:
    rec = st.fixed_dictionaries(
        {
            "_id": _mostly(st.sampled_from(ids)),
            "text": _mostly(GOOD_TEXT),
            "lang": _mostly(GOOD_LANG, BAD_LANG),
        },
        optional={"title": TEXT, "unit_id": TEXT},
    )
    return st.lists(_line(rec), min_size=1, max_size=3)


@FUZZ
@given(
    corpus=_beir_records(["d0", "d1", "d2", "d3", "d4"]),
    queries=_beir_records(["q0", "q1", "q2", "q3", "q4"]),
    qrels=st.lists(QREL_LINE, max_size=5),
    header=st.booleans(),
)
def test_beir_fuzz(corpus: list[str], queries: list[str], qrels: list[str], header: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "beir"
        (src / "qrels").mkdir(parents=True)
        (src / "corpus.jsonl").write_text("\n".join(corpus), encoding="utf-8")
        (src / "queries.jsonl").write_text("\n".join(queries), encoding="utf-8")
        head = ["query-id\tcorpus-id\tscore"] if header else []
        (src / "qrels" / "test.tsv").write_text("\n".join(head + qrels), encoding="utf-8")
        _check("beir", src, Path(tmp) / "out")


@FUZZ
@given(
    corpus=st.lists(st.sampled_from(["d0", "d1", "d2"]), min_size=1, max_size=3, unique=True),
    langs=st.lists(st.sampled_from(["en", "de", "FR", "pt-BR"]), min_size=3, max_size=3),
    scores=st.lists(st.sampled_from(["1", "2", "0"]), min_size=1, max_size=3),
)
def test_beir_fuzz_valid_shapes_build(corpus: list[str], langs: list[str], scores) -> None:
    """Well-formed folders build (unless no qrel is positive) and keep their qrels."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "beir"
        (src / "qrels").mkdir(parents=True)
        docs = [
            {"_id": d, "text": f"text {d}", "lang": lg}
            for d, lg in zip(corpus, langs, strict=False)
        ]
        (src / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
        (src / "queries.jsonl").write_text(json.dumps({"_id": "q0", "text": "q", "lang": "en"}))
        rows = [f"q0\t{d}\t{s}" for d, s in zip(corpus, scores, strict=False)]
        (src / "qrels" / "test.tsv").write_text("\n".join(rows))
        positive = sum(int(s) > 0 for s in scores[: len(corpus)])
        try:
            bench = load_benchmark(build_benchmark("beir", Path(tmp) / "out", src))
        except XevalError as exc:
            assert positive == 0, exc
            return
        assert bench.qrels.height == positive

"""XQuAD-R and MLQA-R (LaReQA) from their published JSON.

Each language file is SQuAD v1.1 plus per-paragraph ``sentences`` and
``sentence_breaks``. Every sentence of every paragraph is a candidate (no deduplication:
LaReQA's pooled corpora count 13,014 and 20,534 candidates). A question's relevant
sentence is the one whose break span holds its first answer's ``answer_start``; across
languages, relevance is keyed by the question ``id``, so in the pooled qrels a question
has one relevant sentence per language it exists in.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from xeval.benchmark.registry import BuilderOption, register
from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError
from xeval.sources import RemoteFile, SourceSpec, verify_pinned
from xeval.training.pairs import benchmark_pairs, register_pairs, sample_units

_UPSTREAM = "https://raw.githubusercontent.com/google-research-datasets/lareqa"
XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
MLQA_LANGS = ("ar", "de", "en", "es", "hi", "vi", "zh")
_SHA = {
    "xquad-r": {
        "ar": "c52922d3b8ac1ae03ed5ac38647ad59870dca3dda2beefe18ecdc30729acb69d",
        "de": "16fb0f4bf4916154b585a20c24c66074591c9718a1affe764ff4697572328949",
        "el": "163fd43ee785a30eb534ae2061e9eaa766a7ee4e8ffce5e4b422480c150f64b6",
        "en": "7b0954f39297c27a31fef610f0883337dd2907fa8699151dc922afdd0fa12ffe",
        "es": "f8e836b2d91009c4363e04315f7ede363eedbbb49c67dda60de6c4aa782f58de",
        "hi": "ea45ba8ae4513d1533b222bebdc02a90bc319c055d3aeea68584a053d2e92872",
        "ru": "7f4dff853538b9a5fcc28c070b8bb983a5c5d190ac747b8e005a1ada9cab18f1",
        "th": "c3a041864c3a9fb0b4dd91cfdf99cf36b411b3e704c58a303c97bc6dc786cfe4",
        "tr": "f3e8c13002bbce154a4578f535f7533cb70f3da08840e6b62735935baec7bd94",
        "vi": "e35926bf5cc6fc6ecbdfca49467aabeb454f08d152d7818143a906bd31dde995",
        "zh": "80c2cde7b9c2fb134c303cbb52f2ba396ead9eb0014aec43993543d2ba9e93ed",
    },
    "mlqa-r": {
        "ar": "2132fbc03208535c0fe01f2e2c5121d06f9c2aa799af93b0a719dbc105bdf137",
        "de": "ce9454dc5aa6f2d85c23cd6e49cb367fbb7c4c6e62d7f71e355c6b5dae4d0886",
        "en": "fedd9a5cc0848dda80caf84aa36f482adaae230526a3f6e9e86926a93ef3b1e4",
        "es": "70ecba276b8c96a692b120693a595d076ce94ad21d4b28311538a9fcbfe0f9d7",
        "hi": "4dd0fb3c06f737a5481d705bc1dcac7876712a5815c9265908fbb3a0696cb654",
        "vi": "9d3baff6ba03e6793b25594217265ea59a136b9733833dca8a9582a84a78ff85",
        "zh": "57f01d2fff50cf3392805635b01445339f225ad5bf28ba8443b12f8dbd1e69dc",
    },
}
_COMMIT = {"xquad-r": "9bc8c7f", "mlqa-r": "354d67d"}
_DOC_SCHEMA = {"doc_id": pl.String, "lang": pl.String, "text": pl.String, "title": pl.String}
_QUESTION_SCHEMA = {
    "query_id": pl.String,
    "lang": pl.String,
    "text": pl.String,
    "unit_id": pl.String,
    "doc_id": pl.String,
}


def _spec(name: str, langs: tuple[str, ...], licence: str) -> SourceSpec:
    return SourceSpec(
        relpath=f"lareqa/{name}",
        licence=licence,
        upstream=f"google-research-datasets/lareqa@{_COMMIT[name]} {name}/",
        files=tuple(
            RemoteFile(
                f"{lang}.json", f"{_UPSTREAM}/{_COMMIT[name]}/{name}/{lang}.json", _SHA[name][lang]
            )
            for lang in langs
        ),
    )


def _load_json(path: Path) -> object:
    if path.is_dir():
        raise XevalError("expected a language file, found a folder", file=path)
    try:
        raw = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise XevalError("missing language file", file=path) from None
    except UnicodeDecodeError as exc:
        raise XevalError(f"not UTF-8 ({exc})", file=path) from None
    except OSError as exc:
        raise XevalError(f"cannot read ({exc.strerror or exc})", file=path) from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise XevalError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", file=path
        ) from None
    except RecursionError:
        raise XevalError("malformed JSON: nested too deeply", file=path) from None


def _typed(value: object, kind: type | tuple[type, ...], what: str, path: Path, where: str):
    """``value`` when it is a ``kind`` (never a bool), else an error naming the record."""
    if isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise XevalError(
            f"{what} must be {names}, got {type(value).__name__}", file=path, record=where
        )
    return value


def _breaks(para: dict, path: Path, where: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The paragraph's sentences and their ``[begin, end)`` character spans."""
    for key in ("sentences", "sentence_breaks", "qas"):
        if key not in para:
            raise XevalError(f"missing field '{key}'", file=path, record=where)
    sents = _typed(para["sentences"], list, "'sentences'", path, where)
    breaks = _typed(para["sentence_breaks"], list, "'sentence_breaks'", path, where)
    if len(sents) != len(breaks):
        raise XevalError(
            f"{len(sents)} sentences but {len(breaks)} sentence_breaks", file=path, record=where
        )
    spans = []
    for si, (sent, span) in enumerate(zip(sents, breaks, strict=True)):
        at = f"{where}.sentences[{si}]"
        _typed(sent, str, "a sentence", path, at)
        if not (isinstance(span, list) and len(span) == 2 and all(_is_int(b) for b in span)):
            raise XevalError(f"sentence break {span!r} is not [begin, end]", file=path, record=at)
        spans.append((span[0], span[1]))
    return sents, spans


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _question(qa: object, spans: list[tuple[int, int]], path: Path, where: str):
    """``(id, text, index of the answer sentence)`` of one question record."""
    qa = _typed(qa, dict, "a question", path, where)
    qwhere = f"{where} question {qa.get('id', '?')!r}"
    for key in ("id", "question", "answers"):
        if key not in qa:
            raise XevalError(f"missing field '{key}'", file=path, record=qwhere)
    qid = _typed(qa["id"], str, "'id'", path, qwhere)
    text = _typed(qa["question"], str, "'question'", path, qwhere)
    answers = _typed(qa["answers"], list, "'answers'", path, qwhere)
    if not answers:
        raise XevalError("no answer", file=path, record=qwhere)
    first = _typed(answers[0], dict, "an answer", path, qwhere)
    start = _typed(first.get("answer_start"), int, "'answer_start'", path, qwhere)
    hit = [i for i, (b, e) in enumerate(spans) if b <= start < e]
    if not hit:
        raise XevalError(
            f"answer_start {start} lies outside every sentence break", file=path, record=qwhere
        )
    return qid, text, hit[0]


def read_lareqa_file(path: Path, lang: str) -> tuple[list[dict], list[dict]]:
    """Parse one LaReQA language file into candidate-sentence and question records."""
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise XevalError("no top-level 'data' list (not SQuAD/LaReQA JSON)", file=path)
    docs: list[dict] = []
    questions: list[dict] = []
    for ai, article in enumerate(data["data"]):
        article = _typed(article, dict, "an article", path, f"data[{ai}]")
        paras = _typed(article.get("paragraphs", []), list, "'paragraphs'", path, f"data[{ai}]")
        title = article.get("title")
        for pi, para in enumerate(paras):
            where = f"data[{ai}].paragraphs[{pi}]"
            sents, spans = _breaks(_typed(para, dict, "a paragraph", path, where), path, where)
            ids = [f"{lang}-a{ai}-p{pi}-s{si}" for si in range(len(sents))]
            docs += [
                {"doc_id": d, "lang": lang, "text": s, "title": title}
                for d, s in zip(ids, sents, strict=True)
            ]
            qas = _typed(para["qas"], list, "'qas'", path, where)
            for qa in qas:
                qid, text, si = _question(qa, spans, path, where)
                questions.append(
                    {
                        "query_id": f"{lang}-{qid}",
                        "lang": lang,
                        "text": text,
                        "unit_id": qid,
                        "doc_id": ids[si],
                    }
                )
    return docs, questions


def build_lareqa(source: Path, langs: tuple[str, ...], name: str) -> Benchmark:
    """Read every language file of a LaReQA dataset and pool the qrels by question id."""
    docs: list[dict] = []
    questions: list[dict] = []
    for lang in langs:
        d, q = read_lareqa_file(source / f"{lang}.json", lang)
        docs += d
        questions += q
        seen: set[str] = set()
        for rec in q:
            if rec["query_id"] in seen:
                raise XevalError(
                    f"duplicate question id {rec['unit_id']!r}", file=source / f"{lang}.json"
                )
            seen.add(rec["query_id"])
    corpus = pl.DataFrame(docs, schema=_DOC_SCHEMA)
    qtab = pl.DataFrame(questions, schema=_QUESTION_SCHEMA)
    answers = qtab.select("unit_id", "doc_id")
    qrels = (
        qtab.select("query_id", "unit_id")
        .join(answers, on="unit_id")
        .select("query_id", "doc_id", pl.lit(1, pl.Int32).alias("relevance"))
    )
    queries = qtab.select("query_id", "lang", "text", "unit_id")
    corpus = corpus.with_columns(unit_id=pl.lit(None, pl.String))
    return Benchmark(name=name, corpus=corpus, queries=queries, qrels=qrels, card=_card(name))


def _card(name: str) -> str:
    ds = "XQuAD" if name == "xquad-r" else "MLQA"
    return f"""# {name} (LaReQA)

Built by `xeval build-benchmark {name}` from the LaReQA release of {ds} with sentence breaks.

- **Queries**: every question, in every language it exists in (query id `LANG-QUESTIONID`).
- **Corpus**: every sentence of every paragraph, per language, not deduplicated (the
  pooled counts of the LaReQA paper); doc id `LANG-aARTICLE-pPARAGRAPH-sSENTENCE`.
- **Relevance**: the sentence whose `sentence_breaks` span holds the first answer's
  `answer_start`; across languages keyed by question id, so in the multilingual setting a
  question has one relevant sentence per language it exists in.
- **Caveats**: a few sentences occur twice in one language (identical text, different
  paragraph); only the one in the question's paragraph is relevant, as in LaReQA.
  Wikipedia-domain QA: lexical overlap between question and answer sentence is common.
"""


SPECS = {
    "xquad-r": _spec("xquad-r", XQUAD_LANGS, "CC BY-SA 4.0"),
    "mlqa-r": _spec("mlqa-r", MLQA_LANGS, "CC BY-NC 4.0"),
}
LANGS = {"xquad-r": XQUAD_LANGS, "mlqa-r": MLQA_LANGS}
ACCEPT_MODIFIED = BuilderOption(
    "accept_modified_source",
    bool,
    False,
    "Build from local files whose SHA-256 differs from the published one (recorded in the "
    "manifest). Default: such a copy is refused.",
)


def build_pinned(source: Path, name: str, accept_modified_source: bool) -> Benchmark:
    """Build benchmark ``name`` from ``source`` and check its files against the pinned
    checksums (after parsing, so that a broken file is reported with its record)."""
    bench = build_lareqa(source, LANGS[name], name)
    check = verify_pinned(SPECS[name], source, accept_modified=accept_modified_source)
    bench.manifest["source_check"] = check.manifest()
    return bench


@register(
    "xquad-r",
    domain="general",
    description="XQuAD-R: 1,190 questions x 11 languages against 13,014 pooled Wikipedia sentences",
    licence="CC BY-SA 4.0",
    source=SPECS["xquad-r"],
    source_help="folder with ar.json ... zh.json (LaReQA xquad-r/)",
    options=[ACCEPT_MODIFIED],
)
def build_xquad_r(source: Path, accept_modified_source: bool = False) -> Benchmark:
    return build_pinned(source, "xquad-r", accept_modified_source)


@register(
    "mlqa-r",
    domain="general",
    description="MLQA-R: 4,199 questions in 7 languages against 20,534 pooled Wikipedia sentences",
    licence="CC BY-NC 4.0",
    source=SPECS["mlqa-r"],
    source_help="folder with ar.json ... zh.json (LaReQA mlqa-r/)",
    options=[ACCEPT_MODIFIED],
)
def build_mlqa_r(source: Path, accept_modified_source: bool = False) -> Benchmark:
    return build_pinned(source, "mlqa-r", accept_modified_source)


@register_pairs(
    "lareqa-xquad-r",
    description="XQuAD-R question -> its answer sentence, every language pair",
    source=SPECS["xquad-r"],
    source_help="folder with the LaReQA xquad-r language files",
)
def xquad_r_pairs(source: Path, max_units: int | None) -> pl.DataFrame:
    return lareqa_pairs(source, "xquad-r", max_units)


@register_pairs(
    "lareqa-mlqa-r",
    description="MLQA-R question -> its answer sentence, every language pair",
    source=SPECS["mlqa-r"],
    source_help="folder with the LaReQA mlqa-r language files",
)
def mlqa_r_pairs(source: Path, max_units: int | None) -> pl.DataFrame:
    return lareqa_pairs(source, "mlqa-r", max_units)


def lareqa_pairs(source: Path, name: str, max_units: int | None) -> pl.DataFrame:
    """Question -> answer sentence pairs of the (checksum-checked) benchmark ``name``."""
    df = benchmark_pairs(build_pinned(source, name, False), source=f"lareqa-{name}")
    return sample_units(df, max_units) if max_units else df

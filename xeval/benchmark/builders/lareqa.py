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

from xeval.benchmark.registry import register
from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError
from xeval.sources import RemoteFile, SourceSpec

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


def read_lareqa_file(path: Path, lang: str) -> tuple[list[dict], list[dict]]:
    """Parse one LaReQA language file into candidate-sentence and question records."""
    try:
        raw = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise XevalError("missing language file", file=path) from None
    except UnicodeDecodeError as exc:
        raise XevalError(f"not UTF-8 ({exc})", file=path) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise XevalError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", file=path
        ) from None
    docs: list[dict] = []
    questions: list[dict] = []
    try:
        articles = data["data"]
    except (KeyError, TypeError):
        raise XevalError("no top-level 'data' list (not SQuAD/LaReQA JSON)", file=path) from None
    for ai, article in enumerate(articles):
        for pi, para in enumerate(article.get("paragraphs", [])):
            where = f"data[{ai}].paragraphs[{pi}]"
            for key in ("sentences", "sentence_breaks", "qas"):
                if key not in para:
                    raise XevalError(f"missing field '{key}'", file=path, record=where)
            sents, breaks = para["sentences"], para["sentence_breaks"]
            if len(sents) != len(breaks):
                raise XevalError(
                    f"{len(sents)} sentences but {len(breaks)} sentence_breaks",
                    file=path,
                    record=where,
                )
            ids = [f"{lang}-a{ai}-p{pi}-s{si}" for si in range(len(sents))]
            docs += [
                {"doc_id": d, "lang": lang, "text": s, "title": article.get("title")}
                for d, s in zip(ids, sents, strict=False)
            ]
            for qa in para["qas"]:
                qwhere = f"{where} question {qa.get('id', '?')!r}"
                try:
                    qid, text, start = (
                        qa["id"],
                        qa["question"],
                        int(qa["answers"][0]["answer_start"]),
                    )
                except (KeyError, IndexError, TypeError, ValueError) as exc:
                    raise XevalError(
                        f"missing or bad field ({exc!r})", file=path, record=qwhere
                    ) from None
                hit = [i for i, (b, e) in enumerate(breaks) if b <= start < e]
                if not hit:
                    raise XevalError(
                        f"answer_start {start} lies outside every sentence break",
                        file=path,
                        record=qwhere,
                    )
                questions.append(
                    {
                        "query_id": f"{lang}-{qid}",
                        "lang": lang,
                        "text": text,
                        "unit_id": qid,
                        "doc_id": ids[hit[0]],
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
    corpus = pl.DataFrame(docs)
    qtab = pl.DataFrame(questions)
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


@register(
    "xquad-r",
    domain="general",
    description="XQuAD-R: 1,190 questions x 11 languages against 13,014 pooled Wikipedia sentences",
    licence="CC BY-SA 4.0",
    source=_spec("xquad-r", XQUAD_LANGS, "CC BY-SA 4.0"),
    source_help="folder with ar.json ... zh.json (LaReQA xquad-r/)",
)
def build_xquad_r(source: Path) -> Benchmark:
    return build_lareqa(source, XQUAD_LANGS, "xquad-r")


@register(
    "mlqa-r",
    domain="general",
    description="MLQA-R: 4,199 questions in 7 languages against 20,534 pooled Wikipedia sentences",
    licence="CC BY-NC 4.0",
    source=_spec("mlqa-r", MLQA_LANGS, "CC BY-NC 4.0"),
    source_help="folder with ar.json ... zh.json (LaReQA mlqa-r/)",
)
def build_mlqa_r(source: Path) -> Benchmark:
    return build_lareqa(source, MLQA_LANGS, "mlqa-r")

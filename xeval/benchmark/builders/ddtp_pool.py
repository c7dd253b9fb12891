"""A large pooled corpus from Debian package descriptions (DDTP): a scale benchmark.

Every ``Translation-LANG.lz4`` of Debian 12 gives, per package description and language,
a synopsis and a long description. The benchmark:

- **query**: the synopsis with the package name masked (as in the ``ddtp`` pair source),
  for ``queries`` packages that have a description in every query language (seeded
  sample), one query per package and query language;
- **relevant**: that package's long description in every language that has one (pooled);
- **corpus**: every long description, every paragraph of one, every sentence and every
  window of two to four consecutive sentences of one, and every other package's synopsis
  and whole Description field (synopsis + long description), in all 14 languages, each distinct text once per language (about 1.1 million real passages); ``size`` keeps that many (the relevant
  descriptions always, the rest a seeded sample), so 10k, 100k and 1M corpora share
  their queries and judgements.

Paragraphs and sentences of a relevant description are distractors that overlap it; the
benchmark measures scale (time, memory, ANN recall), not a clean relevance task.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import polars as pl

from xeval.benchmark.builders.ddtp import DDTP_LANGS, MASK, SOURCE, mask_package, read_ddtp
from xeval.benchmark.registry import BuilderOption, register
from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError

NAME = "ddtp-pool"
QUERY_LANGS = ("en", "de", "fr", "it", "ja", "pt_BR")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")
MIN_CHARS = 12


def _hash(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:16]


def _pieces(long: str) -> list[tuple[str, str]]:
    """(kind, text) of a long description: itself, its paragraphs, sentences, and windows
    of two to four consecutive sentences."""
    out = [("desc", long)]
    for para in long.split("\n\n"):
        out.append(("para", para))
        sents = [s.strip() for s in _SENTENCE.split(para)]
        out.extend(("sent", s) for s in sents)
        for w in (2, 3, 4):
            out.extend(("win", " ".join(sents[i : i + w])) for i in range(len(sents) - w + 1))
    return out


def _read(folder: Path) -> dict[str, dict[tuple[str, str], tuple[str, str]]]:
    return {lang: read_ddtp(folder / f"Translation-{lang}.lz4", lang) for lang in DDTP_LANGS}


def _queries(data, langs: tuple[str, ...], n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (package, md5) units described in every query language, by seeded hash."""
    common = set(data[langs[0]])
    for lang in langs[1:]:
        common &= set(data[lang])
    units = sorted(common, key=lambda u: _hash(str(seed), *u))
    keep = []
    for pkg, md5 in units:
        syn = [mask_package(data[lang][(pkg, md5)][0], pkg) for lang in langs]
        if all(sum(c.isalpha() for c in s.replace(MASK, "")) >= 3 for s in syn):
            keep.append((pkg, md5))
        if len(keep) == n:
            return keep
    raise XevalError(f"only {len(keep)} DDTP packages are described in all of {list(langs)}")


def _corpus(data, asked: set[tuple[str, str]]) -> pl.DataFrame:
    """Every distinct (language, text) piece; descriptions keep a unit-derived id."""
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    for lang, units in data.items():
        for (pkg, md5), (syn, long) in units.items():
            if (pkg, md5) not in asked:  # the synopsis, alone and as the whole field
                for kind, text in (("s", syn), ("f", f"{syn}\n\n{long}")):
                    if len(text) >= MIN_CHARS:
                        rows.setdefault(
                            (lang, text), (f"{lang}-{kind}-{_hash(lang, text)}", f"{pkg}:{md5}")
                        )
            for kind, text in _pieces(long):
                if len(text) >= MIN_CHARS:
                    doc = _hash(pkg, md5) if kind == "desc" else _hash(lang, text)
                    rows.setdefault((lang, text), (f"{lang}-{kind[0]}-{doc}", f"{pkg}:{md5}"))
    return pl.DataFrame(
        {
            "doc_id": [v[0] for v in rows.values()],
            "lang": [k[0] for k in rows],
            "text": [k[1] for k in rows],
            "unit_id": [v[1] for v in rows.values()],
        }
    ).unique("doc_id", keep="first", maintain_order=True)


def build_ddtp_pool(
    source: Path, size: int | None = None, queries: int = 100, seed: int = 0
) -> Benchmark:
    """The pooled DDTP scale benchmark (see the module doc)."""
    folder = source if source.is_dir() else source.parent
    data = _read(folder)
    asked = _queries(data, QUERY_LANGS, queries, seed)
    q_rows, qrels = [], []
    for pkg, md5 in asked:
        unit = f"{pkg}:{md5}"
        for lang in QUERY_LANGS:
            qid = f"{lang}-{_hash(pkg, md5)}"
            q_rows.append((qid, lang, mask_package(data[lang][(pkg, md5)][0], pkg), unit))
            qrels.extend(
                (qid, f"{d}-d-{_hash(pkg, md5)}", 1) for d in data if (pkg, md5) in data[d]
            )
    corpus = _corpus(data, set(asked))
    qrels_df = pl.DataFrame(qrels, schema=["query_id", "doc_id", "relevance"], orient="row")
    qrels_df = qrels_df.filter(pl.col("doc_id").is_in(corpus["doc_id"].implode()))
    corpus = _sample(corpus, set(qrels_df["doc_id"]), size, seed)
    q = pl.DataFrame(q_rows, schema=["query_id", "lang", "text", "unit_id"], orient="row")
    q = q.filter(pl.col("query_id").is_in(qrels_df["query_id"].implode()))
    manifest = {"size": corpus.height, "queries_per_language": queries, "seed": seed}
    return Benchmark(NAME, corpus, q, qrels_df, manifest=manifest)


def _sample(corpus: pl.DataFrame, relevant: set[str], size: int | None, seed: int) -> pl.DataFrame:
    if size is None:
        return corpus
    if size > corpus.height:
        raise XevalError(f"--size {size}: the DDTP pool has only {corpus.height} passages")
    if size < len(relevant):
        raise XevalError(f"--size {size} is below the {len(relevant)} relevant descriptions")
    key = pl.col("doc_id").is_in(list(relevant))
    rest = corpus.filter(~key).with_columns(
        pl.col("doc_id").map_elements(lambda d: _hash(str(seed), d), pl.String).alias("_k")
    )
    rest = rest.sort("_k").head(size - len(relevant)).drop("_k")
    keep = set(rest["doc_id"]) | relevant
    return corpus.filter(pl.col("doc_id").is_in(list(keep)))


@register(
    NAME,
    domain="technical",
    description="Scale benchmark: masked DDTP synopsis -> package description, pooled with "
    "every description, paragraph, sentence (pair) and synopsis of 14 languages (~1.1M)",
    licence="Debian DDTP contributions (package descriptions: the packages' licences)",
    source=SOURCE,
    source_help="folder with Translation-LANG.lz4",
    options=[
        BuilderOption("size", int, None, "passages kept (seeded sample; default: all)"),
        BuilderOption("queries", int, 100, "packages asked, one query per query language"),
        BuilderOption("seed", int, 0, "sampling seed"),
    ],
)
def build(source: Path, size: int | None = None, queries: int = 100, seed: int = 0) -> Benchmark:
    return build_ddtp_pool(source, size, queries, seed)

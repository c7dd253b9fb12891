"""Your own parallel data: one JSON record per unit and language.

``{"unit_id": "art-12", "lang": "de", "query": "...", "passage": "..."}``

Records sharing ``unit_id`` are translations of each other. Every query of a unit is
relevant to that unit's passage in every language, so the mono, cross and multilingual
settings follow. A record may leave out ``query`` (passage only) or ``passage``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from xeval.benchmark.builders._jsonl import field, lang_field, read_jsonl
from xeval.benchmark.registry import BuilderOption, register
from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError
from xeval.training.pairs import pairs_from_units, register_pairs, sample_units


def read_parallel_jsonl(path: Path) -> pl.DataFrame:
    """Validated records: unit_id, lang, query, passage (one per unit and language) and
    the line each came from."""
    rows, seen = [], {}
    for n, rec in read_jsonl(path):
        unit = field(rec, ("unit_id", "id"), path, n)
        lang = lang_field(rec, path, n)
        query = _text(field(rec, ("query",), path, n, required=False))
        passage = _text(field(rec, ("passage", "text"), path, n, required=False))
        if query is None and passage is None:
            raise XevalError(
                "record has neither query nor passage text", file=path, record=f"line {n}"
            )
        if (unit, lang) in seen:
            raise XevalError(
                f"duplicate: unit {unit!r} has language {lang!r} twice (first on line "
                f"{seen[(unit, lang)]})",
                file=path,
                record=f"line {n}",
            )
        seen[(unit, lang)] = n
        rows.append({"unit_id": unit, "lang": lang, "query": query, "passage": passage, "line": n})
    if not rows:
        raise XevalError("no records", file=path)
    return pl.DataFrame(
        rows,
        schema={
            "unit_id": pl.String,
            "lang": pl.String,
            "query": pl.String,
            "passage": pl.String,
            "line": pl.Int64,
        },
    )


def _text(value: str | None) -> str | None:
    """The text, None when absent or blank."""
    return value if value and value.strip() else None


def read_parallel_pairs(path: Path, source: str = "parallel-jsonl") -> pl.DataFrame:
    """Training pairs of a parallel-JSONL file: every record needs a query and a passage."""
    if path.is_dir():
        raise XevalError("parallel-jsonl expects a .jsonl file, got a folder", file=path)
    recs = read_parallel_jsonl(path)
    for key in ("query", "passage"):
        bad = recs.filter(pl.col(key).is_null())
        if bad.height:
            raise XevalError(
                f"missing or empty {key!r}", file=path, record=f"line {bad['line'][0]}"
            )
    units: dict[str, dict[str, tuple[str, str]]] = {}
    for unit, lang, query, passage in recs.select("unit_id", "lang", "query", "passage").rows():
        units.setdefault(unit, {})[lang] = (query, passage)
    return pairs_from_units(units, source)


@register_pairs(
    "parallel-jsonl",
    description="Your own parallel data: JSONL records {unit_id, lang, query, passage}",
    source_help="a .jsonl file, one record per unit and language",
)
def parallel_jsonl_pairs(source: Path, max_units: int | None) -> pl.DataFrame:
    df = read_parallel_pairs(source)
    return sample_units(df, max_units) if max_units else df


@register(
    "parallel-jsonl",
    domain="user",
    description="Your own parallel data: JSONL records {unit_id, lang, query, passage}; same unit = translations",
    kind="user-format",
    source_help="a .jsonl file",
    options=[
        BuilderOption("name", str, None, "Benchmark name (default: the file name)."),
        BuilderOption("domain", str, "user", "Domain label written to the manifest."),
    ],
)
def build_parallel_jsonl(source: Path, name: str | None, domain: str) -> Benchmark:
    if source.is_dir():
        raise XevalError("parallel-jsonl expects a .jsonl file, got a folder", file=source)
    recs = read_parallel_jsonl(source)
    queries = recs.filter(pl.col("query").is_not_null()).select(
        pl.format("{}-q-{}", "lang", "unit_id").alias("query_id"),
        "lang",
        pl.col("query").alias("text"),
        "unit_id",
    )
    corpus = recs.filter(pl.col("passage").is_not_null()).select(
        pl.format("{}-d-{}", "lang", "unit_id").alias("doc_id"),
        "lang",
        pl.col("passage").alias("text"),
        "unit_id",
    )
    qrels = (
        queries.select("query_id", "unit_id")
        .join(corpus.select("doc_id", "unit_id"), on="unit_id")
        .select("query_id", "doc_id", pl.lit(1, pl.Int32).alias("relevance"))
    )
    if qrels.height == 0:
        raise XevalError("no unit has both a query and a passage", file=source)
    bench = Benchmark(name or source.stem, corpus, queries, qrels)
    bench.manifest = {"domain": domain}
    return bench

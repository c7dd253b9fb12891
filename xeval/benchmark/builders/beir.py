"""Your own data as a BEIR folder with a language on every record.

``corpus.jsonl``  {"_id", "text", "lang", optional "title", "unit_id"}
``queries.jsonl`` {"_id", "text", "lang", optional "unit_id"}
``qrels/<split>.tsv``  header ``query-id  corpus-id  score``

``lang`` may also be spelled ``language``; records without one take ``--default-lang``
if given, else the build stops naming the record.
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from xeval.benchmark.builders._jsonl import field, read_jsonl
from xeval.benchmark.registry import BuilderOption, register
from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError

LANG = ("lang", "language")


def _records(path: Path, default_lang: str | None, kind: str) -> list[dict]:
    out, seen = [], set()
    for n, rec in read_jsonl(path):
        rid = field(rec, ("_id", "id"), path, n)
        if rid in seen:
            raise XevalError(f"duplicate _id {rid!r}", file=path, record=f"line {n}")
        seen.add(rid)
        lang = field(rec, LANG, path, n, required=default_lang is None) or default_lang
        row = {"id": rid, "lang": lang, "text": field(rec, ("text",), path, n)}
        if kind == "corpus":
            row["title"] = field(rec, ("title",), path, n, required=False)
        row["unit_id"] = field(rec, ("unit_id",), path, n, required=False)
        out.append(row)
    if not out:
        raise XevalError("no records", file=path)
    return out


def read_qrels_tsv(path: Path) -> pl.DataFrame:
    """BEIR qrels TSV (header ``query-id corpus-id score``); bad lines name the line."""
    rows = []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t")
            for n, parts in enumerate(reader, 1):
                if not parts or (n == 1 and parts[0] in ("query-id", "query_id", "qid")):
                    continue
                if len(parts) != 3:
                    raise XevalError(
                        f"expected 3 tab-separated fields, got {len(parts)}",
                        file=path,
                        record=f"line {n}",
                    )
                try:
                    rel = int(float(parts[2]))
                except ValueError:
                    raise XevalError(
                        f"score {parts[2]!r} is not a number", file=path, record=f"line {n}"
                    ) from None
                rows.append((parts[0], parts[1], rel))
    except UnicodeDecodeError as exc:
        raise XevalError(f"not UTF-8 ({exc})", file=path) from None
    except FileNotFoundError:
        raise XevalError("file not found", file=path) from None
    return pl.DataFrame(rows, schema=["query_id", "doc_id", "relevance"], orient="row")


@register(
    "beir",
    domain="user",
    description="Your own data: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv) with a lang field",
    kind="user-format",
    source_help="a BEIR folder",
    options=[
        BuilderOption("split", str, "test", "Which qrels/SPLIT.tsv to read."),
        BuilderOption("default_lang", str, None, "Language for records without a lang field."),
        BuilderOption("name", str, None, "Benchmark name (default: the folder name)."),
        BuilderOption("domain", str, "user", "Domain label written to the manifest."),
    ],
)
def build_beir(
    source: Path, split: str, default_lang: str | None, name: str | None, domain: str
) -> Benchmark:
    if not source.is_dir():
        raise XevalError(
            "a BEIR source must be a folder with corpus.jsonl, queries.jsonl, qrels/", file=source
        )
    corpus = pl.DataFrame(_records(source / "corpus.jsonl", default_lang, "corpus")).rename(
        {"id": "doc_id"}
    )
    queries = pl.DataFrame(_records(source / "queries.jsonl", default_lang, "queries")).rename(
        {"id": "query_id"}
    )
    qpath = source / "qrels" / f"{split}.tsv"
    qrels = read_qrels_tsv(qpath)
    for col, table, key in (("query_id", queries, "query_id"), ("doc_id", corpus, "doc_id")):
        bad = qrels.join(table.select(key), left_on=col, right_on=key, how="anti")
        if bad.height:
            raise XevalError(f"qrel names unknown {col} {bad[col][0]!r}", file=qpath)
    qrels = qrels.filter(pl.col("relevance") > 0)
    bench = Benchmark(name or source.name, corpus, queries, qrels)
    bench.manifest = {"domain": domain}
    return bench

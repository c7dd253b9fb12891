"""Your own data as a BEIR folder with a language on every record.

``corpus.jsonl``  {"_id", "text", "lang", optional "title", "unit_id"}
``queries.jsonl`` {"_id", "text", "lang", optional "unit_id"}
``qrels/<split>.tsv``  header ``query-id  corpus-id  score``

``lang`` may also be spelled ``language``; records without one take ``--default-lang``
if given, else the build stops naming the record. Language codes follow one rule
(:func:`xeval.text.check_lang`): trimmed, ``-`` written ``_``, BCP 47 case (``pt_BR``).
Scores are whole numbers; a (query, document) pair given twice with different scores is
refused.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import polars as pl

from xeval.benchmark.builders._jsonl import field, lang_field, read_jsonl
from xeval.benchmark.registry import BuilderOption, register
from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError

_QUERY_COLUMNS = ("id", "lang", "text", "unit_id")


def _records(path: Path, default_lang: str | None, kind: str) -> list[dict]:
    out, seen = [], set()
    for n, rec in read_jsonl(path):
        rid = field(rec, ("_id", "id"), path, n)
        if rid in seen:
            raise XevalError(f"duplicate _id {rid!r}", file=path, record=f"line {n}")
        seen.add(rid)
        row = {"id": rid, "lang": lang_field(rec, path, n, default_lang)}
        row["text"] = field(rec, ("text",), path, n)
        if kind == "corpus":
            row["title"] = field(rec, ("title",), path, n, required=False)
        row["unit_id"] = field(rec, ("unit_id",), path, n, required=False)
        out.append(row)
    if not out:
        raise XevalError("no records", file=path)
    return out


def _table(path: Path, default_lang: str | None, kind: str) -> pl.DataFrame:
    cols = ("id", "lang", "text", "title", "unit_id") if kind == "corpus" else _QUERY_COLUMNS
    return pl.DataFrame(_records(path, default_lang, kind), schema=dict.fromkeys(cols, pl.String))


def _relevance(text: str, path: Path, n: int) -> int:
    """A graded relevance: a whole number (``2`` or ``2.0``), never truncated."""
    try:
        value = float(text)
    except ValueError:
        raise XevalError(f"score {text!r} is not a number", file=path, record=f"line {n}") from None
    if not math.isfinite(value) or value != int(value) or abs(value) > 1_000_000:
        raise XevalError(
            f"score {text!r} is not a whole number (relevance is graded 0, 1, 2, ...)",
            file=path,
            record=f"line {n}",
        )
    return int(value)


def _qrel_rows(path: Path) -> list[tuple[str, str, int]]:
    rows: dict[tuple[str, str], tuple[int, int]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for n, parts in enumerate(csv.reader(f, delimiter="\t"), 1):
            if not parts or (n == 1 and parts[0] in ("query-id", "query_id", "qid")):
                continue
            if len(parts) != 3:
                raise XevalError(
                    f"expected 3 tab-separated fields, got {len(parts)}",
                    file=path,
                    record=f"line {n}",
                )
            key, rel = (parts[0], parts[1]), _relevance(parts[2], path, n)
            if key in rows and rows[key][0] != rel:
                raise XevalError(
                    f"qrel {key[0]!r} -> {key[1]!r} has relevance {rel} here and "
                    f"{rows[key][0]} on line {rows[key][1]}",
                    file=path,
                    record=f"line {n}",
                )
            rows.setdefault(key, (rel, n))
    return [(q, d, rel) for (q, d), (rel, _) in rows.items()]


def read_qrels_tsv(path: Path) -> pl.DataFrame:
    """BEIR qrels TSV (header ``query-id corpus-id score``); bad lines name the line.

    Scores must be whole numbers; a pair given twice with different scores is refused
    (the same score twice is kept once).
    """
    if path.is_dir():
        raise XevalError("expected a qrels file, found a folder", file=path)
    try:
        rows = _qrel_rows(path)
    except UnicodeDecodeError as exc:
        raise XevalError(f"not UTF-8 ({exc})", file=path) from None
    except FileNotFoundError:
        raise XevalError("file not found", file=path) from None
    except csv.Error as exc:
        raise XevalError(f"unreadable TSV ({exc})", file=path) from None
    except OSError as exc:
        raise XevalError(f"cannot read ({exc.strerror or exc})", file=path) from None
    schema = {"query_id": pl.String, "doc_id": pl.String, "relevance": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")


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
    if not split or Path(split).name != split or split.startswith("."):
        raise XevalError(f"--split {split!r} must be a plain file name (qrels/SPLIT.tsv)")
    corpus = _table(source / "corpus.jsonl", default_lang, "corpus").rename({"id": "doc_id"})
    queries = _table(source / "queries.jsonl", default_lang, "queries").rename({"id": "query_id"})
    qpath = source / "qrels" / f"{split}.tsv"
    qrels = read_qrels_tsv(qpath)
    for col, table, key in (("query_id", queries, "query_id"), ("doc_id", corpus, "doc_id")):
        bad = qrels.join(table.select(key), left_on=col, right_on=key, how="anti")
        if bad.height:
            raise XevalError(f"qrel names unknown {col} {bad[col][0]!r}", file=qpath)
    qrels = qrels.filter(pl.col("relevance") > 0)
    if qrels.height == 0:
        raise XevalError("no qrel with a positive score", file=qpath)
    bench = Benchmark(name or source.name, corpus, queries, qrels)
    bench.manifest = {"domain": domain}
    return bench

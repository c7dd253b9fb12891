"""Every table that passes between stages: its columns, one reader and one writer.

=============  ===========================================  ==========================
table          columns (optional in brackets)               written by -> read by
=============  ===========================================  ==========================
CORPUS         doc_id, lang, text [, title, unit_id]        benchmark -> run
QUERIES        query_id, lang, text [, unit_id]             benchmark -> run
QRELS          query_id, doc_id, relevance                  benchmark -> evaluate
RUN            query_id, doc_id, score [, rank]             run -> evaluate
RANKS          query_id, doc_id, rank                       run -> evaluate (bias)
PER_QUERY      setting, kind, query_lang, doc_lang,         evaluate -> compare
               query_id, metric, value
PER_SETTING    setting, kind, query_lang, doc_lang, metric, evaluate -> report
               value, n_queries, n_missing
SUMMARY        kind, metric, value, n_settings, n_queries,  evaluate -> report
               n_missing
PAIRS          query, passage, query_lang, passage_lang,    pairs -> finetune
               unit_id, source
=============  ===========================================  ==========================

Reading a missing, damaged or wrongly shaped file raises :class:`XevalError` naming the
file, never a Polars or PyArrow exception; writing is atomic (temporary file + rename).
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from xeval.errors import XevalError
from xeval.provenance import atomic_path, write_json

__all__ = [
    "CORPUS",
    "KINDS",
    "PAIRS",
    "PER_QUERY",
    "PER_SETTING",
    "QRELS",
    "QUERIES",
    "RANKS",
    "RUN",
    "SUMMARY",
    "TABLES",
    "TIE_RULE",
    "TableSpec",
    "check_fields",
    "check_file",
    "read_json",
    "write_json",
]

#: how every ranking in xeval orders documents of equal score
TIE_RULE = "score descending, then doc_id descending (trec_eval's rule)"
#: the setting kinds, in report order (monolingual, cross-lingual, multilingual pooled)
KINDS = ("mono", "cross", "multi")


@dataclass(frozen=True)
class TableSpec:
    """One hand-off table: required and optional columns with their types, and its key."""

    name: str
    columns: dict[str, pl.DataType]
    optional: dict[str, pl.DataType] = field(default_factory=dict)
    key: tuple[str, ...] = ()
    doc: str = ""

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """Required then optional columns (the full shape as written)."""
        return {**self.columns, **self.optional}

    def validate(self, df: pl.DataFrame, where: str | Path | None = None) -> pl.DataFrame:
        """Required columns present, cast to the schema; optional ones kept when present.

        Other columns are dropped. Raises :class:`XevalError` naming ``where``.
        """
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise XevalError(
                f"{self.name} table lacks column(s) {missing}; has {df.columns}", file=where
            )
        cols = [c for c in self.schema if c in df.columns]
        for c in cols:
            _check_integral(df, c, self.schema[c], f"{self.name}.{c}", where)
        try:
            out = df.select([pl.col(c).cast(self.schema[c]) for c in cols])
        except pl.exceptions.PolarsError as exc:
            raise XevalError(
                f"{self.name} columns have the wrong type ({exc})", file=where
            ) from None
        for c in self.key:
            nulls = out.get_column(c).is_null().arg_true() if c in out.columns else []
            if len(nulls):
                raise XevalError(f"{c} has a null value", file=where, record=f"row {nulls[0]}")
        return out

    def read(self, path: str | Path) -> pl.DataFrame:
        """Read and validate a Parquet file of this table."""
        path = check_file(path, "a Parquet file", "missing file")
        try:
            df = pl.read_parquet(path)
        except Exception as exc:  # polars/pyarrow raise several types for damaged files
            raise XevalError(f"unreadable parquet ({exc})", file=path) from None
        return self.validate(df, path)

    def write(self, df: pl.DataFrame, path: str | Path) -> Path:
        """Validate ``df`` and write it as Parquet, atomically; return ``path``."""
        path = Path(path)
        df = self.validate(df, path)
        with atomic_path(path) as tmp:
            df.write_parquet(tmp)
        return path

    def empty(self) -> pl.DataFrame:
        """A table with the required columns and no rows."""
        return pl.DataFrame(schema=self.columns)


_S, _F, _I32, _I64 = pl.String(), pl.Float64(), pl.Int32(), pl.Int64()

CORPUS = TableSpec(
    "corpus",
    {"doc_id": _S, "lang": _S, "text": _S},
    {"title": _S, "unit_id": _S},
    ("doc_id",),
    "benchmark documents: DIR/corpus.parquet",
)
QUERIES = TableSpec(
    "queries",
    {"query_id": _S, "lang": _S, "text": _S},
    {"unit_id": _S},
    ("query_id",),
    "benchmark queries: DIR/queries.parquet",
)
QRELS = TableSpec(
    "qrels",
    {"query_id": _S, "doc_id": _S, "relevance": _I32},
    key=("query_id", "doc_id"),
    doc="pooled relevance judgements (> 0 relevant): DIR/qrels.parquet",
)
RUN = TableSpec(
    "run",
    {"query_id": _S, "doc_id": _S, "score": _F},
    {"rank": _I32},
    ("query_id", "doc_id"),
    "one setting's top-k: RUNDIR/runs/<setting>.parquet (rank is ignored when scoring)",
)
RANKS = TableSpec(
    "ranks",
    {"query_id": _S, "doc_id": _S, "rank": _I32},
    key=("query_id", "doc_id"),
    doc="exact rank of every relevant item over the setting's whole pool: "
    "RUNDIR/ranks/<setting>.parquet, one per setting (mono, cross and multi)",
)
_WHERE = {"setting": _S, "kind": _S, "query_lang": _S, "doc_lang": _S}
PER_QUERY = TableSpec(
    "per_query",
    {**_WHERE, "query_id": _S, "metric": _S, "value": _F},
    key=(*_WHERE, "query_id", "metric"),
    doc="one metric value per query: RUNDIR/eval/per_query.parquet",
)
PER_SETTING = TableSpec(
    "per_setting",
    {**_WHERE, "metric": _S, "value": _F, "n_queries": _I64, "n_missing": _I64},
    key=("setting", "metric"),
    doc="mean over a setting's queries: RUNDIR/eval/per_setting.parquet",
)
SUMMARY = TableSpec(
    "summary",
    {
        "kind": _S,
        "metric": _S,
        "value": _F,
        "n_settings": _I64,
        "n_queries": _I64,
        "n_missing": _I64,
    },
    key=("kind", "metric"),
    doc="macro-average over the settings of a kind: RUNDIR/eval/summary.parquet",
)
PAIRS = TableSpec(
    "pairs",
    {
        "query": _S,
        "passage": _S,
        "query_lang": _S,
        "passage_lang": _S,
        "unit_id": _S,
        "source": _S,
    },
    key=("unit_id", "query_lang", "passage_lang", "source"),
    doc="training pairs, one row per unit and (query lang, passage lang)",
)
TABLES = (CORPUS, QUERIES, QRELS, RUN, RANKS, PER_QUERY, PER_SETTING, SUMMARY, PAIRS)


def check_file(path: str | Path, what: str = "a file", missing: str = "file not found") -> Path:
    """``path`` as a readable regular file, or :class:`XevalError` saying what it is instead."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise XevalError(missing, file=path) from None
    except OSError as exc:  # symlink loop, not a directory, permission denied
        raise XevalError(f"cannot open: {exc.strerror or exc}", file=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise XevalError(f"is a directory; expected {what}", file=path)
    if not stat.S_ISREG(st.st_mode):
        raise XevalError(f"is not a regular file; expected {what}", file=path)
    return path


def read_json(
    path: str | Path, missing: str = "file not found", *, expect: type | None = None
) -> Any:
    """Parse a JSON file; ``missing`` is the message when it does not exist.

    ``expect`` (e.g. ``dict``) is the type the top-level value must have.
    """
    path = check_file(path, "a JSON file", missing)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise XevalError(
            f"invalid JSON ({exc.msg})", file=path, record=f"line {exc.lineno}"
        ) from None
    except (OSError, UnicodeDecodeError, RecursionError) as exc:
        raise XevalError(f"unreadable JSON file ({exc})", file=path) from None
    if expect is not None and not isinstance(obj, expect):
        raise XevalError(
            f"expected a JSON {_JSON_NAMES.get(expect, expect.__name__)}, "
            f"got {_JSON_NAMES.get(type(obj), type(obj).__name__)}",
            file=path,
        )
    return obj


def check_fields(
    obj: dict[str, Any], types: dict[str, type | tuple[type, ...]], where: Path
) -> None:
    """Each present field of the JSON object ``obj`` has its expected type, else :class:`XevalError`."""
    for name, typ in types.items():
        if name not in obj:
            continue
        value = obj[name]
        if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
            got = _JSON_NAMES.get(type(value), type(value).__name__)
            raise XevalError(f"field has the wrong type ({got})", file=where, record=name)


_JSON_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "true/false",
    type(None): "null",
}


def _check_integral(
    df: pl.DataFrame, col: str, target: pl.DataType, name: str, where: str | Path | None
) -> None:
    """A float column cast to an integer one must hold whole, finite numbers (no 1.9 -> 1)."""
    if not (target.is_integer() and df.schema[col].is_float()):
        return
    s = df.get_column(col)
    bad = (~s.is_finite() | (s != s.round(0))).fill_null(False).arg_true()
    if len(bad):
        raise XevalError(
            f"{name} must be a whole number, got {s[bad[0]]!r}", file=where, record=f"row {bad[0]}"
        )

"""Training pairs from parallel data: one row per unit and (query lang, passage lang).

Every pair source yields the same table (:data:`PAIR_SCHEMA`)::

    query, passage, query_lang, passage_lang, unit_id, source

A *unit* is one thing said in several languages (a LaReQA question id, a statute section,
a documentation paragraph). For a unit present in languages L, the table holds a row for
every ordered (X, Y) in L x L, X == Y included: the X-X rows feed monolingual batches, the
X-Y rows cross-lingual ones. Only ``query`` and ``passage`` ever reach the loss
(:func:`training_columns`); the metadata drives the batch sampler.

Sources, by name (``xeval pairs NAME``):

- ``lareqa-mlqa-r`` / ``lareqa-xquad-r``: question -> its answer sentence (LaReQA qrels);
- ``parallel-jsonl``: your own file, one JSON object per unit and language with
  ``unit_id``, ``lang``, ``query``, ``passage``;
- ``python-docs``, ``ddtp``, ``justice-canada``, ``finlex``: domain builders in
  :mod:`xeval.training.domain_pairs_technical` / :mod:`xeval.training.domain_pairs_legal`,
  imported only when asked for.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from xeval.benchmark.schema import Benchmark, table_digest
from xeval.errors import XevalError
from xeval.provenance import atomic_path, provenance, write_json
from xeval.tables import PAIRS

PAIR_SCHEMA: dict[str, Any] = PAIRS.columns
PAIR_COLUMNS = tuple(PAIR_SCHEMA)

# source name -> (module, candidate function names); domain modules are written separately
_DOMAIN_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "python-docs": (
        "xeval.training.domain_pairs_technical",
        ("python_docs_pairs", "build_python_docs_pairs"),
    ),
    "ddtp": ("xeval.training.domain_pairs_technical", ("ddtp_pairs", "build_ddtp_pairs")),
    "justice-canada": (
        "xeval.training.domain_pairs_legal",
        ("justice_canada_pairs", "build_justice_canada_pairs"),
    ),
    "finlex": ("xeval.training.domain_pairs_legal", ("finlex_pairs", "build_finlex_pairs")),
}
LAREQA_SOURCES = {"lareqa-mlqa-r": "mlqa-r", "lareqa-xquad-r": "xquad-r"}
PAIR_SOURCES = (*LAREQA_SOURCES, "parallel-jsonl", *_DOMAIN_SOURCES)


# ---- schema -----------------------------------------------------------------------------
def validate_pairs(df: pl.DataFrame, where: str | Path = "pairs") -> pl.DataFrame:
    """Check and conform a pairs table; raise :class:`XevalError` naming the bad row."""
    df = PAIRS.validate(df, where)
    for col in PAIR_COLUMNS:
        bad = df.with_row_index("_row").filter(
            pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")
        )
        if bad.height:
            raise XevalError(f"empty {col!r}", file=where, record=int(bad["_row"][0]))
    dup = df.with_row_index("_row").filter(
        pl.struct("unit_id", "query_lang", "passage_lang", "source").is_duplicated()
    )
    if dup.height:
        r = dup.row(0, named=True)
        raise XevalError(
            f"duplicate pair for unit {r['unit_id']!r} ({r['query_lang']}->{r['passage_lang']})",
            file=where,
            record=int(r["_row"]),
        )
    return df


def pairs_fingerprint(df: pl.DataFrame) -> str:
    """Content digest of a pairs table (row order does not matter)."""
    return table_digest(df.select(PAIR_COLUMNS))


def training_columns(df: pl.DataFrame) -> Any:
    """The Hugging Face ``Dataset`` the loss sees: only ``anchor`` and ``positive`` text."""
    from datasets import Dataset

    return Dataset.from_dict({"anchor": df["query"].to_list(), "positive": df["passage"].to_list()})


def summarize_pairs(df: pl.DataFrame) -> dict[str, Any]:
    """Counts a human (and the training card) wants: rows, units, languages, X-X vs X-Y."""
    mono = df.filter(pl.col("query_lang") == pl.col("passage_lang"))
    per_lang = dict(mono.group_by("query_lang").len().sort("query_lang").iter_rows())
    return {
        "rows": df.height,
        "units": df["unit_id"].n_unique() if df.height else 0,
        "languages": sorted(set(df["query_lang"].to_list()) | set(df["passage_lang"].to_list())),
        "mono_rows": mono.height,
        "cross_rows": df.height - mono.height,
        "mono_rows_per_language": per_lang,
        "sources": sorted(df["source"].unique().to_list()) if df.height else [],
    }


# ---- LaReQA -------------------------------------------------------------------------------
def benchmark_pairs(bench: Benchmark, source: str | None = None) -> pl.DataFrame:
    """Question -> relevant passage, in every (query lang, passage lang) the qrels link.

    The query's ``unit_id`` (LaReQA question id) is the unit; a question present in k
    languages gives k*k rows.
    """
    q = bench.queries
    unit = pl.col("unit_id") if "unit_id" in q.columns else pl.col("query_id")
    q = q.select(
        "query_id",
        pl.col("text").alias("query"),
        pl.col("lang").alias("query_lang"),
        unit.fill_null(pl.col("query_id")).alias("unit_id"),
    )
    docs = bench.corpus.select(
        "doc_id", pl.col("text").alias("passage"), pl.col("lang").alias("passage_lang")
    )
    out = (
        bench.qrels.filter(pl.col("relevance") > 0)
        .join(q, on="query_id")
        .join(docs, on="doc_id")
        .with_columns(source=pl.lit(source or bench.name))
        .select(PAIR_COLUMNS)
        .unique(subset=["unit_id", "query_lang", "passage_lang"], keep="first", maintain_order=True)
        .sort("unit_id", "query_lang", "passage_lang")
    )
    return validate_pairs(out, bench.name)


def lareqa_pairs(name: str = "mlqa-r", source: str | Path | None = None) -> pl.DataFrame:
    """Pairs from a LaReQA benchmark built in memory (``mlqa-r`` or ``xquad-r``)."""
    from xeval.benchmark.registry import build

    return benchmark_pairs(build(name, source), source=f"lareqa-{name}")


# ---- parallel JSONL ------------------------------------------------------------------------
def parallel_jsonl_pairs(path: str | Path, source: str = "parallel-jsonl") -> pl.DataFrame:
    """Read the parallel-JSONL user format and expand each unit to all language pairs.

    One JSON object per line: ``{"unit_id": ..., "lang": ..., "query": ..., "passage": ...}``
    (one line per unit and language). Blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise XevalError("parallel-JSONL file not found", file=path)
    units: dict[str, dict[str, tuple[str, str]]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise XevalError(
                    f"malformed JSON: {exc.msg}", file=path, record=f"line {lineno}"
                ) from None
            if not isinstance(rec, dict):
                raise XevalError("not a JSON object", file=path, record=f"line {lineno}")
            vals = {}
            for key in ("unit_id", "lang", "query", "passage"):
                v = rec.get(key)
                if not isinstance(v, (str, int)) or not str(v).strip():
                    raise XevalError(
                        f"missing or empty {key!r}", file=path, record=f"line {lineno}"
                    )
                vals[key] = str(v)
            langs = units.setdefault(vals["unit_id"], {})
            if vals["lang"] in langs:
                raise XevalError(
                    f"unit {vals['unit_id']!r} has language {vals['lang']!r} twice",
                    file=path,
                    record=f"line {lineno}",
                )
            langs[vals["lang"]] = (vals["query"], vals["passage"])
    if not units:
        raise XevalError("no records", file=path)
    rows = [
        (qt, units[u][y][1], x, y, u, source)
        for u in units
        for x, (qt, _) in units[u].items()
        for y in units[u]
    ]
    df = pl.DataFrame(rows, schema=PAIR_SCHEMA, orient="row")
    return validate_pairs(df, path)


# ---- dispatch, load, save ----------------------------------------------------------------
def _domain_builder(name: str) -> Callable[..., pl.DataFrame]:
    mod_name, candidates = _DOMAIN_SOURCES[name]
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if exc.name == mod_name:
            raise XevalError(
                f"pair source {name!r} is not available in this build ({mod_name})"
            ) from None
        raise
    table = getattr(mod, "PAIR_SOURCES", None)
    if isinstance(table, dict) and callable(table.get(name)):
        return table[name]
    for fn_name in candidates:
        if callable(getattr(mod, fn_name, None)):
            return getattr(mod, fn_name)
    raise XevalError(f"{mod_name} has no builder for {name!r} (looked for {list(candidates)})")


def sample_units(df: pl.DataFrame, max_units: int, seed: int = 0) -> pl.DataFrame:
    """Keep a seeded sample of ``max_units`` units (all their language pairs)."""
    units = df["unit_id"].unique().sort()
    if max_units >= units.len():
        return df
    keep = units.sample(max_units, seed=seed)
    return df.filter(pl.col("unit_id").is_in(keep.implode()))


def build_pairs(
    name: str, source: str | Path | None = None, *, max_units: int | None = None, **options: Any
) -> pl.DataFrame:
    """Build the pairs table of source ``name`` (see :data:`PAIR_SOURCES`).

    ``max_units`` keeps a seeded sample of units; other ``options`` (e.g. ``languages``)
    go to the domain builders, which document them.
    """
    options = {k: v for k, v in options.items() if v is not None}
    if name in _DOMAIN_SOURCES:
        fn = _domain_builder(name)
        if max_units is not None:
            options["max_units"] = max_units
        try:
            df = fn(source, **options)
        except TypeError as exc:
            raise XevalError(f"pair source {name!r}: {exc}") from None
        return validate_pairs(df, name)
    if options:
        raise XevalError(f"pair source {name!r} takes no option(s) {sorted(options)}")
    if name in LAREQA_SOURCES:
        df = lareqa_pairs(LAREQA_SOURCES[name], source)
    elif name == "parallel-jsonl":
        if source is None:
            raise XevalError("parallel-jsonl reads your own file: pass --source FILE.jsonl")
        df = parallel_jsonl_pairs(source)
    else:
        raise XevalError(f"unknown pair source {name!r}; known: {', '.join(PAIR_SOURCES)}")
    return sample_units(df, max_units) if max_units else df


def save_pairs(df: pl.DataFrame, out: str | Path, **fields: Any) -> Path:
    """Write ``out`` (Parquet) atomically plus ``out.json`` with counts and provenance."""
    out = Path(out)
    df = validate_pairs(df, out)
    with atomic_path(out) as tmp:
        df.write_parquet(tmp)
    write_json(
        out.with_name(out.name + ".json"),
        provenance(**fields, fingerprint=pairs_fingerprint(df), summary=summarize_pairs(df)),
    )
    return out


def load_pairs(path: str | Path) -> pl.DataFrame:
    """Read a pairs file (Parquet written by ``xeval pairs``, or parallel JSONL)."""
    path = Path(path)
    if not path.exists():
        raise XevalError("pairs file not found", file=path)
    if path.suffix in (".jsonl", ".json"):
        return parallel_jsonl_pairs(path)
    return validate_pairs(PAIRS.read(path), path)

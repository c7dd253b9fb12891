"""Training pairs from parallel data: one row per unit and (query lang, passage lang).

Every pair source yields the same table (:data:`PAIR_SCHEMA`)::

    query, passage, query_lang, passage_lang, unit_id, source

A *unit* is one thing said in several languages (a LaReQA question id, a statute section,
a documentation paragraph). For a unit present in languages L, the table holds a row for
every ordered (X, Y) in L x L, X == Y included: the X-X rows feed monolingual batches, the
X-Y rows cross-lingual ones. Only ``query`` and ``passage`` ever reach the loss
(:func:`training_columns`); the metadata drives the batch sampler.

Pair sources register the way benchmark builders do: a function
``fn(source: Path, max_units: int | None, **options) -> DataFrame`` decorated with
:func:`register_pairs`, in the module of the builder that reads the same source under
:mod:`xeval.benchmark.builders` (discovered with the builders). ``xeval pairs NAME`` is
generated from :func:`pair_sources`; :func:`make_pairs` is its one library call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from xeval.benchmark.schema import Benchmark, table_digest
from xeval.errors import XevalError
from xeval.provenance import atomic_path, provenance, write_json
from xeval.sources import SourceSpec, resolve_source
from xeval.tables import PAIRS

PAIR_SCHEMA: dict[str, Any] = PAIRS.columns
PAIR_COLUMNS = tuple(PAIR_SCHEMA)
PairFunction = Callable[..., pl.DataFrame]


# ---- registry -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PairOption:
    """A source-specific option, shown in ``xeval pairs NAME --help`` as ``--name``."""

    name: str
    type: type = str
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class PairSourceSpec:
    """A registered pair source."""

    name: str
    build: PairFunction
    description: str
    source: SourceSpec | None = None  # None: your own file, --source is required
    source_help: str = ""
    options: Sequence[PairOption] = field(default_factory=tuple)


PAIR_SOURCES: dict[str, PairSourceSpec] = {}


def register_pairs(
    name: str,
    *,
    description: str,
    source: SourceSpec | None = None,
    source_help: str = "",
    options: Sequence[PairOption] = (),
) -> Callable[[PairFunction], PairFunction]:
    """Decorator registering ``fn(source, max_units, **options)`` as pair source ``name``."""

    def deco(fn: PairFunction) -> PairFunction:
        if name in PAIR_SOURCES and PAIR_SOURCES[name].build is not fn:
            raise ValueError(f"pair source {name!r} registered twice")
        PAIR_SOURCES[name] = PairSourceSpec(
            name, fn, description, source, source_help, tuple(options)
        )
        return fn

    return deco


def pair_sources() -> dict[str, PairSourceSpec]:
    """All registered pair sources, by name (importing the builder modules once)."""
    from xeval.benchmark.registry import builders

    builders()
    return dict(sorted(PAIR_SOURCES.items()))


def get_pair_source(name: str) -> PairSourceSpec:
    known = pair_sources()
    if name not in known:
        raise XevalError(f"unknown pair source {name!r}; known: {', '.join(known)}")
    return known[name]


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


# ---- helpers for pair sources -------------------------------------------------------------
def pairs_from_units(units: dict[str, dict[str, tuple[str, str]]], source: str) -> pl.DataFrame:
    """``{unit: {lang: (query, passage)}}`` -> one row per unit and ordered language pair."""
    rows: dict[str, list[str]] = {c: [] for c in PAIR_SCHEMA}
    for unit in sorted(units):
        by_lang = units[unit]
        for x in sorted(by_lang):
            for y in sorted(by_lang):
                rows["query"].append(by_lang[x][0])
                rows["passage"].append(by_lang[y][1])
                rows["query_lang"].append(x)
                rows["passage_lang"].append(y)
                rows["unit_id"].append(unit)
                rows["source"].append(source)
    return pl.DataFrame(rows, schema=PAIR_SCHEMA)


def select_languages(
    languages: str | Sequence[str] | None, known: Sequence[str], what: str
) -> tuple[str, ...]:
    """The languages asked for (comma-separated or a list), in ``known``'s order."""
    if languages is None:
        return tuple(known)
    if isinstance(languages, str):
        languages = [x.strip() for x in languages.split(",") if x.strip()]
    bad = sorted(set(languages) - set(known))
    if bad:
        raise XevalError(f"{what} has no language(s) {bad}; choose from {list(known)}")
    return tuple(x for x in known if x in set(languages))


def hash_sample(units: Iterable[str], max_units: int | None) -> set[str]:
    """All units, or ``max_units`` of them chosen by a hash of the id (stable, seed-free)."""
    ordered = sorted(units)
    if max_units is None or max_units >= len(ordered):
        return set(ordered)
    return set(sorted(ordered, key=lambda u: hashlib.sha1(u.encode()).hexdigest())[:max_units])


# ---- pairs of a built benchmark -------------------------------------------------------------
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


# ---- parallel JSONL ------------------------------------------------------------------------
def parallel_jsonl_pairs(path: str | Path) -> pl.DataFrame:
    """Pairs of the parallel-JSONL user format (its registered pair source, which shares
    the reader of its benchmark builder)."""
    return build_pairs("parallel-jsonl", path)


# ---- build, load, save ----------------------------------------------------------------------
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
    """The validated pairs table of source ``name`` (see :func:`pair_sources`).

    ``max_units`` keeps a sample of that many units; other ``options`` are the source's
    own (``xeval pairs NAME --help`` lists them).
    """
    spec = get_pair_source(name)
    options = {k: v for k, v in options.items() if v is not None}
    known = {o.name for o in spec.options}
    if set(options) - known:
        raise XevalError(f"pair source {name!r} takes no option(s) {sorted(set(options) - known)}")
    if spec.source is not None:
        src = resolve_source(spec.source, source)
    elif source is None:
        raise XevalError(f"pair source {name!r} reads your own file: pass --source PATH")
    else:
        src = Path(source).expanduser()
        if not src.exists():
            raise XevalError("--source does not exist", file=src)
    return validate_pairs(spec.build(src, max_units, **options), name)


@dataclass(frozen=True)
class PairsRequest:
    """What ``xeval pairs`` asks for."""

    name: str
    out: Path
    source: Path | None = None
    max_units: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False


@dataclass(frozen=True)
class PairsResult:
    """A written pairs file and its counts."""

    out: Path
    rows: int
    units: int
    languages: tuple[str, ...]
    mono_rows: int
    cross_rows: int

    def summary(self) -> str:
        return (
            f"{self.out}: {self.rows:,} pairs, {self.units:,} units, languages "
            f"{' '.join(self.languages)}; {self.mono_rows:,} X-X and {self.cross_rows:,} X-Y"
        )


def make_pairs(req: PairsRequest) -> PairsResult:
    """Build the pairs of ``req.name`` and write them to ``req.out`` with provenance."""
    if req.out.exists() and not req.overwrite:
        raise XevalError(f"{req.out} exists; pass --overwrite to replace it")
    df = build_pairs(req.name, req.source, max_units=req.max_units, **req.options)
    save_pairs(
        df,
        req.out,
        source=req.name,
        source_path=str(req.source) if req.source else None,
        max_units=req.max_units,
        **{k: v for k, v in req.options.items() if v is not None},
    )
    s = summarize_pairs(df)
    return PairsResult(
        req.out, s["rows"], s["units"], tuple(s["languages"]), s["mono_rows"], s["cross_rows"]
    )


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

"""Benchmark builders as registry entries: adding one touches one file.

A builder is a function ``build(source: Path, **options) -> Benchmark`` decorated with
:func:`register`. Every module in :mod:`xeval.benchmark.builders` is imported on first
use, so a new file there is all a new benchmark needs. The CLI turns each entry into a
``xeval build-benchmark NAME`` subcommand whose ``--help`` lists its options.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError
from xeval.provenance import sha256_file
from xeval.sources import SourceSpec, resolve_source


@dataclass(frozen=True)
class BuilderOption:
    """A builder-specific option, shown in ``--help`` as ``--name``."""

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    choices: Sequence[str] | None = None


@dataclass(frozen=True)
class BuilderSpec:
    """A registered benchmark builder."""

    name: str
    build: Callable[..., Benchmark]
    domain: str
    description: str
    licence: str = "see source"
    version: str = "1"
    source: SourceSpec | None = None  # None: a user format, --source is required
    source_help: str = ""
    options: Sequence[BuilderOption] = field(default_factory=tuple)
    kind: str = "benchmark"  # "benchmark" or "user-format"


BUILDERS: dict[str, BuilderSpec] = {}
_LOADED = False


def register(
    name: str,
    *,
    domain: str,
    description: str,
    licence: str = "see source",
    version: str = "1",
    source: SourceSpec | None = None,
    source_help: str = "",
    options: Sequence[BuilderOption] = (),
    kind: str = "benchmark",
) -> Callable[[Callable[..., Benchmark]], Callable[..., Benchmark]]:
    """Decorator registering a builder function under ``name``."""

    def deco(fn: Callable[..., Benchmark]) -> Callable[..., Benchmark]:
        if name in BUILDERS and BUILDERS[name].build is not fn:
            raise ValueError(f"builder {name!r} registered twice")
        BUILDERS[name] = BuilderSpec(
            name,
            fn,
            domain,
            description,
            licence,
            version,
            source,
            source_help,
            tuple(options),
            kind,
        )
        return fn

    return deco


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    import xeval.benchmark.builders as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
    _LOADED = True


def builders() -> dict[str, BuilderSpec]:
    """All registered builders, by name."""
    _load_all()
    return dict(sorted(BUILDERS.items()))


def get_builder(name: str) -> BuilderSpec:
    all_ = builders()
    if name not in all_:
        raise XevalError(f"unknown benchmark {name!r}; known: {', '.join(all_)}")
    return all_[name]


def source_checksum(path: Path) -> str:
    """SHA-256 of a source file, or of every file under a source folder."""
    import hashlib

    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def build(
    builder: str,
    source: str | Path | None = None,
    *,
    sample_queries: int | None = None,
    seed: int = 0,
    **options: Any,
) -> Benchmark:
    """Build benchmark ``builder`` in memory (resolving its source) and validate it.

    ``sample_queries`` keeps a seeded sample of that many query *units* (a question and
    its translations count once) and the whole corpus, for a quick look.
    """
    spec = get_builder(builder)
    if spec.source is None:
        if source is None:
            raise XevalError(f"{builder} reads your own data: pass --source PATH")
        src = Path(source).expanduser()
        if not src.exists():
            raise XevalError(f"--source {src} does not exist")
    else:
        src = resolve_source(spec.source, source)
    opts = {o.name: options.get(o.name, o.default) for o in spec.options}
    if "seed" in opts and "seed" not in options:
        opts["seed"] = seed  # a builder's own seed follows the common --seed
    unknown = set(options) - set(opts)
    if unknown:
        raise XevalError(f"{builder} has no option(s) {sorted(unknown)}")
    bench = spec.build(src, **opts)
    bench.manifest = {
        "domain": spec.domain,
        "description": spec.description,
        "licence": spec.licence,
        "builder": spec.name,
        "builder_version": spec.version,
        "options": opts,
        "source": {
            "path": str(src.resolve()),
            "relpath": spec.source.relpath if spec.source else None,
            "upstream": spec.source.upstream if spec.source else None,
            "sha256": source_checksum(src),
        },
        **bench.manifest,
    }
    if sample_queries:
        bench = subsample_queries(bench, sample_queries, seed)
        bench.manifest["sample"] = {"queries_units": sample_queries, "seed": seed}
    bench.validate(src)
    return bench


def subsample_queries(bench: Benchmark, n: int, seed: int = 0) -> Benchmark:
    """Keep ``n`` seeded query units (all their languages), their qrels and every document."""
    import polars as pl

    key = "unit_id" if "unit_id" in bench.queries.columns else "query_id"
    units = bench.queries.select(pl.col(key).fill_null(pl.col("query_id"))).unique().sort(key)
    if n >= units.height:
        return bench
    keep = units.sample(n, seed=seed)[key]
    queries = bench.queries.filter(pl.col(key).fill_null(pl.col("query_id")).is_in(keep.implode()))
    qrels = bench.qrels.filter(pl.col("query_id").is_in(queries["query_id"].implode()))
    return Benchmark(bench.name, bench.corpus, queries, qrels, dict(bench.manifest), bench.card)


@dataclass(frozen=True)
class BuildResult:
    """A benchmark written to disk: where, and what it holds."""

    path: Path
    counts: dict[str, int]  # queries, documents, qrels
    languages: tuple[str, ...]
    settings: dict[str, int]  # kind -> number of settings

    def summary(self) -> str:
        c, k = self.counts, self.settings
        return (
            f"wrote {self.path}: {c['queries']} queries, {c['documents']} documents, "
            f"{c['qrels']} qrels, {len(self.languages)} languages ({' '.join(self.languages)}); "
            f"settings: {k.get('mono', 0)} mono, {k.get('cross', 0)} cross, "
            f"{k.get('multi', 0)} multi"
        )


def write_benchmark(
    builder: str,
    out: str | Path,
    source: str | Path | None = None,
    *,
    overwrite: bool = False,
    sample_queries: int | None = None,
    seed: int = 0,
    **options: Any,
) -> BuildResult:
    """Build benchmark ``builder`` and write it to ``out`` atomically.

    Of two concurrent writers to one ``out`` exactly one succeeds; the other raises
    :class:`XevalError` (or, with ``overwrite``, waits and replaces it).
    """
    from collections import Counter

    from xeval.benchmark.settings import enumerate_settings

    out = Path(out)
    if out.exists() and not overwrite:  # fail before the build; the write checks again
        raise XevalError("exists; pass --overwrite to replace it", file=out)
    bench = build(builder, source, sample_queries=sample_queries, seed=seed, **options)
    path = bench.save(out, overwrite=overwrite)
    kinds = Counter(s.kind for s in enumerate_settings(bench))
    counts = {k: bench.manifest["counts"][k] for k in ("queries", "documents", "qrels")}
    return BuildResult(path, counts, tuple(bench.languages), dict(kinds))


def build_benchmark(
    builder: str,
    out: str | Path,
    source: str | Path | None = None,
    *,
    overwrite: bool = False,
    sample_queries: int | None = None,
    seed: int = 0,
    **options: Any,
) -> Path:
    """Build benchmark ``builder``, write it to ``out`` atomically and return ``out``."""
    return write_benchmark(
        builder,
        out,
        source,
        overwrite=overwrite,
        sample_queries=sample_queries,
        seed=seed,
        **options,
    ).path

"""LaReQA retrieval settings derived from a benchmark's pooled qrels.

- ``mono-X``      queries in X against the corpus of X;
- ``cross-X-Y``   queries in X against the corpus of Y (Y != X);
- ``multi-X``     queries in X against the pooled corpus of every language.

Each setting keeps only the qrels whose document is in its corpus, and drops queries
with no relevant item left (as LaReQA does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from xeval.benchmark.schema import Benchmark, check_lang, load_benchmark
from xeval.errors import XevalError
from xeval.tables import KINDS


@dataclass(frozen=True)
class Setting:
    """One retrieval setting: which queries, which documents, which qrels."""

    name: str
    kind: str  # "mono" | "cross" | "multi"
    query_lang: str
    doc_langs: tuple[str, ...]
    qrels: pl.DataFrame  # query_id, doc_id, relevance (only this setting's)

    @property
    def doc_lang(self) -> str:
        """The document language, or ``"all"`` for the multilingual setting."""
        return "all" if self.kind == "multi" else self.doc_langs[0]

    @property
    def query_ids(self) -> list[str]:
        return self.qrels["query_id"].unique(maintain_order=True).to_list()

    def corpus(self, bench: Benchmark) -> pl.DataFrame:
        """The documents this setting searches."""
        if self.kind == "multi":
            return bench.corpus
        return bench.corpus.filter(pl.col("lang").is_in(list(self.doc_langs)))

    def queries(self, bench: Benchmark) -> pl.DataFrame:
        """The queries this setting keeps (those with a relevant item in its corpus)."""
        return bench.queries.filter(pl.col("query_id").is_in(self.query_ids))


def setting_name(kind: str, query_lang: str, doc_lang: str | None = None) -> str:
    """``mono-X``, ``cross-X-Y`` or ``multi-X``: unambiguous, as codes never contain ``-``."""
    if kind == "mono":
        return f"mono-{query_lang}"
    if kind == "cross":
        return f"cross-{query_lang}-{doc_lang}"
    return f"multi-{query_lang}"


def enumerate_settings(
    bench: Benchmark,
    kinds: Iterable[str] = KINDS,
    languages: Iterable[str] | None = None,
) -> list[Setting]:
    """All settings of the requested kinds, ordered mono, cross, multi then by language.

    ``languages`` restricts both query and document languages (multi still pools every
    document language of the benchmark).
    """
    kinds = tuple(kinds)
    bad = sorted(set(kinds) - set(KINDS))
    if bad:
        raise XevalError(f"unknown setting kind(s) {bad}; choose from {list(KINDS)}")
    langs = sorted({check_lang(x) for x in languages} if languages else set(bench.languages))
    unknown = sorted(set(langs) - set(bench.languages))
    if unknown:
        raise XevalError(f"languages {unknown} are not in benchmark {bench.name!r}")
    q = (
        bench.qrels.filter(pl.col("relevance") > 0)
        .join(bench.queries.select("query_id", pl.col("lang").alias("qlang")), on="query_id")
        .join(bench.corpus.select("doc_id", pl.col("lang").alias("dlang")), on="doc_id")
    )
    by_pair = {
        (k[0], k[1]): g.drop("qlang", "dlang")
        for k, g in q.group_by("qlang", "dlang", maintain_order=True)
    }
    by_qlang = {k[0]: g.drop("qlang", "dlang") for k, g in q.group_by("qlang", maintain_order=True)}
    out: list[Setting] = []
    order = {k: i for i, k in enumerate(KINDS)}
    for kind in sorted(kinds, key=order.__getitem__):
        for x in langs:
            if kind == "multi":
                qr = by_qlang.get(x)
                if qr is not None and qr.height:
                    out.append(
                        Setting(
                            setting_name("multi", x),
                            "multi",
                            x,
                            tuple(bench.languages),
                            qr.sort("query_id", "doc_id"),
                        )
                    )
                continue
            targets = [x] if kind == "mono" else [y for y in langs if y != x]
            for y in targets:
                qr = by_pair.get((x, y))
                if qr is not None and qr.height:
                    out.append(
                        Setting(
                            setting_name(kind, x, y), kind, x, (y,), qr.sort("query_id", "doc_id")
                        )
                    )
    names = [s.name for s in out]
    if len(set(names)) != len(names):  # cannot happen with checked codes; never overwrite
        dup = next(n for n in names if names.count(n) > 1)
        raise XevalError(f"two settings are named {dup!r}", file=bench.path or bench.name)
    return out


@dataclass(frozen=True)
class SettingsListing:
    """A benchmark's settings with their query and qrel counts."""

    rows: tuple[tuple[str, str, int, int], ...]  # name, kind, queries, qrels

    def summary(self) -> str:
        return "\n".join(
            f"{name:20s} {kind:6s} queries={nq:6d} qrels={nr:7d}"
            for name, kind, nq, nr in self.rows
        )


def list_settings(benchmark: str | Path, kinds: Iterable[str] = KINDS) -> SettingsListing:
    """Load the benchmark directory ``benchmark`` and list its settings of ``kinds``."""
    bench = load_benchmark(benchmark)
    rows = tuple(
        (s.name, s.kind, len(s.query_ids), s.qrels.height) for s in enumerate_settings(bench, kinds)
    )
    return SettingsListing(rows)

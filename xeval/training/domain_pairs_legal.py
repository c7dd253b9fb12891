"""Legal-domain training pairs (heading -> provision) from statutes no benchmark uses.

- ``justice_canada_pairs``: sections of the Canadian Acts that the ``justice-canada``
  benchmark (built with the same ``size``/``seed``) does not contain;
- ``finlex_pairs``: sections of the 2023 *amending* acts (the ``finlex`` benchmark holds
  the base acts only).

Both are document-disjoint from their benchmark (no shared Act or statute) and text-
disjoint: a unit whose heading or text (normalised) equals any heading or text of the
benchmark's units, in any language, is dropped (an amending act restating a base-act
section, a stock "Her Majesty is bound" section in two Acts). Headings that are not
unique within the pool ("Definitions", "Voimaantulo") are dropped as in the benchmarks,
since the same query with different passages would make false in-batch negatives.
Each kept unit gives one row per ordered language pair, X == X included.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from xeval.benchmark.builders import finlex as fl
from xeval.benchmark.builders import justice_canada as jc
from xeval.benchmark.builders._legal import Unit, norm_key, quality_filter, query_units
from xeval.sources import resolve_source
from xeval.tables import PAIRS


def _keys(units: Sequence[Unit], langs: Sequence[str]) -> set[str]:
    keys = set()
    for u in units:
        for lang in langs:
            keys.add(norm_key(u.text[lang]))
            if u.heading.get(lang):
                keys.add(norm_key(u.heading[lang] or ""))
    return keys


def _pairs(
    units: Sequence[Unit],
    exclude: set[str],
    langs: Sequence[str],
    source: str,
    head_bounds: tuple[int, int],
    max_units: int | None,
    seed: int,
) -> pl.DataFrame:
    units = [
        u
        for u in units
        if not any(
            norm_key(u.text[lang]) in exclude or norm_key(u.heading.get(lang) or "") in exclude
            for lang in langs
        )
    ]
    qunits, _ = query_units(units, langs, *head_bounds)
    chosen = qunits[langs[0]]
    if max_units is not None and max_units < len(chosen):
        chosen = sorted(random.Random(seed).sample(chosen, max_units), key=lambda u: u.unit_id)
    rows = [
        {
            "query": u.heading[ql],
            "passage": u.text[pl_],
            "query_lang": ql,
            "passage_lang": pl_,
            "unit_id": u.unit_id,
            "source": source,
        }
        for u in chosen
        for ql in langs
        for pl_ in langs
    ]
    return pl.DataFrame(rows, schema=PAIRS.columns)


def justice_canada_pairs(
    source: str | Path | None = None,
    max_units: int | None = None,
    *,
    size: int = jc.DEFAULT_SIZE,
    seed: int = jc.DEFAULT_SEED,
) -> pl.DataFrame:
    """Pairs from the Acts the ``justice-canada`` benchmark (``size``, ``seed``) leaves out.

    ``max_units`` keeps a seeded sample of that many sections (4 rows each).
    """
    acts = jc.read_acts(resolve_source(jc.SOURCE, source))
    bench_acts, bench_units, _ = jc.benchmark_units(acts, size, seed)
    others = sorted(set(acts["en"]) - set(bench_acts))
    units, _ = quality_filter(jc.aligned_units(acts, others), jc.LANGS, jc.MIN_CHARS, jc.MAX_CHARS)
    return _pairs(
        units,
        _keys(bench_units, jc.LANGS),
        jc.LANGS,
        jc.NAME,
        (jc.HEAD_MIN, jc.HEAD_MAX),
        max_units,
        seed,
    )


def finlex_pairs(source: str | Path | None = None, max_units: int | None = None) -> pl.DataFrame:
    """Pairs from the amending acts of Finlex 2023 (the benchmark has the base acts)."""
    statutes = fl.read_statutes(resolve_source(fl.SOURCE, source))
    _, bench_units, _ = fl.benchmark_units(statutes)
    _, amending = fl.split_statutes(statutes)
    units, _ = quality_filter(
        fl.aligned_units(statutes, amending), fl.LANGS, fl.MIN_CHARS, fl.MAX_CHARS
    )
    return _pairs(
        units,
        _keys(bench_units, fl.LANGS),
        fl.LANGS,
        fl.NAME,
        (fl.HEAD_MIN, fl.HEAD_MAX),
        max_units,
        0,
    )


PAIR_SOURCES = {"justice-canada": justice_canada_pairs, "finlex": finlex_pairs}

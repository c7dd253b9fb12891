"""Compare systems unit by unit: every test, effect size and corrected p-value.

Unit of pairing (``unit``). A setting group (mono / cross / multi) holds many settings; one
question of a parallel benchmark appears in every language, and each of its queries in
several settings. Those cells are not independent evidence, so the default pairs
*question units*: each system's values of one ``unit_id`` (the benchmark's queries table)
are averaged over every language and setting of the group first, and n is the number of
units. Without unit ids the default pairs query ids (each averaged over the group's
settings); ``unit="observation"`` pairs (setting, query_id) cells (n too large; kept for
comparison with earlier reports). With ``by="pair"`` each setting is tested on its own.

Seeds: replicas of a system (runs identical but for the seed) enter as their per-unit
mean; the spread of a system's score over its seeds (std of the replicas' macro-averages)
is reported beside each difference, and a warning is raised when a difference between two
systems is smaller than that spread. With ``paired-t`` and replicas on either side the test
counts the seeds too (:func:`xeval.compare.stats.seed_aware_t`: unit and seed variance,
Welch-Satterthwaite df), and so does the t interval; the other tests see the units only.

Intervals: a t-based 95 % interval of the mean difference and a paired BCa bootstrap
interval over the same units (``scipy.stats.bootstrap``, seeded). With seed replicas on
either side, whatever the test, the bootstrap resamples the seeds too
(:func:`xeval.compare.stats.seed_bootstrap_ci`: units paired, each system's seeds drawn
on their own, percentile interval).

Direction: ``delta`` is B - A (B is the non-baseline, or later, system); for metrics where
lower is better (``LB``, language bias) a negative delta means B is better, and wins /
ties / losses count units where B is better / equal / worse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xeval.compare import stats
from xeval.compare.load import (
    System,
    check_comparable,
    group_seeds,
    load_runs,
    unit_ids,
)
from xeval.compare.metrics import higher_is_better
from xeval.errors import XevalError
from xeval.tables import KINDS

BY = ("group", "pair")
UNITS = ("unit", "query", "observation")
PAIRING = {
    "unit": "question unit (unit_id, averaged over the languages and settings of the group)",
    "query": "query id (averaged over the settings of the group)",
    "observation": "(setting, query) cell",
}
#: the pairing unit in the plural, as reports count them
PLURAL = {"unit": "question units", "query": "queries", "observation": "cells"}


@dataclass(frozen=True)
class CompareOptions:
    """What to compare and how; the defaults are the CLI's (``unit=None``: question units
    when the benchmark has unit ids, else query ids)."""

    test: str = "paired-t"
    metrics: tuple[str, ...] = ("MRR@10",)
    baseline: str | None = None
    by: str = "group"
    unit: str | None = None
    correction: str = "holm"
    alpha: float = 0.05
    permutations: int = 10_000
    bootstrap: int = 9999
    seed: int = 0

    def __post_init__(self) -> None:
        checks = (
            (self.test in stats.TESTS, f"unknown test {self.test!r}; choose one of {stats.TESTS}"),
            (
                self.correction in stats.CORRECTIONS,
                f"unknown correction {self.correction!r}; choose one of {stats.CORRECTIONS}",
            ),
            (self.by in BY, f"--by must be one of {BY}, not {self.by!r}"),
            (self.unit in (None, *UNITS), f"--unit must be one of {UNITS}, not {self.unit!r}"),
            (0 < self.alpha < 1, f"alpha must be in (0, 1), not {self.alpha}"),
            (bool(self.metrics), "name at least one metric"),
            (self.permutations >= 1, "permutations must be at least 1"),
            (self.bootstrap >= 0, "bootstrap resamples must be >= 0 (0: no bootstrap)"),
        )
        for ok, message in checks:
            if not ok:
                raise XevalError(message)


@dataclass
class Comparison:
    """The outcome of one ``xeval compare`` call."""

    options: CompareOptions
    systems: list[System]
    results: pl.DataFrame  # one row per test
    scores: pl.DataFrame  # system x unit x metric: mean (and std over seed replicas)
    setting_scores: pl.DataFrame  # system x setting x metric (every loaded metric)
    group_scores: pl.DataFrame  # system x setting group x metric, as ``scores`` with by=group
    source: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    units: pl.DataFrame | None = field(default=None, repr=False)  # query_id -> unit_id

    @property
    def baseline(self) -> str | None:
        return self.options.baseline

    @property
    def unit(self) -> str:
        """The pairing unit actually used (``unit``, ``query`` or ``observation``)."""
        return self.options.unit or "query"

    @property
    def n_units(self) -> int:
        """The largest number of paired units of any test."""
        return int(self.results["n"].max()) if self.results.height else 0

    def higher_is_better(self, metric: str) -> bool:
        return higher_is_better(metric)

    def summary(self) -> str:
        """One line: systems, tests, pairing unit and n, significant count, warnings."""
        sig = int(self.results["significant"].sum())
        warn = f"; {len(self.warnings)} warning(s)" if self.warnings else ""
        return (
            f"{len(self.systems)} systems, {self.results.height} {self.options.test} tests "
            f"over {PLURAL[self.unit]} (n ≤ {self.n_units}), {self.options.correction}-corrected: "
            f"{sig} significant at α = {self.options.alpha}{warn}"
        )

    def __repr__(self) -> str:
        names = ", ".join(s.name for s in self.systems)
        return f"Comparison({names}; {self.summary()})"


def compare_folder(paths: str | Path | Sequence[str | Path], options: CompareOptions) -> Comparison:
    """Load every evaluated run in ``paths`` (folders of runs, run folders or globs), check
    comparability, choose the pairing unit and compare."""
    wanted = set(options.metrics) | {"LB"}  # LB feeds the language-bias table
    runs = load_runs(paths, wanted)
    check_comparable(runs, options.metrics)
    systems = group_seeds(runs)
    units = unit_ids(runs[0])
    if options.unit == "unit" and units is None:
        bench = (runs[0].meta.get("benchmark") or {}).get("path")
        raise XevalError(
            "--unit unit needs the benchmark's unit ids; its queries.parquet has none or "
            "is not found",
            file=bench,
        )
    if options.unit is None:
        options = replace(options, unit="unit" if units is not None else "query")
    comp = compare_systems(systems, options, units)
    comp.source = _source(paths)
    return comp


def _source(paths: str | Path | Sequence[str | Path]) -> Path | None:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    return Path(items[0]) if len(items) == 1 and "*" not in str(items[0]) else None


def resolve_baseline(systems: Sequence[System], name: str) -> str:
    """The system a ``--baseline`` names: by system name, run label or run folder name."""
    for s in systems:
        if name == s.name:
            return s.name
    hits = {s.name for s in systems for r in s.runs if name in (r.label, r.path.name)}
    if len(hits) == 1:
        return hits.pop()
    known = ", ".join(repr(s.name) for s in systems)
    if hits:
        raise XevalError(f"baseline {name!r} is ambiguous: {sorted(hits)}")
    raise XevalError(f"baseline {name!r} is none of the systems: {known}")


def compare_systems(
    systems: Sequence[System], options: CompareOptions, units: pl.DataFrame | None = None
) -> Comparison:
    """Run every requested comparison and correct the p-values across all of them.

    ``units`` maps ``query_id`` to ``unit_id`` (needed for ``unit="unit"``).
    """
    systems = list(systems)
    if len(systems) < 2:
        names = [s.name for s in systems]
        raise XevalError(
            f"need at least two systems to compare; found {len(systems)} ({names}): runs "
            "that differ only by seed are one system"
        )
    if options.unit is None:
        options = replace(options, unit="unit" if units is not None else "query")
    if options.unit == "unit" and units is None:
        raise XevalError("unit='unit' needs a query_id -> unit_id table")
    systems, pairs, options = _order(systems, options)
    scores = _with_unit_ci(_unit_scores(systems, options), systems, options, units)
    rows: list[dict[str, Any]] = []
    for metric in options.metrics:
        for unit in _units(systems[0].per_query, metric, options.by):
            matrix = _paired_matrix(systems, metric, unit, options, units)
            seeded = _replica_matrices(systems, metric, unit, options, units)
            rows.extend(_test_unit(matrix, systems, pairs, metric, unit, options, seeded))
    if not rows:
        raise XevalError(f"nothing to compare: metrics {list(options.metrics)} have no values")
    results = _with_seed_spread(_correct(pl.DataFrame(rows), options), scores)
    group_opts = replace(options, by="group")
    groups = (
        scores
        if options.by == "group"
        else _with_unit_ci(_unit_scores(systems, group_opts), systems, group_opts, units)
    )
    comp = Comparison(options, systems, results, scores, _setting_scores(systems), groups)
    comp.warnings = seed_warnings(results)
    comp.units = units
    return comp


def _order(
    systems: list[System], options: CompareOptions
) -> tuple[list[System], list[tuple[int, int]], CompareOptions]:
    """Baseline first with (0, j) pairs, else every pair in system order."""
    if options.baseline is None:
        n = len(systems)
        return systems, [(i, j) for i in range(n) for j in range(i + 1, n)], options
    base = resolve_baseline(systems, options.baseline)
    systems = sorted(systems, key=lambda s: s.name != base)  # stable: others keep order
    pairs = [(0, j) for j in range(1, len(systems))]
    return systems, pairs, replace(options, baseline=base)


def _correct(results: pl.DataFrame, options: CompareOptions) -> pl.DataFrame:
    adjusted = stats.adjust(results["p_value"].to_numpy(), options.correction)
    return results.with_columns(
        pl.Series("p_adjusted", adjusted),
        pl.lit(options.correction).alias("correction"),
        pl.lit(options.alpha).alias("alpha"),
    ).with_columns((pl.col("p_adjusted") <= options.alpha).alias("significant"))


def _with_seed_spread(results: pl.DataFrame, scores: pl.DataFrame) -> pl.DataFrame:
    """Add each side's std over seed replicas (null with one run) and ``seed_sd``, the
    larger of the two; ``below_seed_sd`` is true when |delta| is smaller than it."""
    sd = scores.select("system", "unit", "metric", "std")
    for side in ("a", "b"):
        results = results.join(
            sd.rename({"system": f"system_{side}", "std": f"seed_sd_{side}"}),
            on=[f"system_{side}", "unit", "metric"],
            how="left",
        )
    return results.with_columns(
        pl.max_horizontal("seed_sd_a", "seed_sd_b").alias("seed_sd")
    ).with_columns(
        (pl.col("seed_sd").is_not_null() & (pl.col("delta").abs() < pl.col("seed_sd"))).alias(
            "below_seed_sd"
        )
    )


def seed_warnings(results: pl.DataFrame) -> list[str]:
    """One warning per test whose difference is smaller than a system's seed spread."""
    out = []
    for r in results.filter(pl.col("below_seed_sd")).iter_rows(named=True):
        out.append(
            f"{r['metric']} {r['unit']}: {r['system_b']} − {r['system_a']} = "
            f"{r['delta']:+.4g} is smaller than the spread between seeds of one system "
            f"(std {r['seed_sd']:.4g}); more seeds are needed to tell them apart"
        )
    return out


def _units(df: pl.DataFrame, metric: str, by: str) -> list[dict[str, str]]:
    """The groups or settings that have values of ``metric``, in a stable order."""
    sub = df.filter(pl.col("metric") == metric)
    if by == "group":
        kinds = set(sub["kind"].unique())
        ordered = [k for k in KINDS if k in kinds] + sorted(kinds - set(KINDS))
        return [{"unit": k, "kind": k, "query_lang": "", "doc_lang": ""} for k in ordered]
    settings = sub.select("setting", "kind", "query_lang", "doc_lang").unique()
    settings = settings.with_columns(
        pl.col("kind")
        .replace_strict({k: i for i, k in enumerate(KINDS)}, default=9)
        .alias("_order")
    ).sort("_order", "query_lang", "doc_lang", "setting")
    return [
        {
            "unit": r["setting"],
            "kind": r["kind"],
            "query_lang": r["query_lang"],
            "doc_lang": r["doc_lang"],
        }
        for r in settings.iter_rows(named=True)
    ]


def _select(df: pl.DataFrame, metric: str, unit: dict[str, str], by: str) -> pl.DataFrame:
    col = "kind" if by == "group" else "setting"
    return df.filter((pl.col("metric") == metric) & (pl.col(col) == unit["unit"]))


def paired_values(
    per_query: pl.DataFrame, unit: str, units: pl.DataFrame | None = None
) -> pl.DataFrame:
    """``key, value`` of one system in one group or setting, one row per pairing unit,
    sorted by key: cells (``observation``), query-id means or question-unit means."""
    if unit == "observation":
        return per_query.select(
            pl.concat_str("setting", "query_id", separator="\t").alias("key"), "value"
        ).sort("key")
    if unit == "unit":
        assert units is not None
        joined = per_query.join(units, on="query_id", how="left")
        missing = joined.filter(pl.col("unit_id").is_null())
        if missing.height:
            raise XevalError(
                f"query {missing['query_id'][0]!r} has no unit_id in the benchmark's queries "
                "table; the run and the benchmark do not match"
            )
        per_query = joined.drop("query_id").rename({"unit_id": "query_id"})
    return (
        per_query.group_by("query_id")
        .agg(pl.col("value").mean())
        .rename({"query_id": "key"})
        .sort("key")
    )


def _unit_values(
    per_query: pl.DataFrame,
    metric: str,
    unit: dict[str, str],
    options: CompareOptions,
    units: pl.DataFrame | None,
) -> pl.DataFrame:
    """``key, value`` per pairing unit of one run or system in one group or setting."""
    return paired_values(_select(per_query, metric, unit, options.by), str(options.unit), units)


def _same_keys(vals: pl.DataFrame, keys: pl.Series, who: str, first: str, where: str) -> None:
    if not vals["key"].equals(keys):
        raise XevalError(
            f"{who}: its queries for {where} differ from {first}'s; the runs are not comparable"
        )


def _paired_matrix(
    systems: Sequence[System],
    metric: str,
    unit: dict[str, str],
    options: CompareOptions,
    units: pl.DataFrame | None,
) -> np.ndarray:
    """Rows = pairing units (see module doc), columns = systems."""
    first = _unit_values(systems[0].per_query, metric, unit, options, units)
    cols = [first["value"].to_numpy()]
    for s in systems[1:]:
        vals = _unit_values(s.per_query, metric, unit, options, units)
        _same_keys(vals, first["key"], s.name, systems[0].name, f"{metric} in {unit['unit']}")
        cols.append(vals["value"].to_numpy())
    return np.column_stack(cols)


def _replica_matrices(
    systems: Sequence[System],
    metric: str,
    unit: dict[str, str],
    options: CompareOptions,
    units: pl.DataFrame | None,
) -> list[np.ndarray] | None:
    """Per system a (replicas x pairing units) matrix, for the seed-aware paired t and
    bootstrap; None when no system has replicas."""
    if all(s.n_runs < 2 for s in systems):
        return None
    keys = _unit_values(systems[0].per_query, metric, unit, options, units)["key"]
    out = []
    for s in systems:
        rows = []
        for r in s.runs:
            vals = _unit_values(r.per_query, metric, unit, options, units)
            _same_keys(vals, keys, str(r.path), systems[0].name, f"{metric} in {unit['unit']}")
            rows.append(vals["value"].to_numpy())
        out.append(np.vstack(rows))
    return out


def _pair_test(
    a: np.ndarray, b: np.ndarray, options: CompareOptions, tukey: Any, ij: tuple[int, int]
) -> stats.TestResult:
    if options.test == "paired-t":
        return stats.paired_t(a, b)
    if options.test == "wilcoxon":
        return stats.wilcoxon(a, b)
    if options.test == "fisher":
        return stats.fisher_randomization(a, b, options.permutations, options.seed)
    i, j = ij
    return stats.TestResult(float(tukey[0][j, i]), float(tukey[1][i, j]), "Tukey HSD")


def _test_unit(
    matrix: np.ndarray,
    systems: Sequence[System],
    pairs: Sequence[tuple[int, int]],
    metric: str,
    unit: dict[str, str],
    options: CompareOptions,
    seeded: list[np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    hib = higher_is_better(metric)
    tukey = stats.tukey_hsd(matrix.T) if options.test == "tukey" else None
    rows = []
    for i, j in pairs:
        a, b = matrix[:, i], matrix[:, j]
        res = _pair_test(a, b, options, tukey, (i, j))
        delta, lo, hi = stats.mean_difference_ci(a, b)
        seeds = (len(seeded[i]), len(seeded[j])) if seeded is not None else (1, 1)
        if seeded is not None and options.test == "paired-t" and max(seeds) >= 2:
            sa = stats.seed_aware_t(seeded[i], seeded[j])
            k = f"{seeds[0]} v {seeds[1]} seeds"
            t = sa.diff / sa.se if sa.se > 0 else 0.0
            res = stats.TestResult(t, sa.p, f"seed-aware t ({k}, df {sa.df:.1f})")
            lo, hi = sa.ci_low, sa.ci_high
        if seeded is not None:  # units and seeds resampled; one seed each: paired BCa
            b_lo, b_hi = stats.seed_bootstrap_ci(
                seeded[i], seeded[j], options.bootstrap, options.seed
            )
        else:
            b_lo, b_hi = stats.bootstrap_ci(a, b, options.bootstrap, options.seed)
        w, t, l_ = stats.win_tie_loss(a, b, higher_is_better=hib)
        better = "=" if abs(delta) <= 1e-12 else ("B" if (delta > 0) == hib else "A")
        rows.append(
            {
                "metric": metric,
                "by": options.by,
                **unit,
                "system_a": systems[i].name,
                "system_b": systems[j].name,
                "pairing": options.unit,
                "n": matrix.shape[0],
                "mean_a": float(a.mean()),
                "mean_b": float(b.mean()),
                "delta": delta,
                "ci_low": lo,
                "ci_high": hi,
                "boot_low": b_lo,
                "boot_high": b_hi,
                "wins": w,
                "ties": t,
                "losses": l_,
                "better": better,
                "test": options.test,
                "statistic": res.statistic,
                "p_value": res.p_value,
                "method": res.method,
            }
        )
    return rows


def _per_run_setting_means(system: System) -> pl.DataFrame:
    frames = []
    for k, run in enumerate(system.runs):
        frames.append(
            run.per_query.group_by("setting", "kind", "query_lang", "doc_lang", "metric")
            .agg(pl.col("value").mean(), pl.len().alias("n_queries"))
            .with_columns(pl.lit(k).alias("replica"))
        )
    return pl.concat(frames)


def _setting_scores(systems: Sequence[System]) -> pl.DataFrame:
    """Per system, setting and metric: mean over queries, then mean/std over replicas."""
    out = []
    for s in systems:
        per = _per_run_setting_means(s)
        out.append(
            per.group_by("setting", "kind", "query_lang", "doc_lang", "metric")
            .agg(
                pl.col("value").mean().alias("mean"),
                pl.col("value").std().alias("std"),
                pl.col("n_queries").first(),
                pl.len().alias("n_runs"),
            )
            .with_columns(pl.lit(s.name).alias("system"))
        )
    return (
        pl.concat(out)
        .select(
            "system",
            "setting",
            "kind",
            "query_lang",
            "doc_lang",
            "metric",
            "mean",
            "std",
            "n_runs",
            "n_queries",
        )
        .sort("system", "metric", "kind", "query_lang", "doc_lang")
    )


def _unit_scores(systems: Sequence[System], options: CompareOptions) -> pl.DataFrame:
    """Scores per unit: macro-average over the unit's settings, mean ± std over replicas."""
    out = []
    for s in systems:
        per = _per_run_setting_means(s).filter(pl.col("metric").is_in(list(options.metrics)))
        if options.by == "group":
            per = (
                per.group_by("kind", "metric", "replica")
                .agg(pl.col("value").mean(), pl.col("setting").n_unique().alias("n_settings"))
                .with_columns(
                    pl.col("kind").alias("unit"),
                    pl.lit("").alias("query_lang"),
                    pl.lit("").alias("doc_lang"),
                )
            )
        else:
            per = per.with_columns(
                pl.col("setting").alias("unit"), pl.lit(1, dtype=pl.UInt32).alias("n_settings")
            )
        out.append(
            per.group_by("unit", "kind", "query_lang", "doc_lang", "metric")
            .agg(
                pl.col("value").mean().alias("mean"),
                pl.col("value").std().alias("std"),
                pl.len().alias("n_runs"),
                pl.col("n_settings").first(),
            )
            .with_columns(pl.lit(s.name).alias("system"))
        )
    return pl.concat(out).select(
        "system",
        "unit",
        "kind",
        "query_lang",
        "doc_lang",
        "metric",
        "mean",
        "std",
        "n_runs",
        "n_settings",
    )


def _with_unit_ci(
    scores: pl.DataFrame,
    systems: Sequence[System],
    options: CompareOptions,
    units: pl.DataFrame | None,
) -> pl.DataFrame:
    """Add ``ci_low, ci_high``: a t-based 95 % interval of each system's score over the
    pairing units (the mean of the unit means; what the bar charts draw)."""
    rows = []
    for s in systems:
        for metric in options.metrics:
            for unit in _units(s.per_query, metric, options.by):
                sub = _select(s.per_query, metric, unit, options.by)
                vals = paired_values(sub, str(options.unit), units)["value"].to_numpy()
                _, lo, hi = stats.mean_difference_ci(np.zeros_like(vals), vals)
                rows.append((s.name, unit["unit"], metric, lo, hi))
    ci = pl.DataFrame(rows, schema=["system", "unit", "metric", "ci_low", "ci_high"], orient="row")
    return scores.join(ci, on=["system", "unit", "metric"], how="left")


def setting_tests(comp: Comparison, metric: str, a: str, b: str) -> pl.DataFrame:
    """Per setting, B − A of one metric tested on the comparison's pairing unit, corrected
    across the settings (what a difference map marks): ``query_lang, doc_lang, delta,
    p_adjusted, significant``. With ``by="pair"`` these are the comparison's own tests."""
    o = comp.options
    if o.by == "pair":
        res = comp.results.filter(
            (pl.col("metric") == metric) & (pl.col("system_a") == a) & (pl.col("system_b") == b)
        )
        return res.select("query_lang", "doc_lang", "delta", "p_adjusted", "significant")
    sys_ = {s.name: s for s in comp.systems}
    rows = []
    for unit in _units(sys_[a].per_query, metric, "pair"):
        va, vb = (
            paired_values(_select(sys_[x].per_query, metric, unit, "pair"), comp.unit, comp.units)
            for x in (a, b)
        )
        res = stats.paired_t(va["value"].to_numpy(), vb["value"].to_numpy())
        delta = float((vb["value"] - va["value"]).mean())
        rows.append((unit["query_lang"], unit["doc_lang"], delta, res.p_value))
    df = pl.DataFrame(rows, schema=["query_lang", "doc_lang", "delta", "p"], orient="row")
    adjusted = stats.adjust(df["p"].to_numpy(), o.correction)
    return df.drop("p").with_columns(
        pl.Series("p_adjusted", adjusted), (pl.Series(adjusted) <= o.alpha).alias("significant")
    )

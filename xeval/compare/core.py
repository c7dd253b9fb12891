"""Compare systems query by query: every test, effect size and corrected p-value.

Unit of pairing. A setting group (mono / cross / multi) holds many settings, and one query
id appears in several of them (``en-q1`` is a query of cross-en-de, cross-en-fr, ...). By
default (``unit="observation"``) the paired observations of a group are its
(setting, query_id) cells: system A's value of a query in a setting is paired with system
B's value of the same query in the same setting, so the test's mean difference is the mean
over every cell of the group (equal to the macro-average difference when the settings
hold equally many queries, as in XQuAD-R). Cells of one query in several settings are not
independent, which makes n look larger than it is; ``unit="query"`` first averages each
query id over the group's settings and pairs those means (fewer, more independent units, a
more conservative test). With ``by="pair"`` each setting (one query language x document
language pair) is tested on its own and the two units coincide.

Direction: ``delta`` is B - A (B is the non-baseline, or later, system); for metrics where
lower is better (``LB``, language bias) a negative delta means B is better, and wins /
ties / losses count cells where B is better / equal / worse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xeval.compare import stats
from xeval.compare.load import System, check_comparable, group_seeds, load_runs
from xeval.errors import XevalError
from xeval.tables import KINDS

LOWER_IS_BETTER = frozenset({"LB"})
BY = ("group", "pair")
UNITS = ("observation", "query")


@dataclass(frozen=True)
class CompareOptions:
    """What to compare and how; the defaults are the CLI's."""

    test: str = "paired-t"
    metrics: tuple[str, ...] = ("MRR@10",)
    baseline: str | None = None
    by: str = "group"
    unit: str = "observation"
    correction: str = "holm"
    alpha: float = 0.05
    permutations: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.test not in stats.TESTS:
            raise XevalError(f"unknown test {self.test!r}; choose one of {stats.TESTS}")
        if self.correction not in stats.CORRECTIONS:
            raise XevalError(
                f"unknown correction {self.correction!r}; choose one of {stats.CORRECTIONS}"
            )
        if self.by not in BY:
            raise XevalError(f"--by must be one of {BY}, not {self.by!r}")
        if self.unit not in UNITS:
            raise XevalError(f"--unit must be one of {UNITS}, not {self.unit!r}")
        if not 0 < self.alpha < 1:
            raise XevalError(f"alpha must be in (0, 1), not {self.alpha}")
        if not self.metrics:
            raise XevalError("name at least one metric")
        if self.permutations < 1:
            raise XevalError("permutations must be at least 1")


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

    @property
    def baseline(self) -> str | None:
        return self.options.baseline

    def higher_is_better(self, metric: str) -> bool:
        return metric not in LOWER_IS_BETTER


def compare_folder(root: str | Path, options: CompareOptions) -> Comparison:
    """Load every evaluated run under ``root``, check comparability and compare."""
    wanted = set(options.metrics) | LOWER_IS_BETTER  # LB feeds the language-bias table
    runs = load_runs(root, wanted)
    check_comparable(runs, options.metrics)
    systems = group_seeds(runs)
    comp = compare_systems(systems, options)
    comp.source = Path(root)
    return comp


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


def compare_systems(systems: Sequence[System], options: CompareOptions) -> Comparison:
    """Run every requested comparison and correct the p-values across all of them."""
    systems = list(systems)
    if len(systems) < 2:
        names = [s.name for s in systems]
        raise XevalError(
            f"need at least two systems to compare; found {len(systems)} ({names}): runs "
            "that differ only by seed are one system"
        )
    if options.baseline is not None:
        base = resolve_baseline(systems, options.baseline)
        options = CompareOptions(**{**asdict(options), "baseline": base})
        systems.sort(key=lambda s: s.name != base)  # baseline first, others in order
        pairs = [(0, j) for j in range(1, len(systems))]
    else:
        pairs = [(i, j) for i in range(len(systems)) for j in range(i + 1, len(systems))]

    setting_scores = _setting_scores(systems)
    rows: list[dict[str, Any]] = []
    for metric in options.metrics:
        for unit in _units(systems[0].per_query, metric, options.by):
            matrix, n = _paired_matrix(systems, metric, unit, options)
            rows.extend(_test_unit(matrix, n, systems, pairs, metric, unit, options))
    if not rows:
        raise XevalError(f"nothing to compare: metrics {list(options.metrics)} have no values")
    results = pl.DataFrame(rows)
    adjusted = stats.adjust(results["p_value"].to_numpy(), options.correction)
    results = results.with_columns(
        pl.Series("p_adjusted", adjusted),
        pl.lit(options.correction).alias("correction"),
        pl.lit(options.alpha).alias("alpha"),
    ).with_columns((pl.col("p_adjusted") <= options.alpha).alias("significant"))
    scores = _unit_scores(systems, options)
    groups = (
        scores if options.by == "group" else _unit_scores(systems, replace(options, by="group"))
    )
    return Comparison(options, systems, results, scores, setting_scores, groups)


def _units(df: pl.DataFrame, metric: str, by: str) -> list[dict[str, str]]:
    """The groups or settings that have values of ``metric``, in a stable order."""
    sub = df.filter(pl.col("metric") == metric)
    if by == "group":
        kinds = set(sub["kind"].unique())
        return [
            {"unit": k, "kind": k, "query_lang": "", "doc_lang": ""} for k in KINDS if k in kinds
        ] + [
            {"unit": k, "kind": k, "query_lang": "", "doc_lang": ""}
            for k in sorted(kinds - set(KINDS))
        ]
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


def _paired_matrix(
    systems: Sequence[System], metric: str, unit: dict[str, str], options: CompareOptions
) -> tuple[np.ndarray, int]:
    """Rows = paired observations (see module doc), columns = systems."""
    cols: list[np.ndarray] = []
    keys: pl.DataFrame | None = None
    for s in systems:
        sub = _select(s.per_query, metric, unit, options.by)
        if options.unit == "query":
            sub = sub.group_by("query_id").agg(pl.col("value").mean()).sort("query_id")
            k = sub.select("query_id")
        else:
            sub = sub.sort("setting", "query_id")
            k = sub.select("setting", "query_id")
        if keys is None:
            keys = k
        elif not k.equals(keys):
            raise XevalError(
                f"{s.name}: its queries for {metric} in {unit['unit']} differ from "
                f"{systems[0].name}'s; the runs are not comparable"
            )
        cols.append(sub["value"].to_numpy())
    matrix = np.column_stack(cols)
    return matrix, matrix.shape[0]


def _test_unit(
    matrix: np.ndarray,
    n: int,
    systems: Sequence[System],
    pairs: Sequence[tuple[int, int]],
    metric: str,
    unit: dict[str, str],
    options: CompareOptions,
) -> list[dict[str, Any]]:
    hib = metric not in LOWER_IS_BETTER
    tukey = stats.tukey_hsd(matrix.T) if options.test == "tukey" else None
    rows = []
    for i, j in pairs:
        a, b = matrix[:, i], matrix[:, j]
        if options.test == "paired-t":
            res = stats.paired_t(a, b)
        elif options.test == "wilcoxon":
            res = stats.wilcoxon(a, b)
        elif options.test == "fisher":
            res = stats.fisher_randomization(a, b, options.permutations, options.seed)
        else:
            assert tukey is not None
            res = stats.TestResult(
                float(tukey[0][j, i]), float(tukey[1][i, j]), f"Tukey HSD over {len(systems)}"
            )
        delta, lo, hi = stats.mean_difference_ci(a, b)
        w, t, l_ = stats.win_tie_loss(a, b, higher_is_better=hib)
        better = "=" if abs(delta) <= 1e-12 else ("B" if (delta > 0) == hib else "A")
        rows.append(
            {
                "metric": metric,
                "by": options.by,
                "unit": unit["unit"],
                "kind": unit["kind"],
                "query_lang": unit["query_lang"],
                "doc_lang": unit["doc_lang"],
                "system_a": systems[i].name,
                "system_b": systems[j].name,
                "n": n,
                "mean_a": float(a.mean()),
                "mean_b": float(b.mean()),
                "delta": delta,
                "ci_low": lo,
                "ci_high": hi,
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

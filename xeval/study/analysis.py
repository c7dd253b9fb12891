"""The numbers of a study report, from the store's per-unit scores alone.

- headline: per (benchmark, kind, group, metric) the mean over seeds of the seed's
  score (mean over query languages of the mean over units) and the seed spread (SD);
- tests: per comparison (hybrid vs X-X / X-Y / base, X-X and X-Y vs base) on question
  units: each unit's score is averaged over its query languages, then over the seeds of
  a system, and the two systems are compared by a paired t-test on the units both hold
  (:func:`xeval.compare.stats.paired_t`); Holm across every test of the report;
  effect = mean difference with a 95 % bootstrap CI over units
  (``scipy.stats.bootstrap``, percentile, 1,000 resamples, seed 0);
- verdict per (training source, domain), by :data:`VERDICT_RULE`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats as sst

from xeval.compare.stats import holm, paired_t
from xeval.study.stages import METRICS
from xeval.tables import KINDS

DECIDING = {"mono": "MRR@10", "cross": "MRR@10", "multi": "MAP"}
MARGIN = 0.01
BOOTSTRAP_RESAMPLES = 1000
VERDICT_RULE = (
    f"For each benchmark of the domain and each setting kind (metric: MRR@10 for mono and "
    f"cross, MAP for multi), hybrid is compared with X-X and with X-Y on question units. "
    f"**contradicts**: hybrid is worse than X-X or X-Y somewhere with Holm p < 0.05 and the "
    f"whole 95 % CI below −{MARGIN}. **supports**: not contradicted, every CI lower bound "
    f"≥ −{MARGIN} (hybrid at least as good as both, up to the margin), and hybrid better "
    f"than at least one of them somewhere with Holm p < 0.05. **inconclusive**: otherwise. "
    f"**incomplete**: a planned cell is missing (every seed of hybrid, X-X and X-Y on every "
    f"benchmark of the domain): no verdict from part of the seeds."
)


def group_of(system: str, seed: int | None) -> str:
    """``mlqa-hybrid-a0.5-s2`` -> ``mlqa-hybrid-a0.5``; baselines are their own group."""
    return system.rsplit("-s", 1)[0] if seed is not None else system


def with_groups(scores: pl.DataFrame) -> pl.DataFrame:
    return scores.with_columns(
        group=pl.when(pl.col("seed").is_null())
        .then(pl.col("system"))
        .otherwise(pl.col("system").str.replace(r"-s\d+$", ""))
    )


def headline(scores: pl.DataFrame) -> pl.DataFrame:
    """benchmark, kind, group, metric, mean (over seeds), sd (over seeds), n_seeds."""
    long = scores.unpivot(
        index=["benchmark", "kind", "group", "system", "query_lang", "unit_id"],
        on=list(METRICS),
        variable_name="metric",
    ).drop_nulls("value")
    per_seed = (
        long.group_by("benchmark", "kind", "group", "system", "metric", "query_lang")
        .agg(pl.col("value").mean())
        .group_by("benchmark", "kind", "group", "system", "metric")
        .agg(pl.col("value").mean())
    )
    return (
        per_seed.group_by("benchmark", "kind", "group", "metric")
        .agg(
            mean=pl.col("value").mean(),
            sd=pl.col("value").std(),
            n_seeds=pl.len(),
        )
        .sort("benchmark", "kind", "group", "metric")
    )


def unit_scores(scores: pl.DataFrame) -> pl.DataFrame:
    """benchmark, kind, group, unit_id, metric columns: over query languages, then seeds."""
    agg = [pl.col(m).mean() for m in METRICS]
    return (
        scores.group_by("benchmark", "kind", "group", "system", "unit_id")
        .agg(agg)
        .group_by("benchmark", "kind", "group", "unit_id")
        .agg(agg)
    )


@dataclass(frozen=True)
class Test:
    """One paired comparison on question units (``diff`` = b − a)."""

    benchmark: str
    kind: str
    metric: str
    a: str
    b: str
    n_units: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p: float
    p_holm: float = float("nan")


def bootstrap_ci(d: np.ndarray) -> tuple[float, float]:
    """95 % percentile bootstrap CI of the mean difference over units."""
    if d.size < 2 or np.allclose(d, d[0]):
        return float(d.mean()), float(d.mean())
    seed = (
        {"rng": np.random.default_rng(0)}
        if "rng" in inspect.signature(sst.bootstrap).parameters
        else {"random_state": 0}  # scipy < 1.15
    )
    res = sst.bootstrap(
        (d,),
        np.mean,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        vectorized=True,
        **seed,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare(units: pl.DataFrame, bench: str, kind: str, metric: str, a: str, b: str) -> Test | None:
    """Paired test of group b against group a on their shared units (None if < 2)."""
    sel = units.filter((pl.col("benchmark") == bench) & (pl.col("kind") == kind))
    left = sel.filter(pl.col("group") == a).select("unit_id", va=pl.col(metric))
    right = sel.filter(pl.col("group") == b).select("unit_id", vb=pl.col(metric))
    both = left.join(right, on="unit_id").drop_nulls()
    if both.height < 2:
        return None
    va, vb = both["va"].to_numpy(), both["vb"].to_numpy()
    t = paired_t(va, vb)
    lo, hi = bootstrap_ci(vb - va)
    return Test(
        bench, kind, metric, a, b, both.height, float(va.mean()), float(vb.mean()),
        float((vb - va).mean()), lo, hi, t.p_value,
    )  # fmt: skip


def run_tests(units: pl.DataFrame, pairs: list[tuple[str, str, str]]) -> list[Test]:
    """Every (benchmark, a, b) x kind x metric test; Holm over all of them."""
    tests = []
    for bench, a, b in pairs:
        for kind in KINDS:
            for metric in METRICS:
                if metric == "LB" and kind != "multi":
                    continue
                t = compare(units, bench, kind, metric, a, b)
                if t is not None:
                    tests.append(t)
    adj = holm([t.p for t in tests]) if tests else []
    return [
        Test(**{**t.__dict__, "p_holm": float(p)})  # type: ignore[arg-type]
        for t, p in zip(tests, adj, strict=True)
    ]


def verdict(tests: list[Test], hybrid: str, rivals: list[str], benches: list[str]) -> str:
    """supports / contradicts / inconclusive / incomplete by :data:`VERDICT_RULE`."""
    need = {(bn, k, r) for bn in benches for k in KINDS for r in rivals}
    have = {
        (t.benchmark, t.kind, t.a): t
        for t in tests
        if t.b == hybrid and t.a in rivals and t.metric == DECIDING[t.kind]
    }
    if not need or not need <= set(have):
        return "incomplete"
    ts = [have[k] for k in need]
    if any(t.p_holm < 0.05 and t.ci_high < -MARGIN for t in ts):
        return "contradicts"
    if all(t.ci_low >= -MARGIN for t in ts) and any(t.p_holm < 0.05 and t.diff > 0 for t in ts):
        return "supports"
    return "inconclusive"


def seen_unseen(scores: pl.DataFrame, seen: set[str], metric: str = "MRR@10") -> pl.DataFrame:
    """Mean over seeds of ``metric`` averaged over seen / unseen query languages."""
    tagged = scores.with_columns(
        languages=pl.when(pl.col("query_lang").is_in(sorted(seen)))
        .then(pl.lit("seen"))
        .otherwise(pl.lit("unseen"))
    ).drop_nulls(metric)
    return (
        tagged.group_by("benchmark", "kind", "group", "system", "languages", "query_lang")
        .agg(pl.col(metric).mean())
        .group_by("benchmark", "kind", "group", "system", "languages")
        .agg(pl.col(metric).mean(), n_langs=pl.len())
        .group_by("benchmark", "kind", "group", "languages")
        .agg(pl.col(metric).mean(), pl.col("n_langs").first())
        .sort("benchmark", "kind", "group", "languages")
    )

"""The numbers of a study report, from the store's per-unit scores alone.

- headline: per (benchmark, kind, group, metric) the mean over seeds of the seed's
  score (mean over query languages of the mean over units) and the seed spread (SD);
- tests: per comparison (hybrid vs X-X / X-Y / base, X-X and X-Y vs base) on question
  units, seed-aware: each seed's unit score is the mean over the unit's query languages;
  the difference of the two systems' seed-averaged unit scores has a standard error that
  adds the between-unit variance of the paired differences to each system's between-seed
  variance of its mean (:func:`xeval.compare.stats.seed_aware_t`), with Welch-Satterthwaite degrees of
  freedom; p-value and 95 % CI come from that t; Holm across every test of the report.
  With one seed per system it is the paired t-test on units;
- verdict per (training source, domain), by :data:`VERDICT_RULE`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from xeval.compare.stats import holm, seed_aware_t
from xeval.study.stages import METRICS
from xeval.tables import KINDS

DECIDING = {"mono": "MRR@10", "cross": "MRR@10", "multi": "MAP"}
MARGIN = 0.01
VERDICT_RULE = (
    f"For each benchmark of the domain and each setting kind (metric: MRR@10 for mono and "
    f"cross, MAP for multi), hybrid is compared with X-X and with X-Y on question units. "
    f"**contradicts**: hybrid is worse than X-X or X-Y somewhere with Holm p < 0.05 and the "
    f"whole 95 % CI below −{MARGIN}. **supports**: not contradicted, every CI lower bound "
    f"≥ −{MARGIN} (hybrid at least as good as both, up to the margin), and hybrid better "
    f"than at least one of them somewhere with Holm p < 0.05. **inconclusive**: otherwise. "
    f"**incomplete**: a planned cell is missing (every seed of hybrid, X-X and X-Y on every "
    f"benchmark of the domain): no verdict from part of the seeds. Tests and CIs count both "
    f"independent units: question units and training seeds (:func:`xeval.compare.stats.seed_aware_t`)."
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
    """benchmark, kind, group, system, unit_id, metric columns: mean over query languages.

    One row per seed (``system``) and unit; :func:`compare` averages the seeds itself.
    """
    agg = [pl.col(m).mean() for m in METRICS]
    return scores.group_by("benchmark", "kind", "group", "system", "unit_id").agg(agg)


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
    n_seeds: tuple[int, int] = (1, 1)
    seed_share: float = 0.0


def _cubes(units: pl.DataFrame) -> dict[tuple[str, str, str], np.ndarray]:
    """Per (benchmark, kind, group): a (seeds x units x metrics) array, NaN where missing;
    within a benchmark and kind every group shares one unit axis."""
    out: dict[tuple[str, str, str], np.ndarray] = {}
    for (bench, kind), part in units.partition_by("benchmark", "kind", as_dict=True).items():
        ids = np.unique(part["unit_id"].to_numpy())
        for (group,), rows in part.partition_by("group", as_dict=True).items():
            systems = np.unique(rows["system"].to_numpy())
            cube = np.full((systems.size, ids.size, len(METRICS)), np.nan)
            s_idx = np.searchsorted(systems, rows["system"].to_numpy())
            u_idx = np.searchsorted(ids, rows["unit_id"].to_numpy())
            cube[s_idx, u_idx, :] = rows.select(METRICS).to_numpy().astype(np.float64)
            out[(str(bench), str(kind), str(group))] = cube
    return out


def _shared_units(xa: np.ndarray, xb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(seeds x units) matrices of two groups restricted to the units every seed of both
    scored; None when fewer than two such units."""
    ok = ~np.isnan(xa).any(axis=0) & ~np.isnan(xb).any(axis=0)
    if ok.sum() < 2:
        return None
    return xa[:, ok], xb[:, ok]


def run_tests(units: pl.DataFrame, pairs: list[tuple[str, str, str]]) -> list[Test]:
    """Every (benchmark, a, b) x kind x metric seed-aware test; Holm over all of them."""
    cubes = _cubes(units)
    tests = []
    for bench, a, b in pairs:
        for kind in KINDS:
            ca, cb = cubes.get((bench, kind, a)), cubes.get((bench, kind, b))
            if ca is None or cb is None:
                continue
            for m, metric in enumerate(METRICS):
                if metric == "LB" and kind != "multi":
                    continue
                both = _shared_units(ca[:, :, m], cb[:, :, m])
                if both is None:
                    continue
                xa, xb = both
                r = seed_aware_t(xa, xb)
                tests.append(Test(
                    bench, kind, metric, a, b, xa.shape[1], float(xa.mean()), float(xb.mean()),
                    r.diff, r.ci_low, r.ci_high, r.p, n_seeds=(xa.shape[0], xb.shape[0]),
                    seed_share=r.seed_share,
                ))  # fmt: skip
    adj = holm([t.p for t in tests]) if tests else []
    return [
        Test(**{**t.__dict__, "p_holm": float(p)})  # type: ignore[arg-type]
        for t, p in zip(tests, adj, strict=True)
    ]


def deciding_tests(
    tests: list[Test], hybrid: str, rivals: list[str], benches: list[str]
) -> list[Test]:
    """The tests a verdict rests on: hybrid vs each rival, per benchmark and kind, on the
    kind's deciding metric (:data:`DECIDING`)."""
    return [
        t
        for t in tests
        if t.b == hybrid
        and t.a in rivals
        and t.benchmark in benches
        and t.metric == DECIDING[t.kind]
    ]


def verdict(tests: list[Test], hybrid: str, rivals: list[str], benches: list[str]) -> str:
    """supports / contradicts / inconclusive / incomplete by :data:`VERDICT_RULE`."""
    need = {(bn, k, r) for bn in benches for k in KINDS for r in rivals}
    have = {(t.benchmark, t.kind, t.a): t for t in deciding_tests(tests, hybrid, rivals, benches)}
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


def suggest_steps(dev: pl.DataFrame, tol: float = 0.005) -> int | None:
    """The first evaluated step after which the mean dev MRR@10 never gains more than tol."""
    cols = [c for c in dev.columns if c.startswith("MRR@10/")]
    if dev.height == 0 or not cols:
        return None
    d = dev.sort("step").with_columns(score=pl.mean_horizontal(cols))
    steps, score = d["step"].to_list(), d["score"].to_list()
    for i, s in enumerate(steps):
        if max(score[i:]) <= score[i] + tol:
            return int(s)
    return int(steps[-1])


def suggestion_text(dev: pl.DataFrame, cap: int = 0) -> str:
    """:func:`suggest_steps`, held under the plan's ``steps_cap`` (0 = none), in words."""
    s = suggest_steps(dev)
    if s is not None and cap and s > cap:
        return f"{cap} (the plateau rule says {s}; the plan caps it at {cap})"
    return str(s)

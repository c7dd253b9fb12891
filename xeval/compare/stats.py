"""Paired significance tests, effect sizes and multiple-testing corrections.

Tests and how they map onto ranx's ``compare(stat_test=...)``:

- ``paired-t`` = ranx ``"student"``: ranx calls ``scipy.stats.ttest_rel`` itself, so we
  call scipy directly (same p-values, no numba start-up; a test checks the agreement).
- ``fisher`` = ranx ``"fisher"``: the paired randomization test (swap the two systems'
  values of a query at random; statistic |mean difference|). Implemented here in NumPy
  because ranx's numba version seeds only the main thread under ``parallel=True``, so the
  same seed gives different p-values from one call to the next, and it costs a JIT
  compile. Ours is seeded and reproducible, enumerates all 2^m swaps exactly when that is
  no more than the permutation budget (m = number of non-zero differences), and otherwise
  returns the Monte-Carlo estimate (count + 1) / (R + 1) (never 0; ranx uses count / R).
- ``tukey`` = ranx ``"tukey"``: ranx calls ``scipy.stats.tukey_hsd`` on every system's
  per-query values at once; so do we. Tukey's HSD is an *unpaired* one-way test whose
  p-values already control the family-wise error over all pairs of systems; ``--correction``
  is still applied on top across everything compared in one call (conservative).
- ``wilcoxon``: the signed-rank test, ``scipy.stats.wilcoxon`` on the paired differences
  (ranx has none); zero differences are dropped (scipy's ``zero_method="wilcox"``).

Corrections: Holm and Bonferroni are small hand-written functions (statsmodels is not a
dependency); Benjamini-Hochberg is ``scipy.stats.false_discovery_control``.

Seeds: :func:`seed_aware_t` tests a difference between two systems that each have seed
replicas (seeds x units score matrices), counting both independent units; the study
report uses it, and :func:`seed_bootstrap_ci` is its bootstrap interval. Written here by
hand: scipy and statsmodels have no crossed unit-by-seed test or two-level bootstrap of
this form (a mixed model would be the heavier alternative).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

TESTS = ("paired-t", "fisher", "tukey", "wilcoxon")
RANX_NAMES = {"paired-t": "student", "fisher": "fisher", "tukey": "tukey", "wilcoxon": None}
CORRECTIONS = ("holm", "bonferroni", "bh", "none")
_TIE = 1e-12


@dataclass(frozen=True)
class TestResult:
    """A test's statistic, two-sided p-value and a short note on how it was computed."""

    statistic: float
    p_value: float
    method: str


def _diff(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_.shape != b_.shape or a_.ndim != 1:
        raise ValueError(f"paired samples must be 1-d and equally long: {a_.shape} vs {b_.shape}")
    return b_ - a_


def paired_t(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Two-sided paired t-test of b against a (``scipy.stats.ttest_rel``)."""
    d = _diff(a, b)
    if d.size < 2 or np.all(np.abs(d) <= _TIE):
        return TestResult(0.0, 1.0, "no differences" if d.size >= 2 else "fewer than 2 pairs")
    res = _st.ttest_rel(np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64))
    return TestResult(float(res.statistic), float(res.pvalue), f"t, df={d.size - 1}")


def wilcoxon(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Two-sided Wilcoxon signed-rank test of b against a (``scipy.stats.wilcoxon``)."""
    d = _diff(a, b)
    if np.count_nonzero(np.abs(d) > _TIE) == 0:
        return TestResult(0.0, 1.0, "no differences")
    res = _st.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return TestResult(float(res.statistic), float(res.pvalue), "signed-rank")


def fisher_randomization(
    a: Sequence[float],
    b: Sequence[float],
    n_permutations: int = 10_000,
    seed: int = 0,
    exact: bool | None = None,
) -> TestResult:
    """Two-sided paired randomization test of the mean difference (statistic: mean b - a).

    ``exact=None`` enumerates all 2^m sign swaps when 2^m <= ``n_permutations``, else
    samples ``n_permutations`` swaps; True/False force either.
    """
    d_all = _diff(a, b)
    d = d_all[np.abs(d_all) > _TIE]  # a zero difference is the same after a swap
    m = d.size
    if m == 0:
        return TestResult(0.0, 1.0, "no differences")
    observed = abs(d.sum())
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))
    total = d.sum()
    if exact is None:
        exact = m <= 62 and 2**m <= n_permutations
    if exact:
        if m > 26:
            raise ValueError(f"exact enumeration of 2^{m} swaps is too large")
        count = 0
        n_all = 2**m
        shifts = np.arange(m, dtype=np.int64)
        step = max(1, (1 << 22) // m)
        for start in range(0, n_all, step):
            idx = np.arange(start, min(n_all, start + step), dtype=np.int64)
            bits = ((idx[:, None] >> shifts) & 1).astype(np.float64)
            count += int(np.count_nonzero(np.abs(total - 2 * (bits @ d)) >= observed - tol))
        return TestResult(float(d_all.mean()), count / n_all, f"exact, 2^{m} swaps")
    rng = np.random.default_rng(seed)
    n_bytes = (m + 7) // 8
    step = max(1, min(n_permutations, (1 << 23) // m))
    count = 0
    for done in range(0, n_permutations, step):
        size = min(step, n_permutations - done)
        raw = np.frombuffer(rng.bytes(size * n_bytes), dtype=np.uint8).reshape(size, n_bytes)
        bits = np.unpackbits(raw, axis=1, count=m).astype(np.float64)
        count += int(np.count_nonzero(np.abs(total - 2 * (bits @ d)) >= observed - tol))
    p = (count + 1) / (n_permutations + 1)
    return TestResult(float(d_all.mean()), p, f"{n_permutations} random swaps, seed {seed}")


def tukey_hsd(samples: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Tukey's HSD over several systems (``scipy.stats.tukey_hsd``, as ranx).

    Returns (mean-difference matrix [i, j] = mean_i - mean_j, p-value matrix).
    """
    arrays = [np.asarray(s, dtype=np.float64) for s in samples]
    if len(arrays) < 2:
        raise ValueError("Tukey's HSD needs at least two systems")
    res = _st.tukey_hsd(*arrays)
    stat = np.asarray(res.statistic, dtype=np.float64)
    pval = np.asarray(res.pvalue, dtype=np.float64)
    # zero pooled variance: scipy gives NaN; equal means are not different, others are
    pval = np.where(np.isnan(pval), np.where(np.abs(stat) <= _TIE, 1.0, 0.0), pval)
    return stat, pval


def mean_difference_ci(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """Mean of b - a with a t-based confidence interval (NaN bounds for n < 2)."""
    d = _diff(a, b)
    mean = float(d.mean()) if d.size else float("nan")
    if d.size < 2:
        return mean, float("nan"), float("nan")
    se = float(d.std(ddof=1)) / np.sqrt(d.size)
    half = float(_st.t.ppf(0.5 + confidence / 2, d.size - 1)) * se
    return mean, mean - half, mean + half


def win_tie_loss(
    a: Sequence[float], b: Sequence[float], higher_is_better: bool = True
) -> tuple[int, int, int]:
    """How often b beats, ties and loses to a (ties: |difference| <= 1e-12)."""
    d = _diff(a, b)
    if not higher_is_better:
        d = -d
    wins = int(np.count_nonzero(d > _TIE))
    losses = int(np.count_nonzero(d < -_TIE))
    return wins, d.size - wins - losses, losses


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error)."""
    p_ = np.asarray(p, dtype=np.float64)
    m = p_.size
    if m == 0:
        return p_.copy()
    order = np.argsort(p_, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p_[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def bonferroni(p: Sequence[float]) -> np.ndarray:
    """Bonferroni-adjusted p-values: min(1, m * p)."""
    p_ = np.asarray(p, dtype=np.float64)
    return np.minimum(p_ * p_.size, 1.0)


def adjust(p: Sequence[float], method: str) -> np.ndarray:
    """Adjust p-values for multiple testing: holm | bonferroni | bh | none."""
    p_ = np.asarray(p, dtype=np.float64)
    if np.any(~np.isfinite(p_)) or np.any((p_ < 0) | (p_ > 1)):
        raise ValueError("p-values must be finite and in [0, 1]")
    if method == "holm":
        return holm(p_)
    if method == "bonferroni":
        return bonferroni(p_)
    if method == "bh":
        return _st.false_discovery_control(p_, method="bh") if p_.size else p_.copy()
    if method == "none":
        return p_.copy()
    raise ValueError(f"unknown correction {method!r}; choose one of {', '.join(CORRECTIONS)}")


def bootstrap_ci(
    a: Sequence[float],
    b: Sequence[float],
    n_resamples: int = 9999,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Paired bootstrap confidence interval of the mean of b - a (``scipy.stats.bootstrap``,
    BCa, seeded); NaN bounds for fewer than 2 pairs or ``n_resamples`` 0.

    When every difference is equal the interval is that difference (scipy cannot form one).
    """
    d = _diff(a, b)
    if d.size < 2 or n_resamples < 1:
        return float("nan"), float("nan")
    if np.ptp(d) <= _TIE:
        return float(d.mean()), float(d.mean())
    res = _st.bootstrap(
        (d,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="BCa",
        random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def seed_bootstrap_ci(
    xa: np.ndarray,
    xb: np.ndarray,
    n_resamples: int = 9999,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Two-level bootstrap interval of mean(xb) − mean(xa) for (seeds x units) matrices.

    Each resample draws the units with replacement (the same units for both systems:
    paired) and, independently for each system, its seeds with replacement. A plain
    resample of k seeds understates their variance by (k − 1) / k, so each system's
    resampled seed mean is spread around its seed mean by sqrt(k / (k − 1)), which makes
    the resampled seed variance unbiased; percentile interval. With one
    seed on each side this is :func:`bootstrap_ci` (paired, BCa). With few seeds the
    interval is still narrower than :func:`seed_aware_t`'s, whose t quantile pays for
    estimating the seed spread from k − 1 degrees of freedom; scipy's bootstrap resamples
    one level only, hence this function.
    """
    xa, xb = np.atleast_2d(xa), np.atleast_2d(xb)
    n = xa.shape[1]
    if xa.shape[0] == 1 and xb.shape[0] == 1:
        return bootstrap_ci(xa[0], xb[0], n_resamples, seed, confidence)
    if n < 2 or n_resamples < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    chunk = max(1, int(2_000_000 // n))
    stats_ = []
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        d = _seed_resample(xb, b, rng) - _seed_resample(xa, b, rng)
        idx = rng.integers(0, n, size=(b, n))
        stats_.append(np.take_along_axis(d, idx, axis=1).mean(axis=1))
    lo, hi = np.quantile(np.concatenate(stats_), [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def _seed_resample(x: np.ndarray, b: int, rng: np.random.Generator) -> np.ndarray:
    """``b`` resampled seed means of ``x`` (seeds x units) per unit, variance-corrected."""
    k = x.shape[0]
    mean = x.mean(axis=0)
    if k == 1:
        return np.broadcast_to(mean, (b, mean.size))
    draws = rng.integers(0, k, size=(b, k))
    weights = (draws[:, :, None] == np.arange(k)).sum(axis=1) / k
    return mean + np.sqrt(k / (k - 1)) * (weights @ x - mean)


@dataclass(frozen=True)
class SeedAwareT:
    """Difference b − a of two systems' seed-averaged unit scores, with its t inference."""

    diff: float
    se: float
    df: float
    p: float
    ci_low: float
    ci_high: float
    seed_share: float  # share of the variance that comes from the seeds


def seed_aware_t(xa: np.ndarray, xb: np.ndarray) -> SeedAwareT:
    """t inference on mean(xb) − mean(xa) for (seeds x units) score matrices.

    The variance of the difference has three parts, each estimated from the data: the
    between-unit variance of the paired, seed-averaged unit differences over n units, and
    for each system with k >= 2 seeds the between-seed variance of its mean score over
    those units, over k. Degrees of freedom: Welch-Satterthwaite. The seed-by-unit
    interaction enters both the unit and the seed parts (a little conservative); a system
    with one seed adds no seed part (a fixed model such as the base, or seed spread
    unknown). With one seed each it is the paired t-test. The design follows the advice
    to count every source of variation a rerun would change (Bouthillier et al., 2021,
    "Accounting for variance in machine learning benchmarks").
    """
    d = xb.mean(axis=0) - xa.mean(axis=0)
    n = d.size
    parts = [(float(d.var(ddof=1)) / n, n - 1)]
    for x in (xa, xb):
        if x.shape[0] >= 2:
            parts.append((float(x.mean(axis=1).var(ddof=1)) / x.shape[0], x.shape[0] - 1))
    var = sum(v for v, _ in parts)
    diff = float(d.mean())
    if var <= 1e-24:
        return SeedAwareT(
            diff, 0.0, float(n - 1), 1.0 if abs(diff) <= 1e-12 else 0.0, diff, diff, 0.0
        )
    df = var**2 / sum(v**2 / k for v, k in parts if v > 0)
    se = var**0.5
    half = float(_st.t.ppf(0.975, df)) * se
    p = float(2 * _st.t.sf(abs(diff) / se, df))
    return SeedAwareT(diff, se, float(df), p, diff - half, diff + half, 1 - parts[0][0] / var)

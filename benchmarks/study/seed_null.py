"""How often each interval or test of ``xeval compare`` calls two equal strategies different
when the fine-tunes differ only by seed-to-seed shifts (a simulated null).

Each draw: ``units`` question units with true scores uniform in [0.2, 0.8]; two strategies
with ``seeds`` fine-tunes each; a fine-tune adds one shift N(0, seed_sd) to every unit
and noise N(0, unit_sd) per unit. Printed: the share of draws each method rejects at 5 %
(or whose 95 % interval misses 0), which should be near 5 %.

    python benchmarks/study/seed_null.py --draws 1000 > benchmarks/results/seed-null.md
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from scipy import stats as sst

from xeval.compare.stats import bootstrap_ci, seed_aware_t, seed_bootstrap_ci


def draw(rng: np.random.Generator, units: int, seeds: int, seed_sd: float, unit_sd: float):
    """Two (seeds x units) score matrices of equal strategies."""
    true = rng.uniform(0.2, 0.8, size=units)

    def one() -> np.ndarray:
        shift = rng.normal(0, seed_sd, size=(seeds, 1))
        return true + shift + rng.normal(0, unit_sd, size=(seeds, units))

    return one(), one()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--units", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed-sd", type=float, default=0.01)
    ap.add_argument("--unit-sd", type=float, default=0.05)
    ap.add_argument("--resamples", type=int, default=999)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    miss = dict.fromkeys(
        [
            "paired t on seed means",
            "seed-aware t",
            "bootstrap, units only",
            "bootstrap, units and seeds",
        ],
        0,
    )
    t0 = time.perf_counter()
    for i in range(a.draws):
        xa, xb = draw(rng, a.units, a.seeds, a.seed_sd, a.unit_sd)
        ma, mb = xa.mean(0), xb.mean(0)
        miss["paired t on seed means"] += sst.ttest_rel(mb, ma).pvalue < 0.05
        miss["seed-aware t"] += seed_aware_t(xa, xb).p < 0.05
        lo, hi = bootstrap_ci(ma, mb, a.resamples, i)
        miss["bootstrap, units only"] += not lo <= 0 <= hi
        lo, hi = seed_bootstrap_ci(xa, xb, a.resamples, i)
        miss["bootstrap, units and seeds"] += not lo <= 0 <= hi
    secs = time.perf_counter() - t0
    print("# Seed-to-seed shifts and no true difference: how often each method says 'different'\n")
    print(
        f"{a.draws} draws; {a.units} units; {a.seeds} seeds per strategy; seed sd {a.seed_sd}, "
        f"unit noise sd {a.unit_sd}; bootstrap {a.resamples} resamples; rng seed {a.seed}; "
        f"numpy {np.__version__}, Python {platform.python_version()}; {secs:.0f} s.\n"
    )
    print("| method | rejects at 5 % (should be ≈ 5 %) |\n|---|---|")
    for k, v in miss.items():
        print(f"| {k} | {100 * v / a.draws:.1f} % |")
    print(
        "\nCommand: `python benchmarks/study/seed_null.py "
        f"--draws {a.draws} --units {a.units} --seeds {a.seeds} --seed-sd {a.seed_sd} "
        f"--unit-sd {a.unit_sd} --resamples {a.resamples} --seed {a.seed}`"
    )


if __name__ == "__main__":
    main()

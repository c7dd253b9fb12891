"""Recompute a study's verdict-deciding tests from its store, without xeval.

    python benchmarks/study/recheck.py benchmarks/results/study/general
    python benchmarks/study/recheck.py benchmarks/results/study/in-domain \
        benchmarks/results/study/general   # a report that also shows another plan's cells

Reads only the committed per-unit Parquet files (pyarrow, numpy, scipy; no polars, no
xeval code) and, for every benchmark, setting kind and "hybrid − X-X" / "hybrid − X-Y"
difference of the report's "tests behind the verdicts" table:

1. recomputes the seed-aware t (unit variance of the seed-averaged paired differences plus
   each side's between-seed variance of its mean, Welch-Satterthwaite df) from the raw
   scores, and checks the report's mean difference, interval and p against it;
2. runs a second, cruder test that ignores the question units: Welch's t on the per-seed
   means (k v k seeds), Holm over the deciding tests only. A verdict that holds under both
   does not hinge on the unit-level modelling.

3. checks from the cells' ``result.json`` alone that the store is one study: every
   benchmark evaluated on one build, every source's fine-tunes on one set of pairs, every
   fine-tune's evaluations on the model its train cell stored.

Writes ``recheck.md`` beside the report and exits 1 when a recomputed figure disagrees
with the report beyond its rounding or a provenance check fails.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from scipy import stats

DECIDING = {"mono": "MRR@10", "cross": "MRR@10", "multi": "MAP"}
MARGIN = 0.01


def load(store: Path) -> dict[tuple[str, str, str], dict[int, dict[str, float]]]:
    """(benchmark, kind, group) -> seed -> unit -> deciding metric (mean over languages)."""
    out: dict = defaultdict(dict)
    for meta_path in sorted((store / "cells" / "eval").glob("*/*/result.json")):
        meta = json.loads(meta_path.read_text())
        if meta.get("seed") is None:
            continue  # base and BM25: not part of the verdicts
        group = re.sub(r"-s\d+$", "", meta["system"])
        t = pq.read_table(meta_path.parent / "scores.parquet").to_pydict()
        acc: dict = defaultdict(lambda: defaultdict(list))
        for u, k, m, a in zip(t["unit_id"], t["kind"], t["MRR@10"], t["MAP"], strict=True):
            acc[k][u].append(a if DECIDING[k] == "MAP" else m)
        for k, units in acc.items():
            out[(meta["benchmark"], k, group)][meta["seed"]] = {
                u: float(np.mean(v)) for u, v in units.items()
            }
    return out


def matrix(by_seed: dict[int, dict[str, float]], units: list[str]) -> np.ndarray:
    return np.array([[by_seed[s][u] for u in units] for s in sorted(by_seed)])


def seed_aware(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """diff, CI low, CI high, p of mean(b) − mean(a) for seeds x units matrices."""
    d = b.mean(0) - a.mean(0)
    parts = [(d.var(ddof=1) / d.size, d.size - 1)]
    parts += [(x.mean(1).var(ddof=1) / len(x), len(x) - 1) for x in (a, b) if len(x) > 1]
    var = sum(v for v, _ in parts)
    df = var**2 / sum(v**2 / k for v, k in parts if v > 0)
    half = stats.t.ppf(0.975, df) * var**0.5
    p = 2 * stats.t.sf(abs(d.mean()) / var**0.5, df)
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half), float(p)


def seed_only(a: np.ndarray, b: np.ndarray) -> float:
    """Welch p on the per-seed means (units ignored); nan with one seed on a side."""
    ma, mb = a.mean(1), b.mean(1)
    if len(ma) < 2 or len(mb) < 2:
        return float("nan")
    return float(stats.ttest_ind(mb, ma, equal_var=False).pvalue)


def holm(p: list[float]) -> list[float]:
    order = np.argsort(p)
    out, run = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        run = max(run, min(1.0, (len(p) - rank) * p[i]))
        out[i] = run
    return out


def report_rows(report: Path) -> dict[tuple[str, str, str], list[str]]:
    """(benchmark, kind, difference) -> cells of the report's deciding-tests table."""
    text = report.read_text().split("### The tests behind the verdicts")[1].split("\n## ")[0]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 11 and cells[0] not in ("benchmark", "---"):
            rows[(cells[0], cells[1], cells[3])] = cells
    return rows


def provenance_checks(store: Path) -> list[tuple[str, list[str]]]:
    """(check, what breaks it) for the three one-build-per-input checks."""
    cells = store / "cells"
    ev = [json.loads(p.read_text()) for p in sorted((cells / "eval").glob("*/*/result.json"))]
    tr = [json.loads(p.read_text()) for p in sorted((cells / "train").glob("*/result.json"))]
    dc = [json.loads(p.read_text()) for p in sorted((cells / "devcurve").glob("*/result.json"))]
    builds, pairs = defaultdict(set), defaultdict(set)
    for m in ev:
        builds[m["benchmark"]].add((m.get("benchmark_info") or {}).get("fingerprint"))
    for m in tr:
        pairs[m["source"]].add(m.get("pairs_fingerprint"))
    for m in dc:
        pairs[m["source"]].add((m.get("pairs") or {}).get("fingerprint"))
    model = {m["system"]: (m.get("model") or {}).get("fingerprint") for m in tr}
    odd = [f"{m['system']}/{m['benchmark']}" for m in ev if m["system"] in model
           and (m.get("model") or {}).get("fingerprint") != model[m["system"]]]  # fmt: skip
    return [
        (f"one build per benchmark ({len(builds)})", [b for b, f in builds.items() if len(f) > 1]),
        (
            f"one set of pairs per source ({len(pairs)})",
            [s for s, f in pairs.items() if len(f) > 1],
        ),
        (f"evaluations on their train cell's model ({sum(m['system'] in model for m in ev)})", odd),
    ]


def close(shown: str, value: float) -> bool:
    """Does the report's rounded figure agree with the recomputed value?"""
    x = float(shown.rstrip("*"))
    digits = len(shown.rstrip("*").split("e")[0].split(".")[-1]) if "." in shown else 0
    return abs(x - value) <= 0.6 * 10**-digits + 0.02 * abs(value)


def main(store: Path, *others: Path) -> int:
    """Recheck ``store``'s report; ``others``: stores of plans its report compares with."""
    data, shown = load(store), report_rows(store / "report.md")
    for other in others:
        data.update({k: v for k, v in load(other).items() if k not in data})
    rows, bad, p_seed = [], 0, []
    for (bench, kind, diff), cells in shown.items():
        hyb, rival = (g.strip() for g in diff.split("−"))
        a, b = data[(bench, kind, rival)], data[(bench, kind, hyb)]
        units = sorted(set.intersection(*(set(v) for v in [*a.values(), *b.values()])))
        ma, mb = matrix(a, units), matrix(b, units)
        d, lo, hi, p = seed_aware(ma, mb)
        ci = re.findall(r"-?\d+\.\d+", cells[6])
        p_ok = close(cells[7], p) if float(cells[7]) > 1e-3 else p < 2e-3
        ok = len(units) == int(cells[4]) and p_ok
        ok = ok and close(cells[5], d) and close(ci[0], lo) and close(ci[1], hi)
        bad += not ok
        sp = seed_only(ma, mb)
        p_seed.append(sp)
        rows.append([bench, kind, diff, len(units), f"{len(mb)} v {len(ma)}", f"{d:.4f}",
                     f"[{lo:.4f}, {hi:.4f}]", f"{p:.2g}", "yes" if ok else "**NO**", sp])  # fmt: skip
    finite = [p for p in p_seed if p == p]
    adj = iter(holm(finite))
    lines = [
        f"# Recheck of {store.name}: the deciding tests recomputed without xeval",
        "",
        f"`python benchmarks/study/recheck.py {' '.join(map(str, (store, *others)))}` "
        "(pyarrow, numpy and scipy "
        "on the committed Parquet files). Columns 4-8: the seed-aware t recomputed from raw "
        "per-unit scores and whether the report shows the same figures (to its rounding). "
        "Last two: Welch's t on the per-seed means alone (units ignored), Holm over these "
        f"{len(finite)} tests: a cruder test that a verdict should not contradict.",
        "",
        "| benchmark | kind | difference | units | seeds | mean diff | 95 % CI | p | "
        "report agrees | p seeds only | Holm |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        sp = r[-1]
        h = f"{next(adj):.2g}" if sp == sp else "—"
        lines.append(
            "| " + " | ".join(map(str, [*r[:-1], f"{sp:.2g}" if sp == sp else "—", h])) + " |"
        )
    checks = provenance_checks(store)
    lines += ["", "Provenance, from the cells' result.json alone:", ""]
    lines += [
        f"- {name}: " + (f"**broken by {', '.join(b)}**" if b else "holds") for name, b in checks
    ]
    broken = sum(bool(b) for _, b in checks)
    lines += ["", f"{len(rows) - bad} of {len(rows)} rows agree with the report; "
              f"{len(checks) - broken} of {len(checks)} provenance checks hold."]  # fmt: skip
    (store / "recheck.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-1:]), f"-> {store / 'recheck.md'}")
    return 1 if bad or broken else 0


if __name__ == "__main__":
    args = sys.argv[1:] or ["benchmarks/results/study/general"]
    sys.exit(main(*map(Path, args)))

"""Print the Markdown tables of benchmarks/results/bm25.md from evaluated run directories.

    python benchmarks/collect_bm25.py RUNS_ROOT

RUNS_ROOT holds one BM25 run per benchmark (``RUNS_ROOT/<benchmark>``, evaluated), and
optionally ``e5-<benchmark>`` (multilingual-e5-small, evaluated) and ``rrf-<benchmark>`` /
``combsum-<benchmark>`` runs (``xeval fuse`` of the two, evaluated). The e5 columns come
from the ``e5-<benchmark>`` run when it exists, else from benchmarks/results/zero-shot.md.
With ``--tests`` it also compares BM25 and both fusions against e5 on each benchmark
(``xeval compare``'s library call: paired t-test per question unit, Holm-corrected across
all tests of all benchmarks, paired BCa bootstrap intervals).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ["xquad-r", "mlqa-r", "python-faq", "manpages", "justice-canada", "finlex",
              "cc-legalcode"]  # fmt: skip
METRICS = ["MRR@10", "R@10", "R@100", "MAP", "LB"]
KIND_ORDER = {"mono": 0, "cross": 1, "multi": 2}


def summary(rundir: Path) -> dict[str, dict[str, float]]:
    df = pl.read_csv(rundir / "eval" / "summary.csv")
    out: dict[str, dict[str, float]] = {}
    for kind, metric, value, n_settings, n_queries in df.select(
        "kind", "metric", "value", "n_settings", "n_queries"
    ).iter_rows():
        row = out.setdefault(kind, {})
        row[metric] = value
        if metric != "LB":  # LB counts only queries with >= 2 relevant items
            row["settings"], row["queries"] = n_settings, n_queries
    return out


def zero_shot() -> dict[tuple[str, str], dict[str, str]]:
    """MRR@10 / MAP / LB of e5 from zero-shot.md, by (benchmark, kind)."""
    text = (ROOT / "benchmarks" / "results" / "zero-shot.md").read_text(encoding="utf-8")
    head = None
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:2] == ["benchmark", "kind"]:
            head = cells
        elif head and len(cells) == len(head) and not re.match(r"^-+$", cells[0]):
            name = cells[0].replace(" (full)", "")
            out[(name, cells[1])] = dict(zip(head, cells, strict=True))
    return out


def fmt(v: float | None, metric: str) -> str:
    if v is None:
        return "—"
    return f"{v:.1f}" if metric == "LB" else f"{v:.3f}"


def e5_figures(root: Path, b: str, old: dict) -> dict[str, dict[str, str]]:
    """e5's MRR@10 / MAP / LB per kind: from ``e5-<b>`` when evaluated, else zero-shot.md."""
    run = root / f"e5-{b}"
    if (run / "eval").is_dir():
        return {k: {m: fmt(v.get(m), m) for m in METRICS} for k, v in summary(run).items()}
    return {k: v for (name, k), v in old.items() if name == b}


def bm25_table(root: Path) -> list[str]:
    old = zero_shot()
    head = ["benchmark", "kind", "settings", "queries", *METRICS, "e5 MRR@10", "e5 MAP", "e5 LB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for b in BENCHMARKS:
        if not (root / b / "eval").is_dir():
            continue
        e5 = e5_figures(root, b, old)
        for kind, row in sorted(summary(root / b).items(), key=lambda kv: KIND_ORDER[kv[0]]):
            z = e5.get(kind, {})
            cells = [b, kind, str(int(row["settings"])), str(int(row["queries"]))]
            cells += [fmt(row.get(m), m) for m in METRICS]
            cells += [z.get("MRR@10", "n/a"), z.get("MAP", "n/a"), z.get("LB", "n/a")]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def timings(root: Path) -> list[str]:
    lines = ["| benchmark | settings | analyse s | index s | search s |", "|---|---|---|---|---|"]
    for b in BENCHMARKS:
        p = root / b / "run.json"
        if p.is_file():
            info = json.loads(p.read_text(encoding="utf-8"))
            t = info["timings_s"]
            n = len(info["settings"])
            lines.append(f"| {b} | {n} | {t['analyze']} | {t['index']} | {t['search']} |")
    return lines


def fusion_table(root: Path) -> list[str]:
    head = ["benchmark", "system", "kind", *METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for b in BENCHMARKS:
        systems = [("BM25", root / b), ("e5-small", root / f"e5-{b}")]
        systems += [(m.upper(), root / f"{m}-{b}") for m in ("rrf", "combsum")]
        if not all((p / "eval").is_dir() for _, p in systems[:2]):
            continue
        for name, path in systems:
            if not (path / "eval").is_dir():
                continue
            for kind, row in sorted(summary(path).items(), key=lambda kv: KIND_ORDER[kv[0]]):
                cells = [b, name, kind, *(fmt(row.get(m), m) for m in METRICS)]
                lines.append("| " + " | ".join(cells) + " |")
    return lines


def test_table(root: Path, metrics: tuple[str, ...]) -> list[str]:
    """BM25, RRF and CombSUM against e5 per benchmark and kind, Holm over every test here."""
    from xeval.compare import CompareOptions, compare_folder
    from xeval.compare.stats import adjust
    from xeval.compare.tables import fmt_p

    frames = []
    for b in BENCHMARKS:
        runs = [root / f"e5-{b}", root / b, root / f"rrf-{b}", root / f"combsum-{b}"]
        if not all((r / "eval").is_dir() for r in runs[:2]):
            continue
        runs = [r for r in runs if (r / "eval").is_dir()]  # the fusions that exist
        opts = CompareOptions(metrics=metrics, baseline=f"e5-{b}", correction="none")
        res = compare_folder([str(r) for r in runs], opts).results
        frames.append(res.with_columns(pl.lit(b).alias("benchmark")))
    if not frames:
        return []
    res = pl.concat(frames, how="diagonal_relaxed")
    res = res.with_columns(pl.Series("p_holm", adjust(res["p_value"].to_numpy(), "holm")))
    head = ["benchmark", "metric", "kind", "system", "n units", "e5", "system value",
            "Δ vs e5", "95% CI (BCa)", "p (Holm)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in res.iter_rows(named=True):
        cells = [r["benchmark"], r["metric"], r["unit"], r["system_b"], str(r["n"]),
                 f"{r['mean_a']:.3f}", f"{r['mean_b']:.3f}", f"{r['delta']:+.3f}",
                 f"[{r['boot_low']:+.3f}, {r['boot_high']:+.3f}]", fmt_p(r["p_holm"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


@click.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--tests", "metrics", multiple=True, help="Also test these metrics (repeatable).")
def main(root: Path, metrics: tuple[str, ...]) -> None:
    click.echo("\n".join(bm25_table(root)))
    click.echo()
    click.echo("\n".join(timings(root)))
    click.echo()
    click.echo("\n".join(fusion_table(root)))
    if metrics:
        click.echo()
        click.echo("\n".join(test_table(root, metrics)))


if __name__ == "__main__":
    main()

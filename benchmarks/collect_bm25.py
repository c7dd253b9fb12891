"""Print the Markdown tables of benchmarks/results/bm25.md from evaluated run directories.

    python benchmarks/collect_bm25.py RUNS_ROOT

RUNS_ROOT holds one BM25 run per benchmark (``RUNS_ROOT/<benchmark>``, evaluated), and
optionally ``e5-<benchmark>`` and ``rrf-<benchmark>`` / ``combsum-<benchmark>`` runs; the
multilingual-e5-small figures of benchmarks/results/zero-shot.md are shown beside BM25.
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


def bm25_table(root: Path) -> list[str]:
    e5 = zero_shot()
    head = ["benchmark", "kind", "settings", "queries", *METRICS, "e5 MRR@10", "e5 MAP", "e5 LB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for b in BENCHMARKS:
        if not (root / b / "eval").is_dir():
            continue
        for kind, row in sorted(summary(root / b).items(), key=lambda kv: KIND_ORDER[kv[0]]):
            z = e5.get((b, kind), {})
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


@click.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
def main(root: Path) -> None:
    click.echo("\n".join(bm25_table(root)))
    click.echo()
    click.echo("\n".join(timings(root)))
    click.echo()
    click.echo("\n".join(fusion_table(root)))


if __name__ == "__main__":
    main()

"""Compare evaluated runs: paired significance tests, corrections, tables, figures, HTML.

>>> from xeval.compare import CompareOptions, compare_folder, write_report
>>> comp = compare_folder("runs/", CompareOptions(test="paired-t"))   # doctest: +SKIP
>>> write_report(comp, "report/")                                      # doctest: +SKIP

Modules: ``load`` (find runs, comparability, seed groups), ``stats`` (tests, effect sizes,
corrections), ``core`` (the comparisons), ``tables``, ``plots``, ``html`` (outputs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xeval.compare.core import CompareOptions, Comparison, compare_folder, compare_systems
from xeval.provenance import atomic_dir, provenance, write_json

__all__ = ["CompareOptions", "Comparison", "compare_folder", "compare_systems", "write_report"]


def report_meta(comp: Comparison) -> dict[str, Any]:
    """Provenance of a comparison: options, every run's folder and fingerprints."""
    from dataclasses import asdict

    return provenance(
        options=asdict(comp.options),
        source=str(comp.source) if comp.source else None,
        systems=[
            {
                "name": s.name,
                "runs": [
                    {
                        "path": str(r.path),
                        "seed": r.seed,
                        "model": r.meta.get("model"),
                        "benchmark": r.meta.get("benchmark"),
                        "created": r.meta.get("created"),
                    }
                    for r in s.runs
                ],
            }
            for s in comp.systems
        ],
        n_comparisons=comp.results.height,
        n_significant=int(comp.results["significant"].sum()),
    )


def write_report(comp: Comparison, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write tables (Markdown, LaTeX, CSV, Parquet), figures (PNG, SVG), report.html and
    compare.json into ``out``, atomically: a reader sees no report or a finished one."""
    from xeval.compare import html, plots, tables

    meta = report_meta(comp)
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        tables.write_tables(comp, tmp)
        figures = plots.write_figures(comp, tmp / "figures")
        html.write_html(comp, figures, tmp / "report.html", meta)
        write_json(tmp / "compare.json", meta)
    return out

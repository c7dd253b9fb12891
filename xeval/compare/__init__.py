"""Compare evaluated runs: paired significance tests, corrections, tables, figures, HTML.

>>> from xeval.compare import CompareOptions, compare_folder, write_report
>>> comp = compare_folder(["runs/ft-*", "runs/e5"], CompareOptions())  # doctest: +SKIP
>>> comp                        # systems, tests, pairing unit and n    # doctest: +SKIP
>>> write_report(comp, "report/")                                      # doctest: +SKIP

Modules: ``load`` (find runs, comparability, seed groups, unit ids), ``stats`` (tests,
intervals, corrections), ``metrics`` (direction, range and format of a metric), ``core``
(the comparisons), ``tables``, ``plots``, ``html`` (outputs).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xeval.compare.core import CompareOptions, Comparison, compare_folder, compare_systems
from xeval.provenance import atomic_dir, provenance, write_json

__all__ = [
    "CompareOptions",
    "CompareRequest",
    "CompareResult",
    "Comparison",
    "compare_folder",
    "compare_systems",
    "run_compare",
    "write_report",
]


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


@dataclass(frozen=True)
class CompareRequest:
    """One ``xeval compare`` call: which runs, how, and where the report goes."""

    runs: Sequence[str | Path]
    options: CompareOptions
    out: Path | None = None
    overwrite: bool = False
    quiet: bool = False


@dataclass
class CompareResult:
    """A comparison and the report folder it was written to (if any)."""

    comparison: Comparison
    report: Path | None = None

    def summary(self) -> str:
        """The console table (with warnings), then where the report went."""
        from xeval.compare.tables import console

        text = console(self.comparison)
        if self.report is not None:
            text += (
                f"\n\nwrote {self.report}/ (report.html, report.md, report.tex, "
                "comparisons.csv|parquet, scores.csv|parquet, figures/*.png|svg)"
            )
        return text


def run_compare(req: CompareRequest) -> CompareResult:
    """Compare the runs and write the report when ``req.out`` is set; ``quiet`` silences
    third-party warnings."""
    from xeval.errors import XevalError

    if req.out is not None and Path(req.out).exists() and not req.overwrite:
        raise XevalError(f"{req.out} exists; pass --overwrite to replace it")
    with warnings.catch_warnings():
        if req.quiet:
            warnings.simplefilter("ignore")
        comp = compare_folder(list(req.runs), req.options)
        report = write_report(comp, req.out, overwrite=req.overwrite) if req.out else None
    return CompareResult(comp, report)

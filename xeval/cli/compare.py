"""``xeval compare``: significance tests between evaluated runs, corrected, with reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from xeval.compare.core import BY, UNITS
from xeval.compare.stats import CORRECTIONS, TESTS


@click.command("compare")
@click.argument("runs", nargs=-1, required=True)
@click.option(
    "--test",
    "test",
    type=click.Choice(TESTS),
    default="paired-t",
    show_default=True,
    help="paired-t (= ranx 'student'), fisher (paired randomization), tukey (Tukey "
    "HSD, as ranx), wilcoxon (signed-rank).",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    default=("MRR@10",),
    show_default=True,
    help="Metric to compare (repeatable): any evaluated metric, e.g. R@10, MAP, "
    "nDCG@10, or LB (language bias, lower is better).",
)
@click.option(
    "--baseline",
    default=None,
    help="Compare every system against this one (system name, model label or run "
    "folder name). Default: all pairs.",
)
@click.option(
    "--by",
    type=click.Choice(BY),
    default="group",
    show_default=True,
    help="group: one test per setting group (mono/cross/multi); pair: one per "
    "setting (query language x document language).",
)
@click.option(
    "--unit",
    type=click.Choice(UNITS),
    default=None,
    help="Paired unit: unit = question (the benchmark's unit_id, averaged over its "
    "languages and settings in the group; default when the benchmark has unit ids); query "
    "= query id (default otherwise); observation = (setting, query) cell (n too large).",
)
@click.option(
    "--correction",
    type=click.Choice(CORRECTIONS),
    default="holm",
    show_default=True,
    help="Multiple-testing correction across every comparison of this call.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Significance level for the corrected p-values.",
)
@click.option(
    "--permutations",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Random swaps for --test fisher (exact enumeration when 2^n is smaller).",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(min=0),
    default=9999,
    show_default=True,
    help="Bootstrap resamples for the paired BCa interval over units (0: none).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for fisher and the bootstrap."
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Report folder (Markdown, LaTeX, CSV, Parquet, PNG/SVG, report.html); "
    "written atomically. Default: print only.",
)
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no third-party warnings.")
def compare_cmd(
    runs: tuple[str, ...], out: Path | None, overwrite: bool, quiet: bool, **options: Any
) -> None:
    """Compare the evaluated runs in RUNS (run folders, folders of runs or globs).

    Runs must share the benchmark (fingerprint) and, per setting, the query set; runs that
    differ only by seed are grouped into one system (mean ± std); a run's label
    (``xeval run --label``) is its system name. Prints the corrected table; with --out also
    writes the reports.
    """
    from xeval.compare import CompareOptions, CompareRequest, run_compare

    options["metrics"] = tuple(dict.fromkeys(options["metrics"]))
    request = CompareRequest(runs, CompareOptions(**options), out, overwrite, quiet)
    result = run_compare(request)
    click.echo(result.summary())

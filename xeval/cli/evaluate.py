"""``xeval evaluate RUN...``: a thin layer over :func:`xeval.evaluation.evaluate_paths`."""

from __future__ import annotations

from pathlib import Path

import click

from xeval.metrics.definitions import DEFAULT_METRICS, metric_help


@click.command("evaluate")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--benchmark",
    "-b",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Benchmark directory. Default for a run folder: the path recorded in its run.json "
    "(the fingerprint must match either way). Required for runs made by other tools.",
)
@click.option(
    "--metrics",
    "-m",
    multiple=True,
    metavar="NAMES",
    help=f"Metrics, comma separated or repeated: {metric_help()}. "
    f"Default: {','.join(DEFAULT_METRICS)}.",
)
@click.option(
    "--engine",
    type=click.Choice(["polars", "ranx"]),
    default="polars",
    show_default=True,
    help="Scoring engine for run-based metrics: Polars expressions (fast start) or ranx "
    "(numba; ~30 s JIT on first use). Both give the same numbers.",
)
@click.option("--label", default=None, help="System name of external runs (default: file stem).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Run folder to write for external runs (default: ./LABEL).",
)
@click.option("--overwrite", is_flag=True, help="Replace the --out folder of external runs.")
@click.option(
    "--replace", is_flag=True, help="Replace an eval/ that holds metrics this run would drop."
)
def evaluate_cmd(
    runs: tuple[Path, ...],
    benchmark: Path | None,
    metrics: tuple[str, ...],
    engine: str,
    label: str | None,
    out: Path | None,
    overwrite: bool,
    replace: bool,
) -> None:
    """Score runs: MRR, Recall@k, nDCG, mAP, language bias (LB) and preference (QLP).

    RUNS is an xeval run folder, or run files made by any tool with --benchmark: TREC
    (6 columns), TSV (query_id, doc_id, score[, rank]), Parquet, plain or .gz, or a folder of
    them. A file named <setting>.<ext> is that setting's run; one file with any other name
    is a pooled run over the whole corpus, split into every setting by document language.

    Writes RUNDIR/eval/ (per-query, per-setting and summary tables as Parquet, CSV and
    Markdown, query-language × document-language matrices, eval.json). Metrics that need
    ranks below the run's cut-off (MAP, LB, QLP, R@k deeper than the run) come from exact
    ranks (RUNDIR/ranks/); runs without them report those metrics as unavailable.
    """
    from xeval.evaluation.evaluate import EvalConfig
    from xeval.evaluation.external import ImportConfig, evaluate_paths

    cfg = EvalConfig(metrics=list(metrics) or None, engine=engine, replace=replace)
    result = evaluate_paths(list(runs), benchmark, cfg, ImportConfig(label, out, overwrite))
    click.echo(result.summary())

"""``xeval evaluate RUNDIR``: a thin layer over :func:`xeval.evaluation.evaluate_run`."""

from __future__ import annotations

from pathlib import Path

import click

from xeval.metrics.definitions import DEFAULT_METRICS, TIE_RULE


@click.command("evaluate")
@click.argument("rundir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--benchmark",
    "-b",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Benchmark directory. Default: the path recorded in RUNDIR/run.json (its "
    "fingerprint must match the run's either way).",
)
@click.option(
    "--metrics",
    "-m",
    multiple=True,
    metavar="NAMES",
    help="Metrics, comma separated or repeated: MRR@k, R@k, P@k, nDCG@k, MAP, MAP@k, "
    f"LB. Default: {','.join(DEFAULT_METRICS)}.",
)
@click.option(
    "--engine",
    type=click.Choice(["polars", "ranx"]),
    default="polars",
    show_default=True,
    help="Scoring engine: Polars expressions (fast start) or ranx (numba; ~30 s JIT "
    "on first use). Both give the same numbers.",
)
def evaluate_cmd(
    rundir: Path, benchmark: Path | None, metrics: tuple[str, ...], engine: str
) -> None:
    """Score a run directory: MRR, Recall@k, nDCG, mAP and language bias.

    Evaluates RUNDIR/runs/<setting>.parquet against each setting's qrels and writes
    RUNDIR/eval/ (per-query, per-setting and summary tables as Parquet, CSV and Markdown,
    query-language × document-language matrices, eval.json). Queries missing from a run
    score 0 and are counted. Language bias (LB, lower is better) is computed for the
    multilingual settings from RUNDIR/ranks/.
    """
    from xeval.evaluation.evaluate import evaluate_run

    result = evaluate_run(rundir, benchmark=benchmark, metrics=list(metrics) or None, engine=engine)
    click.echo(result.summary())
    return
    click.echo(result.console_table())
    for note in result.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    n = result.info.get("n_settings")
    click.echo(
        f"\n{n} settings scored ({engine} engine; ties: {TIE_RULE}); wrote {result.eval_dir}"
    )

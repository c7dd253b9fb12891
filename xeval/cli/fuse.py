"""``xeval fuse``: combine runs of one benchmark (RRF, CombSUM, ...) into a new run."""

from __future__ import annotations

from pathlib import Path

import click


def _weights(value: str | None) -> tuple[float, ...] | None:
    if not value:
        return None
    try:
        return tuple(float(w) for w in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None


@click.command("fuse")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", "-o", required=True, type=click.Path(path_type=Path),
    help="Run directory to write (atomically).",
)  # fmt: skip
@click.option(
    "--method",
    type=click.Choice(["rrf", "combsum", "combmnz", "combmax", "wsum"]),
    default="rrf",
    show_default=True,
    help="rrf: reciprocal rank fusion; combsum / combmnz / combmax / wsum: normalised scores.",
)
@click.option(
    "--norm",
    type=click.Choice(["min-max", "max", "sum", "zmuv", "rank"]),
    default=None,
    help="Score normalisation of score-based methods (default min-max).",
)
@click.option("--rrf-k", type=click.IntRange(min=1), default=60, show_default=True,
              help="RRF constant: score = sum of 1 / (rrf_k + rank).")  # fmt: skip
@click.option("--weights", default=None, help="wsum: one weight per run, comma-separated.")
@click.option("--k", type=click.IntRange(min=1), default=None,
              help="Documents kept per query. Default: the deepest input run's k.")  # fmt: skip
@click.option("--label", default=None, help="System name. Default: METHOD(label1+label2).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def fuse_cmd(
    runs: tuple[Path, ...], out: Path, method: str, norm: str | None, rrf_k: int,
    weights: str | None, k: int | None, label: str | None, overwrite: bool,
) -> None:  # fmt: skip
    """Fuse RUNS (run directories of one benchmark) setting by setting through ranx.

    \b
    The result is a run directory that `xeval evaluate` and `xeval compare` accept. It
    has no exact ranks over the whole corpus (run.json: "exact_ranks": false), so
    language bias is reported as unavailable for it.

    \b
    Example:
      xeval fuse runs/bm25 runs/e5 --method rrf --out runs/bm25+e5
      xeval fuse runs/bm25 runs/e5 --method wsum --weights 0.3,0.7 --out runs/wsum
    """
    from xeval.fusion import FusionConfig, fuse_runs

    cfg = FusionConfig(
        method=method, norm=norm, rrf_k=rrf_k, weights=_weights(weights), k=k, label=label,
        overwrite=overwrite,
    )  # fmt: skip
    click.echo(fuse_runs(runs, out, cfg).summary())

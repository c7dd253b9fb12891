"""``xeval demo``: the whole pipeline on XQuAD-R with multilingual-e5-small."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=Path("out/demo"),
    show_default=True,
    help="Where the benchmark, runs and evaluation go.",
)
@click.option(
    "--model",
    "-m",
    default="multilingual-e5-small",
    show_default=True,
    help="Model name or path (offline: multilingual-e5-small, tiny).",
)
@click.option(
    "--benchmark", default="xquad-r", show_default=True, help="Registered benchmark to build."
)
@click.option(
    "--sample-queries",
    type=click.IntRange(min=1),
    default=None,
    help="Quick look: N question units (x every language) against the full corpus. "
    "Default: all 1,190 (about 5 minutes on 2 idle CPU cores, mostly encoding).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
def demo_cmd(
    out: Path, model: str, benchmark: str, sample_queries: int | None, batch_size: int
) -> None:
    """Build XQuAD-R, evaluate multilingual-e5-small zero-shot on every setting, print the table."""
    from xeval.demo import DemoConfig, run_demo

    config = DemoConfig(out, model, benchmark, sample_queries, batch_size)
    result = run_demo(config, progress=lambda msg: click.secho(f"==> {msg}", fg="cyan", err=True))
    click.echo(result.summary())

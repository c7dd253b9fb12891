"""``xeval study run|devcurve|status|report PLAN``: a thin layer over :mod:`xeval.study`."""

from __future__ import annotations

from pathlib import Path

import click

PLAN = click.argument("plan", type=click.Path(path_type=Path, dir_okay=False))
STORE = click.option(
    "--store",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Results store. Default: benchmarks/results/study/<plan name> beside "
    "benchmarks/study/, else <plan folder>/results/<plan name>.",
)
WORK = click.option(
    "--work",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for models, runs, embeddings and built benchmarks (never committed). "
    "Default: $XEVAL_CACHE/study.",
)


def _setup(plan_path: Path, store: Path | None):
    from xeval.study.plan import load_plan
    from xeval.study.store import default_store

    plan = load_plan(plan_path)
    return plan, store or default_store(plan)


def _work(work: Path | None) -> Path:
    from xeval.sources import cache_dir

    return work or cache_dir() / "study"


@click.group("study")
def study_cmd() -> None:
    """Run a declarative study plan cell by cell, resumably, into a committed store.

    \b
      xeval study status benchmarks/study/general.toml
      xeval study devcurve benchmarks/study/general.toml     # decide training.steps
      xeval study run benchmarks/study/general.toml --git-commit
      xeval study report benchmarks/study/general.toml
    """


def _run(plan_path, store, work, git_commit, max_cells, kinds) -> None:
    from xeval.study.runner import RunOptions, run_study

    plan, store = _setup(plan_path, store)
    opts = RunOptions(
        work=_work(work),
        store=store,
        git_commit=git_commit,
        max_cells=max_cells,
        kinds=kinds,
        log=lambda m: click.echo(m, err=True),
    )
    click.echo(run_study(plan, opts).summary())


@study_cmd.command("run")
@PLAN
@STORE
@WORK
@click.option("--git-commit", is_flag=True, help="Commit each finished cell's files at once.")
@click.option("--max-cells", type=int, default=None, help="Stop after this many cells.")
def run_cmd(plan: Path, store, work, git_commit: bool, max_cells: int | None) -> None:
    """Run every cell of PLAN not yet in the store (a killed study continues)."""
    _run(plan, store, work, git_commit, max_cells, ("eval", "train", "devcurve"))


@study_cmd.command("devcurve")
@PLAN
@STORE
@WORK
@click.option("--git-commit", is_flag=True, help="Commit the finished cell at once.")
def devcurve_cmd(plan: Path, store, work, git_commit: bool) -> None:
    """Run the dev curve of PLAN (MRR@10 on held-out units every N steps) and suggest steps."""
    from xeval.study.report import devcurve_summary
    from xeval.study.store import Store

    _run(plan, store, work, git_commit, None, ("devcurve",))
    p, st = _setup(plan, store)
    click.echo(devcurve_summary(p, Store(st)))


@study_cmd.command("status")
@PLAN
@STORE
def status_cmd(plan: Path, store) -> None:
    """Which cells of PLAN are stored, which remain, and why some wait."""
    from xeval.study.runner import study_status

    p, st = _setup(plan, store)
    click.echo(study_status(p, st).summary())


@study_cmd.command("report")
@PLAN
@STORE
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where to write report.md, report.html and figures. Default: the store.",
)
def report_cmd(plan: Path, store, out: Path | None) -> None:
    """Tables, unit-level Holm-corrected tests, figures and verdicts from the store alone."""
    from xeval.study.report import build_report

    p, st = _setup(plan, store)
    click.echo(build_report(p, st, out or st).summary())

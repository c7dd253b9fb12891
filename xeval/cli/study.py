"""``xeval study run|devcurve|status|report PLAN``: a thin layer over :mod:`xeval.study`."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

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


@click.group("study")
def study_cmd() -> None:
    """Run a declarative study plan cell by cell, resumably, into a committed store.

    \b
      xeval study status benchmarks/study/general.toml
      xeval study devcurve benchmarks/study/general.toml     # decide training.steps
      xeval study run benchmarks/study/general.toml --git-commit
      xeval study report benchmarks/study/general.toml
    """


def _request(plan: Path, store: Path | None, work: Path | None = None, **kw: Any):
    from xeval.study.commands import StudyRequest

    return StudyRequest(plan, store, work, log=lambda m: click.echo(m, err=True), **kw)


def parse_until(text: str, now: float | None = None) -> float:
    """``HH:MM`` (local time, its next occurrence) or ``+DURATION`` (``+90m``, ``+2h``,
    ``+1h30m``, ``+45s``) as a ``time.time()`` value."""
    now = time.time() if now is None else now
    t = text.strip()
    if m := re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", t):
        base = datetime.fromtimestamp(now)
        at = base.replace(hour=int(m[1]), minute=int(m[2]), second=0, microsecond=0)
        return (at if at.timestamp() > now else at + timedelta(days=1)).timestamp()
    parts = re.fullmatch(r"\+(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", t)
    if not parts or not any(parts.groups()):
        raise ValueError(f"{text!r} is neither HH:MM nor +DURATION such as +90m or +2h30m")
    h, mi, se = (int(g or 0) for g in parts.groups())
    return now + h * 3600 + mi * 60 + se


class Until(click.ParamType):
    name = "HH:MM|+DURATION"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_until(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


UNTIL = click.option(
    "--until",
    type=Until(),
    default=None,
    help="Deadline (a session or job time limit): HH:MM local time or +DURATION (+2h, "
    "+90m). From 5 min before it no cell starts; an evaluation starts only if the "
    "stored cells like it say it ends in time; a fine-tune saves a checkpoint and stops "
    "before it, and the next run resumes there.",
)


ONLY = click.option(
    "--only",
    "only",
    multiple=True,
    metavar="GLOB",
    help="Run only the cells whose id matches (repeatable), e.g. 'devcurve/legal' or "
    "'train/legal-*' --only 'eval/legal-*'. A worker waits for the fine-tunes its "
    "evaluations need.",
)


@study_cmd.command("run")
@PLAN
@STORE
@WORK
@ONLY
@UNTIL
@click.option("--git-commit", is_flag=True, help="Commit each finished cell's files at once.")
@click.option("--max-cells", type=int, default=None, help="Stop after this many cells.")
@click.option(
    "--poll",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds between looks for work while other workers hold the cells left.",
)
def run_cmd(
    plan: Path,
    store,
    work,
    only: tuple[str, ...],
    until: float | None,
    git_commit: bool,
    max_cells: int | None,
    poll: float,
) -> None:
    """Run every cell of PLAN not yet in the store (a killed study continues).

    Start it more than once with the same --work (each with OMP_NUM_THREADS=1 on a small
    machine) to run cells in parallel: each worker claims a cell before it runs it.
    """
    from xeval.study.commands import run_plan

    req = _request(
        plan,
        store,
        work,
        git_commit=git_commit,
        max_cells=max_cells,
        poll_s=poll,
        only=only,
        deadline=until,
    )
    click.echo(run_plan(req).summary())


@study_cmd.command("devcurve")
@PLAN
@STORE
@WORK
@ONLY
@UNTIL
@click.option("--git-commit", is_flag=True, help="Commit the finished cell at once.")
def devcurve_cmd(
    plan: Path, store, work, only: tuple[str, ...], until: float | None, git_commit: bool
) -> None:
    """Run the dev curves of PLAN (MRR@10 on held-out units every N steps) and suggest steps.

    One curve only: --only devcurve/SOURCE.
    """
    from xeval.study.commands import run_devcurve

    req = _request(plan, store, work, git_commit=git_commit, only=only, deadline=until)
    click.echo(run_devcurve(req).summary())


@study_cmd.command("status")
@PLAN
@STORE
@WORK
def status_cmd(plan: Path, store, work) -> None:
    """Which cells of PLAN are stored, which remain, why some wait, and which cells the
    workers using the same --work hold now (with how long they have run)."""
    from xeval.study.commands import plan_status

    click.echo(plan_status(_request(plan, store, work)).summary())


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
    from xeval.study.commands import report_plan

    click.echo(report_plan(_request(plan, store), out).summary())

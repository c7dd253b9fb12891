"""One call per ``xeval study`` command: what ``run``, ``devcurve``, ``status`` and
``report`` do with a plan file (the CLI only parses options into a :class:`StudyRequest`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xeval.study.plan import Plan
from xeval.study.runner import RunOptions, RunResult, run_study
from xeval.study.status import StatusResult, study_status
from xeval.study.store import Store, default_store

if TYPE_CHECKING:  # the report pulls in xeval.compare (1.5 s): imported when asked for
    from xeval.study.report import ReportResult


@dataclass(frozen=True)
class StudyRequest:
    """What ``xeval study`` was given: the plan file and where its store and work go."""

    plan: Path
    store: Path | None = None  # default: :func:`~xeval.study.store.default_store`
    work: Path | None = None  # default: ``$XEVAL_CACHE/study``
    git_commit: bool = False
    max_cells: int | None = None
    log: Callable[[str], None] = print
    poll_s: float = 30.0
    only: tuple[str, ...] = ()  # glob patterns over cell ids (``--only``)
    deadline: float | None = None  # ``--until``, as a time.time() value


def open_plan(req: StudyRequest) -> tuple[Plan, Path]:
    """The loaded plan and its store folder (the default one unless given)."""
    from xeval.study.plan import load_plan

    plan = load_plan(req.plan)
    return plan, req.store or default_store(plan)


def run_plan(
    req: StudyRequest, kinds: tuple[str, ...] = ("eval", "train", "devcurve")
) -> RunResult:
    """Load the plan and run its missing cells of ``kinds`` (``xeval study run``)."""
    from xeval.sources import cache_dir

    plan, store = open_plan(req)
    opts = RunOptions(
        work=req.work or cache_dir() / "study",
        store=store,
        git_commit=req.git_commit,
        max_cells=req.max_cells,
        kinds=kinds,
        log=req.log,
        poll_s=req.poll_s,
        only=req.only,
        deadline=req.deadline,
    )
    return run_study(plan, opts)


@dataclass
class DevcurveResult:
    """The dev-curve run and what its curves suggest."""

    run: RunResult
    curves: str

    def summary(self) -> str:
        return f"{self.run.summary()}\n{self.curves}"


def run_devcurve(req: StudyRequest) -> DevcurveResult:
    """Run the plan's dev-curve cells and summarise every stored curve (``xeval study devcurve``)."""
    from xeval.study.report import devcurve_summary

    res = run_plan(req, ("devcurve",))
    plan, store = open_plan(req)
    return DevcurveResult(res, devcurve_summary(plan, Store(store)))


def report_plan(req: StudyRequest, out: Path | None = None) -> ReportResult:
    """:func:`~xeval.study.report.build_report` of the plan file into ``out`` (default: the
    store) (``xeval study report``)."""
    from xeval.study.report import build_report

    plan, store = open_plan(req)
    return build_report(plan, store, out or store)


def plan_status(req: StudyRequest) -> StatusResult:
    """:func:`study_status` of the plan file (``xeval study status``)."""
    from xeval.sources import cache_dir

    return study_status(*open_plan(req), req.work or cache_dir() / "study")

"""Where a plan stands: which cells are stored, which remain and why some wait, which
ones workers hold now, and how long the rest should take at the stored cells' times."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xeval.provenance import lock_held
from xeval.study.cells import Cell, plan_cells
from xeval.study.plan import Plan
from xeval.study.runner import StudyRequest, blocked, claim_path, compare_with_stores, open_plan
from xeval.study.store import Store


@dataclass
class StatusResult:
    """A plan's cells by state, with the estimated work left (``xeval study status``)."""

    plan: str
    store: Path
    done: list[str]
    pending: list[tuple[str, str]]
    left_s: float = 0.0  # estimated seconds for the pending cells with a timed peer
    untimed: int = 0  # pending cells with no stored cell of their kind and benchmark timed
    running: list[tuple[str, float]] = field(default_factory=list)  # (cell, claimed at)

    def summary(self) -> str:
        lines = [f"study {self.plan} ({self.store}): {len(self.done)} done, "]
        lines[0] += f"{len(self.pending)} to run"
        if self.pending and self.untimed == len(self.pending):
            lines[0] += " (no stored cell like them is timed yet: no estimate)"
        elif self.pending:
            lines[0] += f"; ≈ {self.left_s / 3600:.1f} h of work left at the stored cells' times"
            if len(self.running) > 1:
                lines[0] += f", ≈ {self.left_s / 3600 / len(self.running):.1f} h of wall time"
                lines[0] += f" with the {len(self.running)} workers running now"
            lines[0] += f" ({self.untimed} cells untimed)" if self.untimed else ""
        by_kind: dict[str, list[int]] = {}
        for c in self.done:
            by_kind.setdefault(c.split("/")[0], [0, 0])[0] += 1
        for c, _ in self.pending:
            by_kind.setdefault(c.split("/")[0], [0, 0])[1] += 1
        lines += [f"  {k}: {d} done, {p} to run" for k, (d, p) in by_kind.items()]
        now = time.time()
        lines += [
            f"  running: {c} (for {(now - t) / 60:.0f} min, since "
            f"{time.strftime('%H:%M', time.localtime(t))})"
            for c, t in self.running
        ]
        busy = {c for c, _ in self.running}
        free = [(c, w) for c, w in self.pending if c not in busy]
        lines += [f"  next: {c}" + (f" (waits: {w})" if w else "") for c, w in free[:5]]
        return "\n".join(lines)


def study_status(plan: Plan, store: Path, work: Path | None = None) -> StatusResult:
    """Which cells are stored and which remain (with why they wait, if they do); with
    ``work``, which of them a worker holds now."""
    st = Store(store)
    cells = plan_cells(plan)
    done = [c.id for c in cells if st.done(c)]
    todo = [c for c in cells if not st.done(c)]
    pending = [(c.id, blocked(plan, c) or "") for c in todo]
    times = _timings(st)
    for _, other in compare_with_stores(plan):  # evaluations cost the same in any plan
        times = {k: v for k, v in _timings(other).items() if k[0].startswith("eval")} | times
    times = _train_from_devcurves(plan, st) | times
    known = [times[_timing_key(c)] for c in todo if _timing_key(c) in times]
    res = StatusResult(plan.name, store, done, pending, sum(known), len(todo) - len(known))
    res.running = running_cells(work / plan.name, [c.id for c in todo]) if work else []
    return res


def plan_status(req: StudyRequest) -> StatusResult:
    """:func:`study_status` of the plan file (``xeval study status``)."""
    from xeval.sources import cache_dir

    return study_status(*open_plan(req), req.work or cache_dir() / "study")


def running_cells(work: Path, cells: list[str]) -> list[tuple[str, float]]:
    """(cell, when claimed) of each of ``cells`` a live worker holds in ``work``."""
    held = ((c, lock_held(claim_path(work, c))) for c in cells)
    return [(c, t) for c, t in held if t is not None]


def _train_from_devcurves(plan: Plan, st: Store) -> dict[tuple[str, str], float]:
    """A fine-tune's cost before any is stored: its source's dev-curve seconds per step
    (evaluations excluded) times the source's planned steps."""
    out = {}
    for rec in st.records("devcurve"):
        src = rec.meta.get("source")
        per = ((rec.json("card") or {}).get("training") or {}).get("seconds_per_step")
        if src in {s.name for s in plan.sources} and per and plan.steps(src)[0]:
            out[_cost_key("train", None, None, src)] = float(per) * plan.steps(src)[0]
    return out


def _cost_key(
    kind: str, system: str | None, benchmark: str | None, source: str | None
) -> tuple[str, str]:
    """Cells that cost alike: an evaluation by benchmark (BM25 apart), training by source."""
    if kind == "eval":
        return ("eval-bm25" if system == "bm25" else "eval", benchmark or "")
    return (kind, source or "")


def _timing_key(cell: Cell) -> tuple[str, str]:
    s = cell.system
    return _cost_key(
        cell.kind, s.name if s else None, cell.benchmark, s.source if s else cell.source
    )


def _timings(st: Store) -> dict[tuple[str, str], float]:
    """Median stored ``seconds`` per :func:`_timing_key` (cells stored without a timing,
    or copied from another plan, are left out)."""
    seen: dict[tuple[str, str], list[float]] = {}
    for kind in ("eval", "train", "devcurve"):
        for rec in st.records(kind):
            m = rec.meta
            if m.get("seconds") is None or m.get("reused_from"):
                continue
            key = _cost_key(kind, m.get("system"), m.get("benchmark"), m.get("source"))
            card = rec.json("card") if kind == "train" else None
            seen.setdefault(key, []).append(_whole_seconds(float(m["seconds"]), card))
    return {k: statistics.median(v) for k, v in seen.items()}


def _whole_seconds(seconds: float, card: dict[str, Any] | None) -> float:
    """A cell's cost as if run in one go: a fine-tune resumed from a checkpoint timed only
    its last call, so its training time is its seconds per step times all its steps."""
    tr = (card or {}).get("training") or {}
    per, steps, this = (
        tr.get("seconds_per_step"),
        tr.get("max_steps"),
        tr.get("train_seconds_this_call"),
    )
    if not tr.get("resumed_from") or not per or not steps or this is None:
        return seconds
    return seconds - float(this) + float(per) * int(steps)

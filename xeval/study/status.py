"""Where a plan stands: which cells are stored, which remain and why some wait, which
ones workers hold now, and how long the rest should take at the stored cells' times."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from xeval.provenance import lock_held
from xeval.study.cells import plan_cells
from xeval.study.costs import cell_costs
from xeval.study.plan import Plan
from xeval.study.runner import blocked, claim_path
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
    costs = cell_costs(plan, st)
    known = [s for c in todo if (s := costs.of(c)) is not None]
    res = StatusResult(plan.name, store, done, pending, sum(known), len(todo) - len(known))
    res.running = running_cells(work / plan.name, [c.id for c in todo]) if work else []
    return res


def running_cells(work: Path, cells: list[str]) -> list[tuple[str, float]]:
    """(cell, when claimed) of each of ``cells`` a live worker holds in ``work``."""
    held = ((c, lock_held(claim_path(work, c))) for c in cells)
    return [(c, t) for c, t in held if t is not None]

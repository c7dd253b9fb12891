"""What a study cell costs: the median stored seconds of the cells like it.

Cells cost alike when they are evaluations on the same benchmark (BM25 apart) or
fine-tunes of the same source. A fine-tune resumed from a checkpoint is costed whole, and
before any fine-tune of a source is stored its cost is its dev curve's seconds per step
times the planned steps. Evaluations cost the same in any plan, so those of the
``compare_with`` plans count too. ``xeval study status`` sums these costs; ``xeval study
run --until`` starts an evaluation only when its cost fits before the deadline.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from xeval.study.cells import Cell
from xeval.study.plan import Plan
from xeval.study.store import Store, compare_with_stores


@dataclass(frozen=True)
class CellCosts:
    """Estimated seconds per kind of cell (see the module docstring)."""

    seconds: dict[tuple[str, str], float]

    def of(self, cell: Cell) -> float | None:
        """The estimated seconds of ``cell`` (None when no cell like it is timed)."""
        return self.seconds.get(_timing_key(cell))


def cell_costs(plan: Plan, store: Store) -> CellCosts:
    """The cost table of ``plan`` from its store (and its ``compare_with`` stores)."""
    times = _timings(store)
    for _, other in compare_with_stores(plan):
        times = {k: v for k, v in _timings(other).items() if k[0].startswith("eval")} | times
    return CellCosts(_train_from_devcurves(plan, store) | times)


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

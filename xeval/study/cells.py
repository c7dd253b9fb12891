"""Cell ids and the balanced order in which a plan's cells run.

A *system* is something evaluated: a baseline (``base`` = the plan's base model,
``bm25``) or a fine-tune ``<source>-<strategy>-s<seed>`` (``mlqa-hybrid-a0.5-s1``).
Cells, in the order :func:`plan_cells` returns them:

1. ``eval/<baseline>/<benchmark>`` for every baseline, benchmarks in plan order;
2. ``devcurve/<source>`` for every ``[[devcurve]]`` of the plan;
3. round by round over the seeds (every strategy gets seed 0 before any gets seed 1):
   for each source and strategy (the alpha-curve strategies in the rounds of their
   seeds), ``train/<system>`` and then ``eval/<system>/<benchmark>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from xeval.study.plan import Plan, Strategy

BASELINE_MODELS = {"bm25": "bm25"}  # baseline name -> model given to the run stage


@dataclass(frozen=True)
class System:
    """One evaluated system; ``source`` is None for a baseline."""

    name: str
    source: str | None = None
    strategy: Strategy | None = None
    seed: int | None = None

    @property
    def trained(self) -> bool:
        return self.source is not None


@dataclass(frozen=True)
class Cell:
    """One unit of work whose result, once stored, marks it done."""

    kind: str  # "eval" | "train" | "devcurve"
    system: System | None = None
    benchmark: str | None = None
    source: str | None = None

    @property
    def id(self) -> str:
        if self.kind == "devcurve":
            return f"devcurve/{self.source}"
        assert self.system is not None
        if self.kind == "train":
            return f"train/{self.system.name}"
        return f"eval/{self.system.name}/{self.benchmark}"


def system_name(source: str, strategy: Strategy, seed: int) -> str:
    return f"{source}-{strategy.label}-s{seed}"


def baseline_model(plan: Plan, name: str) -> str:
    """The model a baseline evaluates (``base`` is the plan's base model)."""
    return plan.base_model if name == "base" else BASELINE_MODELS.get(name, name)


def curve_strategies(plan: Plan) -> tuple[Strategy, ...]:
    """Hybrid at the alpha-curve alphas that the main strategies do not already cover."""
    main = {st.label for st in plan.strategies}
    extra = (Strategy("hybrid", a) for a in plan.alpha_curve.alphas)
    return tuple(st for st in extra if st.label not in main)


def seed_rounds(plan: Plan) -> list[int]:
    """Every seed of the plan, training seeds first, in plan order."""
    return list(dict.fromkeys([*plan.training.seeds, *plan.alpha_curve.seeds]))


def trained_systems(plan: Plan) -> list[System]:
    """Every fine-tune of the plan in balanced order."""
    out = []
    for seed in seed_rounds(plan):
        for src in plan.sources:
            strategies = [st for st in plan.strategies if seed in plan.training.seeds]
            if seed in plan.alpha_curve.seeds:
                strategies += curve_strategies(plan)
            for st in strategies:
                out.append(System(system_name(src.name, st, seed), src.name, st, seed))
    return out


def plan_cells(plan: Plan) -> list[Cell]:
    """All cells of ``plan`` in the order they run."""
    cells = [
        Cell("eval", System(b), bench.name) for b in plan.baselines for bench in plan.benchmarks
    ]
    cells += [Cell("devcurve", source=dc.source) for dc in plan.devcurves]
    for sys_ in trained_systems(plan):
        cells.append(Cell("train", sys_))
        src = plan.source(sys_.source or "")
        cells += [Cell("eval", sys_, b.name) for b in plan.benchmarks_of(src)]
    return cells

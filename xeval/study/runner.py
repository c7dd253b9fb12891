"""Resumable execution of a plan: run every cell not yet in the store, in plan order.

A cell is done when its folder in the store holds ``result.json``; a killed study
re-run with the same plan skips those and continues with the next. A fine-tune killed
mid-way resumes from its last checkpoint in the work folder. Models are not stored: an
eval cell whose model is missing from the work folder (another machine trained it)
re-trains it there first, from the same seed and data, without rewriting its train cell,
and refuses to evaluate the retrained model unless its fingerprint equals the one that
train cell stored (training that is not bit-reproducible on the new machine is an error,
not a silent mix of two models in one store).

With a deadline (``--until``) a worker starts no cell it cannot end in time (an
evaluation by its estimated cost, :mod:`xeval.study.costs`) and its fine-tunes checkpoint
and stop before the deadline (:class:`~xeval.training.callbacks.StopBy`).

Several workers (``xeval study run`` started more than once with the same ``--work``,
each best with ``OMP_NUM_THREADS=1``) share a plan: a worker claims a cell by locking
``<work>/<plan>/claims/<cell>`` (the lock dies with its process), skips cells another
worker holds and evaluations whose fine-tune is not stored yet, and waits for them
before it exits, so the last fine-tune's evaluations are shared out too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xeval.errors import XevalError
from xeval.provenance import target_lock
from xeval.study import stages
from xeval.study.cells import Cell, System, baseline_model, plan_cells
from xeval.study.consistency import check_benchmark, check_pairs
from xeval.study.costs import CellCosts, cell_costs
from xeval.study.plan import Plan
from xeval.study.store import Store, compare_with_stores


@dataclass
class RunOptions:
    """How to run a study (the plan says what)."""

    work: Path
    store: Path
    git_commit: bool = False
    max_cells: int | None = None
    kinds: tuple[str, ...] = ("eval", "train", "devcurve")
    log: Callable[[str], None] = print
    poll_s: float = 30.0  # how often a worker with nothing to do looks again
    only: tuple[str, ...] = ()  # glob patterns over cell ids; empty: every cell
    deadline: float | None = None  # time.time() by which to stop (``--until``)
    min_start_s: float = 300.0  # start no cell with less time than this to the deadline


@dataclass
class RunResult:
    plan: str
    total: int
    done_before: int
    ran: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)
    late: list[tuple[str, str]] = field(default_factory=list)  # not started: the deadline
    stopped: str | None = None  # the fine-tune that checkpointed and stopped for it

    def summary(self) -> str:
        lines = [
            f"study {self.plan}: {self.done_before + len(self.ran)} of {self.total} cells done "
            f"({len(self.ran)} this run)"
        ]
        lines += [f"  skipped {c}: {why}" for c, why in self.skipped]
        if self.waiting:
            lines.append(f"  {len(self.waiting)} cell(s) wait: {self.waiting[0][1]}")
        if self.stopped:
            lines.append(f"  stopped {self.stopped}")
        if self.late:
            lines.append(f"  {len(self.late)} cell(s) not started before the deadline "
                         f"({self.late[0][0]}: {self.late[0][1]}); run again to continue")  # fmt: skip
        return "\n".join(lines)


def claim_path(work: Path, cell_id: str) -> Path:
    """The file a worker locks to hold ``cell_id`` (``work`` is the plan's work folder)."""
    return work / "claims" / cell_id.replace("/", "+")


def blocked(plan: Plan, cell: Cell) -> str | None:
    """Why ``cell`` cannot run yet (None when it can)."""
    s = cell.system
    if s is not None and s.trained and plan.steps(s.source or "")[0] <= 0:
        return "steps not decided (run `xeval study devcurve`, then set them in the plan)"
    return None


class Runner:
    """Runs cells of one plan into one store, with heavy files in ``work``."""

    def __init__(self, plan: Plan, opts: RunOptions) -> None:
        self.plan, self.opts = plan, opts
        self.store = Store(opts.store)
        self.work = opts.work / plan.name
        self._started = time.perf_counter()

    # ---- shared pieces -----------------------------------------------------------------
    def claim_path(self, cell_id: str) -> Path:
        return claim_path(self.work, cell_id)

    @contextlib.contextmanager
    def claim(self, cell_id: str, wait: bool = False) -> Iterator[bool]:
        """Hold ``cell_id`` for this worker; yields False when another worker holds it."""
        path = self.claim_path(cell_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as held:
            try:  # only taking the lock may mean "held elsewhere"; the cell's errors pass
                held.enter_context(target_lock(path, wait=wait))
            except XevalError as exc:
                if "another xeval process" not in str(exc):
                    raise
                yield False
                return
            yield True

    def bench(self, name: str) -> Path:
        return stages.benchmark_dir(self.plan.benchmark(name), self.work)

    def _train(self, system: System) -> stages.TrainOutput:
        src = self.plan.source(system.source or "")
        pairs, _, pinfo = stages.prepare_pairs(src, self.work)
        check_pairs(self.store, src.name, pinfo.get("fingerprint"))
        assert system.strategy is not None and system.seed is not None
        overlap = [str(self.bench(b.name)) for b in self.plan.benchmarks_of(src)]
        return stages.finetune(
            self.plan,
            pairs,
            self.work / "ft" / system.name,
            strategy=system.strategy.name,
            alpha=system.strategy.alpha,
            seed=system.seed,
            max_steps=self.plan.steps(src.name)[0],
            overlap_benchmarks=overlap,
            deadline=self.opts.deadline,
        )

    def _meta(self, cell: Cell, **extra: Any) -> dict[str, Any]:
        s = cell.system
        return {
            "plan": self.plan.name,
            "kind": cell.kind,
            "system": s.name if s else None,
            "source": (s.source if s else cell.source),
            "strategy": s.strategy.name if s and s.strategy else None,
            "alpha": s.strategy.alpha if s and s.strategy else None,
            "seed": s.seed if s else None,
            "benchmark": cell.benchmark,
            "precision": self.plan.training.precision,
            "eval_precision": _eval_precision(self.plan),
            "seconds": round(time.perf_counter() - self._started, 1),
            "threads": _threads(),
            **extra,
        }

    # ---- cells --------------------------------------------------------------------------
    def run_eval(self, cell: Cell) -> None:
        s = cell.system
        assert s is not None and cell.benchmark is not None
        if s.trained:  # one worker (re)trains a model its work folder lacks; others wait
            with self.claim(f"train/{s.name}", wait=True):
                model = self._trained_model(s)
        else:
            model = baseline_model(self.plan, s.name)
        bench = self.bench(cell.benchmark)
        info = stages.benchmark_info(bench)
        check_benchmark(self.store, cell.benchmark, info["fingerprint"])
        if not s.trained and self._reuse_baseline(cell, model, bench):
            return
        rundir = self.work / "runs" / cell.benchmark / s.name
        emb = self.work / "embeddings"
        scores = stages.evaluate(model, bench, rundir, emb, _eval_precision(self.plan))
        meta = self._meta(
            cell,
            model={"name": str(model), "fingerprint": stages.run_model_fingerprint(rundir, model)},
            benchmark_info=info,
            benchmark_spec=_spec(self.plan.benchmark(cell.benchmark)),
            metrics=list(stages.METRICS),
            units=scores["unit_id"].n_unique(),
        )
        self.store.write(cell, meta, {"scores": scores}, {})

    def _trained_model(self, system: System) -> Path:
        """The fine-tune's model, retrained when the work folder lacks it; a retrained
        model must be the one its stored train cell describes (same fingerprint)."""
        retrain = not (self.work / "ft" / system.name / "model").is_dir()
        out = self._train(system)
        rec = self.store.get(f"train/{system.name}")
        if not retrain or rec is None:
            return out.model_dir
        want = (rec.meta.get("model") or {}).get("fingerprint")
        have = (out.card.get("model") or {}).get("fingerprint")
        if want != have:
            raise XevalError(
                f"{system.name} was retrained here (the work folder lacked its model) but the "
                f"retrained model's fingerprint {str(have)[:12]} differs from {str(want)[:12]}, "
                "which its stored train cell records: training is not reproducible on this "
                "machine (threads, libraries or CPU differ). Evaluating it would mix two "
                "models in one store; remove that train cell and the fine-tune's eval cells "
                "to redo them all here.",
                file=rec.folder / "result.json",
            )
        self.opts.log(f"  retrained {system.name}: same fingerprint as its train cell")
        return out.model_dir

    def _reuse_baseline(self, cell: Cell, model: str | Path, bench: Path) -> bool:
        """Copy a baseline cell a ``compare_with`` plan already stored for the same model,
        benchmark build and evaluation precision (its provenance says where it came from)."""
        if not self.plan.compare_with:
            return False
        want = (
            stages.model_fingerprint(model),
            stages.benchmark_info(bench)["fingerprint"],
            _eval_precision(self.plan),
        )
        if None in want[:2]:  # e.g. bm25: nothing to prove the runs alike
            return False
        for rel, other in compare_with_stores(self.plan):
            rec = other.get(cell.id)
            if rec is None:
                continue
            m = rec.meta
            have = (
                (m.get("model") or {}).get("fingerprint"),
                (m.get("benchmark_info") or {}).get("fingerprint"),
                m.get("eval_precision"),
            )
            if have == want:
                made = ("cell", "created", "command", "versions", "platform")
                meta = {k: v for k, v in m.items() if k not in made}
                origin = {"plan_file": rel, "plan": m.get("plan"), "cell": cell.id}
                origin |= {k: m.get(k) for k in made[1:]}
                meta |= {"plan": self.plan.name, "reused_from": origin}
                self.store.write(cell, meta, {"scores": rec.table("scores")}, {})
                return True
        return False

    def run_train(self, cell: Cell) -> None:
        assert cell.system is not None
        out = self._train(cell.system)
        steps, steps_from = self.plan.steps(cell.system.source or "")
        meta = self._meta(
            cell,
            steps=steps,
            steps_from=steps_from,
            model={"fingerprint": (out.card.get("model") or {}).get("fingerprint")},
            pairs_fingerprint=(out.card.get("pairs") or {}).get("fingerprint"),
            languages=((out.card.get("pairs") or {}).get("summary") or {}).get("languages"),
            overlap=stages.overlap_figures(out.card),
        )
        self.store.write(cell, meta, {"loss": out.loss, "dev": out.dev}, {"card": out.card})

    def run_devcurve(self, cell: Cell) -> None:
        dc = next(d for d in self.plan.devcurves if d.source == cell.source)
        src = self.plan.source(dc.source)
        pairs, dev_bench, pinfo = stages.prepare_pairs(src, self.work)
        check_pairs(self.store, src.name, pinfo.get("fingerprint"))
        out = stages.finetune(
            self.plan,
            pairs,
            self.work / "devcurve" / src.name,
            strategy=dc.strategy,
            alpha=dc.alpha,
            seed=dc.seed,
            max_steps=dc.max_steps,
            eval_benchmark=str(dev_bench),
            eval_steps=dc.every,
            eval_queries=dc.dev_queries,
            deadline=self.opts.deadline,
        )
        meta = self._meta(
            cell, devcurve=_spec(dc), pairs=pinfo, dev_benchmark=stages.benchmark_info(dev_bench)
        )
        self.store.write(cell, meta, {"loss": out.loss, "dev": out.dev}, {"card": out.card})

    def run_cell(self, cell: Cell) -> None:
        self._started = time.perf_counter()
        {"eval": self.run_eval, "train": self.run_train, "devcurve": self.run_devcurve}[cell.kind](
            cell
        )


def _spec(obj: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(obj)


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _eval_precision(plan: Plan) -> str:
    return plan.training.eval_precision or plan.training.precision


def select_cells(
    every: list[Cell], kinds: tuple[str, ...], only: tuple[str, ...] = (), plan: str = ""
) -> list[Cell]:
    """The cells of ``every`` (a plan's cells) of ``kinds`` whose id matches one of the
    ``only`` globs (all when none); a pattern that matches no cell is an error."""
    from fnmatch import fnmatchcase

    for pat in only:
        if not any(fnmatchcase(c.id, pat) for c in every):
            raise XevalError(f"--only {pat!r} matches no cell of plan {plan!r}")
    return [
        c
        for c in every
        if c.kind in kinds and (not only or any(fnmatchcase(c.id, p) for p in only))
    ]


def run_study(plan: Plan, opts: RunOptions) -> RunResult:
    """Run every cell of ``plan`` missing from the store (see the module docstring)."""
    runner = Runner(plan, opts)
    every = plan_cells(plan)
    cells = select_cells(every, opts.kinds, opts.only, plan.name)
    res = RunResult(plan.name, len(every), sum(runner.store.done(c) for c in every))
    res.waiting = [(c.id, w) for c in cells if not runner.store.done(c) and (w := blocked(plan, c))]
    tried = {c for c, _ in res.waiting}
    costs = cell_costs(plan, runner.store) if opts.deadline is not None else None
    while True:
        ran_before, busy = len(res.ran), False
        for cell in cells:
            if cell.id in tried or runner.store.done(cell):
                continue
            if opts.max_cells is not None and len(res.ran) >= opts.max_cells:
                return res
            if costs is not None and (why := too_late(cell, costs, opts)):
                res.late.append((cell.id, why))
                tried.add(cell.id)
                continue
            if "train" in opts.kinds and _needs_training(runner, cell):
                busy = True  # its fine-tune is running in another worker
                continue
            with runner.claim(cell.id) as mine:
                if not mine:
                    busy = True
                    continue
                if runner.store.done(cell):  # another worker finished it meanwhile
                    continue
                if not _run_one(runner, cell, res, opts):
                    tried.add(cell.id)
            if res.stopped:
                return res
        if not busy or (opts.deadline is not None and time.time() >= opts.deadline):
            return res
        if len(res.ran) == ran_before:
            time.sleep(opts.poll_s)


def too_late(cell: Cell, costs: CellCosts, opts: RunOptions) -> str | None:
    """Why ``cell`` should not start before ``opts.deadline`` (None: start it).

    A fine-tune checkpoints and stops in time, so it needs only ``opts.min_start_s``; an
    evaluation cannot stop half-way, so it also needs its estimated cost.
    """
    assert opts.deadline is not None
    left = opts.deadline - time.time()
    if left < opts.min_start_s:
        return f"{max(left, 0) / 60:.0f} min to the deadline"
    cost = costs.of(cell) if cell.kind == "eval" else None
    if cost is not None and cost > left:
        return f"needs ≈ {cost / 60:.0f} min, {left / 60:.0f} min left"
    return None


def _needs_training(runner: Runner, cell: Cell) -> bool:
    s = cell.system
    return bool(
        cell.kind == "eval" and s and s.trained and not runner.store.done(f"train/{s.name}")
    )


def _run_one(runner: Runner, cell: Cell, res: RunResult, opts: RunOptions) -> bool:
    """Run and store one claimed cell; False when it was skipped (e.g. BM25 absent)."""
    t = time.perf_counter()
    opts.log(f"running {cell.id}")  # names the cell of the progress lines that follow
    try:
        runner.run_cell(cell)
    except stages.DeadlineStop as exc:
        res.stopped = f"{cell.id}: {exc.message}"
        opts.log(f"stopped {res.stopped}")
        return False
    except XevalError as exc:
        if cell.system is None or cell.system.trained or cell.system.name == "base":
            raise
        res.skipped.append((cell.id, str(exc)))  # e.g. bm25 absent from this build
        opts.log(f"skipped {cell.id}: {exc}")
        return False
    res.ran.append(cell.id)
    opts.log(f"stored {cell.id} ({time.perf_counter() - t:.1f} s)")
    if opts.git_commit:
        opts.log(f"  git: {runner.store.git_commit(cell)}")
    return True

"""A study plan: a TOML file read into typed, checked dataclasses.

Sections (see ``benchmarks/study/*.toml`` for commented examples)::

    [study]       name, base_model, description, compare_with (plans whose fine-tunes
                  the report sets beside this plan's, on the benchmarks both evaluate)
    [training]    steps, steps_from, steps_cap (the dev-curve suggestion's ceiling),
                  batch_size, max_length, lr, warmup, scale, freeze_embeddings,
                  precision, eval_precision, seeds, save_steps, logging_steps
    [[sources]]   name, pairs (a pair source of ``xeval pairs``), domain, options,
                  source (path), max_units, dev_units, benchmarks (names it is evaluated on),
                  steps / steps_from (override [training] for this source)
    [[strategies]] name (xx | xy | hybrid), alpha
    [alpha_curve] alphas, seeds            hybrid at more alphas, fewer seeds
    [[devcurve]]  source, strategy, alpha, seed, every, max_steps, dev_queries (one
                  table or several: one dev curve per training source)
    [[benchmarks]] name, builder, domain, source, sample_queries, seed, options, path
    [baselines]   models                   evaluation-only systems ("base" = the base model)

``steps = 0`` means "not decided yet": the source's training cells wait (``xeval study
status`` says so) until the dev curve has run and the plan names a step count.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from xeval.errors import XevalError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

STRATEGY_NAMES = ("xx", "xy", "hybrid")
DOMAINS = ("general", "legal", "technical", "test", "user")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Training:
    """Hyperparameters shared by every fine-tune of the plan."""

    steps: int = 0
    steps_from: str = "not decided: run `xeval study devcurve` first"
    steps_cap: int = 0  # ceiling on the dev-curve suggestion (0 = none)
    batch_size: int = 32
    max_length: int = 128
    lr: float = 3e-5
    warmup: float = 0.1
    scale: float = 20.0
    freeze_embeddings: bool = True
    precision: str = "fp32"  # fine-tuning
    eval_precision: str = ""  # encoding for evaluation; "" = the same as precision
    seeds: tuple[int, ...] = (0,)
    save_steps: int = 50
    logging_steps: int = 10


@dataclass(frozen=True)
class Source:
    """A training-pair source; ``dev_units`` of its units are held out of training."""

    name: str
    pairs: str
    domain: str = "general"
    options: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    max_units: int | None = None
    dev_units: int = 0
    benchmarks: tuple[str, ...] = ()
    steps: int | None = None  # overrides training.steps for this source
    steps_from: str | None = None


@dataclass(frozen=True)
class Strategy:
    name: str
    alpha: float = 0.5

    @property
    def label(self) -> str:
        return f"hybrid-a{self.alpha:g}" if self.name == "hybrid" else self.name


@dataclass(frozen=True)
class AlphaCurve:
    alphas: tuple[float, ...] = ()
    seeds: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class DevCurve:
    """A fine-tune evaluated on the held-out units every ``every`` steps."""

    source: str = ""
    strategy: str = "hybrid"
    alpha: float = 0.5
    seed: int = 0
    every: int = 50
    max_steps: int = 0
    dev_queries: int | None = None


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark, built by ``builder`` (or read from ``path``) with sizes fixed here."""

    name: str
    builder: str = ""
    domain: str = "general"
    source: str | None = None
    sample_queries: int | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    path: str | None = None


@dataclass(frozen=True)
class Plan:
    name: str
    base_model: str
    path: Path
    training: Training
    sources: tuple[Source, ...]
    strategies: tuple[Strategy, ...]
    benchmarks: tuple[BenchmarkSpec, ...]
    baselines: tuple[str, ...] = ("base",)
    alpha_curve: AlphaCurve = AlphaCurve()
    devcurves: tuple[DevCurve, ...] = ()
    description: str = ""
    compare_with: tuple[str, ...] = ()  # other plans (paths relative to this one)

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)

    def benchmark(self, name: str) -> BenchmarkSpec:
        return next(b for b in self.benchmarks if b.name == name)

    def steps(self, source: str) -> tuple[int, str]:
        """Optimizer steps of a source's fine-tunes and where that number came from."""
        src = self.source(source)
        if src.steps is not None:
            return src.steps, src.steps_from or ""
        return self.training.steps, self.training.steps_from

    def benchmarks_of(self, source: Source) -> tuple[BenchmarkSpec, ...]:
        """The benchmarks a source's fine-tunes are evaluated on (plan order)."""
        if not source.benchmarks:
            return self.benchmarks
        return tuple(b for b in self.benchmarks if b.name in source.benchmarks)


def _build(cls: type, raw: Any, where: str) -> Any:
    """``cls(**raw)`` with unknown keys and wrong shapes reported as XevalError."""
    if not isinstance(raw, dict):
        raise XevalError(f"[{where}] must be a table")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise XevalError(f"[{where}] has unknown key(s) {unknown}; known: {sorted(known)}")
    conv = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    try:
        return cls(**conv)
    except TypeError as exc:
        raise XevalError(f"[{where}] {exc}") from None


def _check(plan: Plan) -> None:
    t = plan.training
    if t.precision not in PRECISIONS or t.eval_precision not in ("", *PRECISIONS):
        raise XevalError(f"training.precision and eval_precision must be one of {PRECISIONS}")
    if t.steps < 0 or t.batch_size < 2 or t.max_length < 8 or not t.seeds:
        raise XevalError("training: steps >= 0, batch_size >= 2, max_length >= 8, seeds given")
    names = [s.name for s in plan.sources] + [b.name for b in plan.benchmarks]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise XevalError(f"duplicate source/benchmark name(s) {sorted(dup)}")
    bnames = {b.name for b in plan.benchmarks}
    for s in plan.sources:
        if set(s.benchmarks) - bnames:
            raise XevalError(f"source {s.name}: unknown benchmark(s) {set(s.benchmarks) - bnames}")
    for st in plan.strategies:
        if st.name not in STRATEGY_NAMES or not 0 <= st.alpha <= 1:
            raise XevalError(f"strategy {st.name!r}: name in {STRATEGY_NAMES}, alpha in [0, 1]")
    for b in plan.benchmarks:
        if not (b.builder or b.path):
            raise XevalError(f"benchmark {b.name}: give builder or path")
        clash = sorted({"seed", "sample_queries", "source"} & set(b.options))
        if clash:
            raise XevalError(
                f"benchmark {b.name}: set {clash} as keys of [[benchmarks]], not options"
            )
    for dc in plan.devcurves:
        if dc.source not in {s.name for s in plan.sources}:
            raise XevalError(f"devcurve.source {dc.source!r} is not a [[sources]] name")
        if not plan.source(dc.source).dev_units:
            raise XevalError(f"devcurve: source {dc.source!r} holds out no dev_units")
        if dc.max_steps < 1 or dc.every < 1:
            raise XevalError(f"devcurve {dc.source}: max_steps and every must be >= 1")


def _tables(raw: Any) -> list[Any]:
    """``[devcurve]`` (one table) or ``[[devcurve]]`` (several) as a list."""
    if raw is None:
        return []
    return raw if isinstance(raw, list) else [raw]


def load_plan(path: str | Path) -> Plan:
    """Read and check a plan file; errors name the file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise XevalError("plan file not found", file=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise XevalError(f"not valid TOML ({exc})", file=path) from None
    try:
        study = raw.get("study", {})
        plan = Plan(
            name=study.get("name") or path.stem,
            base_model=study["base_model"],
            path=path,
            training=_build(Training, raw.get("training", {}), "training"),
            sources=tuple(_build(Source, s, "sources") for s in raw.get("sources", [])),
            strategies=tuple(_build(Strategy, s, "strategies") for s in raw.get("strategies", [])),
            benchmarks=tuple(_build(BenchmarkSpec, b, "benchmarks") for b in raw["benchmarks"]),
            baselines=tuple(raw.get("baselines", {}).get("models", ["base"])),
            alpha_curve=_build(AlphaCurve, raw.get("alpha_curve", {}), "alpha_curve"),
            devcurves=tuple(_build(DevCurve, d, "devcurve") for d in _tables(raw.get("devcurve"))),
            description=study.get("description", ""),
            compare_with=tuple(study.get("compare_with", [])),
        )
        _check(plan)
    except KeyError as exc:
        raise XevalError(f"missing required key {exc}", file=path) from None
    except XevalError as exc:
        if exc.file is None:
            raise XevalError(exc.message, file=path) from None
        raise
    return plan

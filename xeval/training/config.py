"""The options of ``xeval finetune``, the settings a ``--resume`` must match, and what
:func:`~xeval.training.finetune.prepare` checked before training (:class:`Prepared`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xeval.errors import XevalError
from xeval.precision import DTYPES
from xeval.training.sampler import STRATEGIES

if TYPE_CHECKING:
    import polars as pl

    from xeval.precision import Precision
    from xeval.training.checkpoints import ResumePoint
    from xeval.training.sampler import BatchPlan, PairMeta

CARD_NAME = "xeval-train.json"
CONFIG_NAME = "xeval-train-config.json"
# settings that change what is trained: a resume must match them
IDENTITY = (
    "model",
    "pairs_fingerprint",
    "strategy",
    "alpha",
    "batch_size",
    "lr",
    "weight_decay",
    "epochs",
    "max_steps",
    "warmup",
    "scale",
    "max_length",
    "query_prompt",
    "passage_prompt",
    "seed",
    "freeze_embeddings",
    "languages",
    "gather_across_devices",
    "world_size",
    "precision",
)


@dataclass
class FinetuneConfig:
    """Every option of ``xeval finetune`` (defaults: the paper where it says, else stated)."""

    model: str
    pairs: str
    out: str
    strategy: str = "hybrid"
    alpha: float = 0.5
    batch_size: int = 32
    lr: float = 3e-5
    weight_decay: float = 0.01
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    warmup: float = 0.1  # < 1: share of the steps; >= 1: number of steps
    scale: float = 20.0  # 1 / temperature (0.05)
    max_length: int | None = 128
    query_prompt: str = "query: "
    passage_prompt: str = "passage: "
    seed: int = 0
    freeze_embeddings: bool = False
    languages: list[str] | None = None
    gather_across_devices: bool = False
    save_steps: int = 500
    save_total_limit: int | None = 2
    keep_checkpoints: bool = False
    resume: bool = False
    overwrite: bool = False
    stop_after: int | None = None
    logging_steps: int = 10
    progress: bool = True
    device: str | None = None
    dtype: str = "auto"  # auto | fp32 | bf16 (see xeval.precision)
    threads: int | None = None  # per process; None: $OMP_NUM_THREADS, else physical cores
    eval_benchmark: str | None = None
    eval_steps: int | None = None
    eval_queries: int | None = 200
    eval_kinds: tuple[str, ...] = ("mono", "cross")
    overlap_benchmarks: list[str] = field(default_factory=list)
    allow_overlap: bool = False
    max_overlap: float = 0.001
    overlap_ngram: int | None = None
    world_size: int = 1

    def check(self) -> None:
        """Option errors, raised before anything is loaded."""
        if self.strategy not in STRATEGIES:
            raise XevalError(f"unknown strategy {self.strategy!r}; choose from {list(STRATEGIES)}")
        if not (0.0 <= self.alpha <= 1.0):
            raise XevalError(f"--alpha must lie in [0, 1], got {self.alpha}")
        for name in ("batch_size", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise XevalError(f"--{name.replace('_', '-')} must be >= 1")
        if self.lr <= 0 or self.scale <= 0 or self.weight_decay < 0 or self.warmup < 0:
            raise XevalError("--lr and --scale must be > 0, --weight-decay and --warmup >= 0")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise XevalError("give --epochs > 0 or --max-steps > 0")
        if self.max_length is not None and self.max_length < 8:
            raise XevalError("--max-length must be >= 8 tokens")
        if self.resume and self.overwrite:
            raise XevalError("--resume and --overwrite exclude each other")
        for name in ("eval_steps", "stop_after", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise XevalError(f"--{name.replace('_', '-')} must be >= 1")
        if self.dtype.strip().lower() not in DTYPES:
            raise XevalError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")


def identity(cfg: FinetuneConfig, fingerprint: str, precision: str) -> dict[str, Any]:
    """The settings that decide what is trained (``precision``: the resolved dtype)."""
    d = dataclasses.asdict(cfg)
    d["pairs_fingerprint"] = fingerprint
    d["precision"] = precision
    return {k: d[k] for k in IDENTITY}


@dataclass
class Prepared:
    """What :func:`prepare` checked and loaded: everything but the model."""

    pairs: pl.DataFrame
    meta: PairMeta
    plan: BatchPlan
    fingerprint: str
    precision: Precision
    identity: dict[str, Any]
    resume: ResumePoint | None
    overlap: list[dict[str, Any]] = field(default_factory=list)

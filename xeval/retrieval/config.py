"""What ``xeval run`` can be told (:class:`RunConfig`) and what it returns (:class:`RunResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xeval.errors import XevalError
from xeval.retrieval.cache import default_cache_root
from xeval.retrieval.search import BACKENDS, HNSW_THRESHOLD
from xeval.tables import KINDS

TREC_FORMATS = ("none", "gz", "plain")


@dataclass(frozen=True)
class RunConfig:
    """Everything ``xeval run`` can be told, with its defaults."""

    k: int = 100
    backend: str = "auto"  # exact | hnsw | auto (HNSW for pools over hnsw_threshold)
    batch_size: int = 64
    query_prompt: str | None = None  # None: the model's own; "" for none
    passage_prompt: str | None = None
    kinds: tuple[str, ...] = KINDS
    languages: tuple[str, ...] | None = None
    device: str | None = None
    dtype: str = "auto"  # auto | fp32 | bf16 (xeval.precision)
    threads: int | None = None  # torch threads; None: the physical cores
    cache_dir: Path | None = None
    use_cache: bool = True
    overwrite: bool = False
    seed: int = 0
    hnsw_threshold: int = HNSW_THRESHOLD
    hnsw_params: dict[str, Any] = field(default_factory=dict)
    memory_mb: float = 256
    progress: bool = True
    trec: str = "none"  # none | gz | plain
    label: str | None = None  # the run's system name (TREC tag); default: the model label

    def cache_root(self) -> Path:
        """The embedding cache folder (also where HNSW indexes are stored)."""
        return Path(self.cache_dir) if self.cache_dir is not None else default_cache_root()

    def index_root(self) -> Path | None:
        """Where HNSW indexes are stored and reused (None: no cache, build in memory)."""
        return self.cache_root() if self.use_cache else None

    def check(self, out: Path) -> None:
        """Refuse options no run can use, and an existing ``out`` without ``overwrite``."""
        if self.backend not in BACKENDS:
            raise XevalError(
                f"unknown search backend {self.backend!r}; choose from {list(BACKENDS)}"
            )
        if self.k < 1:
            raise XevalError(f"k must be at least 1, got {self.k}")
        if self.trec not in TREC_FORMATS:
            raise XevalError(f"--trec must be one of {', '.join(TREC_FORMATS)}, got {self.trec!r}")
        if out.exists() and not self.overwrite:
            raise XevalError(f"{out} exists; pass --overwrite to replace it")


@dataclass(frozen=True)
class RunResult:
    """What ``run_benchmark`` wrote, and how long each stage took."""

    path: Path
    label: str
    settings: tuple[str, ...]
    k: int
    precision: str
    threads: int
    queries: dict[str, int]
    passages: dict[str, int]
    backends: dict[str, str]
    timings_s: dict[str, float]

    def __fspath__(self) -> str:
        return str(self.path)

    def summary(self) -> str:
        q, p = self.queries, self.passages
        cut = q.get("truncated", 0) + p.get("truncated", 0)
        t = self.timings_s
        return (
            f"wrote {self.path}: {len(self.settings)} settings, k={self.k}, label {self.label}; "
            f"encoded {q['encoded']} queries + {p['encoded']} passages "
            f"({q['cached'] + p['cached']} from cache, {cut} truncated at the model maximum) "
            f"in {t['encode']:.1f} s ({self.precision}, {self.threads} threads), "
            f"searched and wrote in {t['search']:.1f} s"
        )

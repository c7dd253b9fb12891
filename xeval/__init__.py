"""xeval: evaluation-first toolkit for zero-shot cross-lingual retrieval.

Stages: ``benchmark`` (sources -> canonical benchmark + LaReQA settings),
``retrieval`` (encode + search -> runs), ``metrics``/``evaluation`` (runs -> scores),
``compare`` (significance + reports), ``training`` (hybrid-batch fine-tuning),
``models`` (offline multilingual-e5-small, tiny test model).
"""

from __future__ import annotations

__version__ = "0.1.0"

from xeval.benchmark.schema import Benchmark, load_benchmark
from xeval.benchmark.settings import Setting, enumerate_settings
from xeval.errors import XevalError
from xeval.evaluation.frames import evaluate

__all__ = [
    "Benchmark",
    "Setting",
    "XevalError",
    "__version__",
    "enumerate_settings",
    "evaluate",
    "load_benchmark",
]

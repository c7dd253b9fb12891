"""Fine-tuning with X-X / X-Y / hybrid batches (Elmahdy et al., arXiv 2408.10536).

- :mod:`xeval.training.pairs`    the pairs table, LaReQA and parallel-JSONL pairs, dispatch
  to the domain pair builders;
- :mod:`xeval.training.sampler`  the seeded, multi-process-safe batch sampler;
- :mod:`xeval.training.overlap`  the training/evaluation overlap guard;
- :mod:`xeval.training.finetune` ``xeval finetune`` over sentence-transformers' trainer.

Submodules are imported on use: ``import xeval.training`` loads neither torch nor
sentence-transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PAIR_COLUMNS": "pairs",
    "PAIR_SOURCES": "pairs",
    "build_pairs": "pairs",
    "load_pairs": "pairs",
    "save_pairs": "pairs",
    "training_columns": "pairs",
    "BatchPlan": "sampler",
    "HybridBatchSampler": "sampler",
    "PairMeta": "sampler",
    "make_batch_sampler": "sampler",
    "check_overlap": "overlap",
    "overlap_report": "overlap",
    "FinetuneConfig": "finetune",
    "finetune": "finetune",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

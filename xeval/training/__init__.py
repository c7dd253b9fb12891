"""Fine-tuning with X-X / X-Y / hybrid batches (Elmahdy et al., arXiv 2408.10536).

- :mod:`xeval.training.pairs`    the pairs table and the pair-source registry
  (:func:`~xeval.training.pairs.register_pairs`; the sources live beside the benchmark
  builders of the same data), :func:`~xeval.training.pairs.make_pairs` for ``xeval pairs``;
- :mod:`xeval.training.sampler`  the seeded, multi-process-safe batch sampler;
- :mod:`xeval.training.overlap`  the training/evaluation overlap guard;
- :mod:`xeval.training.finetune` ``xeval finetune`` over sentence-transformers' trainer
  (options in :mod:`~xeval.training.config`, resumable checkpoints in
  :mod:`~xeval.training.checkpoints`, trainer callbacks in :mod:`~xeval.training.callbacks`,
  the dev curve in :mod:`~xeval.training.dev_eval`, the training card in
  :mod:`~xeval.training.card`); precision: :mod:`xeval.precision`.

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
    "FinetuneConfig": "config",
    "FinetuneResult": "finetune",
    "finetune": "finetune",
    "prepare": "finetune",
    "DevEval": "dev_eval",
    "DevPoint": "dev_eval",
    "find_resume_point": "checkpoints",
    "checkpoint_problems": "checkpoints",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

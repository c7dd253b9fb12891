"""The training card ``OUT/xeval-train.json``: what was trained, on what, how, and how long.

Hyperparameters, precision, data fingerprints, overlap figures, sampler statistics, the
loss curve, the dev curve (step -> MRR@10), versions, command and wall time.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xeval.provenance import provenance, sha256_file
from xeval.training.dev_eval import METRIC
from xeval.training.pairs import summarize_pairs

if TYPE_CHECKING:
    from xeval.training.config import FinetuneConfig, Prepared


@dataclass
class RunFacts:
    """What one call of the trainer did."""

    state: Any  # transformers.TrainerState
    train_loss: float | None
    train_seconds: float
    start_step: int
    trainable: int
    frozen: int
    threads: int
    dev_curve: list[dict[str, Any]] | None  # every point, earlier calls' included
    dev_seconds: float = 0.0  # evaluation seconds of this call

    @property
    def steps_this_call(self) -> int:
        return self.state.global_step - self.start_step

    @property
    def finished(self) -> bool:
        return self.state.global_step >= self.state.max_steps


def _sampler(cfg: FinetuneConfig, prep: Prepared) -> dict[str, Any]:
    epoch0 = prep.plan.epoch(0)
    langs = Counter(lang for m, lang, _ in epoch0 if m == "xx")
    return {
        "strategy": cfg.strategy,
        "alpha": prep.plan.alpha,
        "batch_size": cfg.batch_size,
        "world_size": cfg.world_size,
        "batches_per_epoch": len(prep.plan),
        "epoch0_modes": dict(Counter(m for m, _, _ in epoch0)),
        "epoch0_xx_languages": dict(sorted(langs.items())),
    }


def _training(cfg: FinetuneConfig, prep: Prepared, f: RunFacts) -> dict[str, Any]:
    steps, secs = f.steps_this_call, f.train_seconds
    dev_s = f.dev_seconds
    return {
        "global_step": f.state.global_step,
        "max_steps": f.state.max_steps,
        "epoch": f.state.epoch,
        "resumed_from": str(prep.resume.path) if prep.resume else None,
        "damaged_checkpoints_skipped": [
            {"checkpoint": n, "problem": w} for n, w in (prep.resume.skipped if prep.resume else [])
        ],
        "steps_this_call": steps,
        "train_seconds_this_call": round(secs, 2),
        "seconds_per_step": round((secs - dev_s) / steps, 3) if steps else None,
        "pairs_per_second": round(steps * cfg.batch_size * cfg.world_size / secs, 2)
        if secs > 0
        else None,
        "threads": f.threads,
        "train_loss": f.train_loss,
        "log": [r for r in f.state.log_history if "loss" in r],
    }


def training_card(
    cfg: FinetuneConfig,
    prep: Prepared,
    base_info: dict[str, Any],
    facts: RunFacts,
    *,
    wall_seconds: float,
) -> dict[str, Any]:
    """The card of this call (status, config, data, sampler, training, dev curve)."""
    step = facts.state.global_step
    evaluation = None
    if facts.dev_curve is not None:
        evaluation = {"benchmark": cfg.eval_benchmark, "metric": METRIC, "history": facts.dev_curve}
    return provenance(
        xeval_train_card=1,
        status="finished" if facts.finished else f"stopped at step {step}",
        config=dataclasses.asdict(cfg),
        precision=prep.precision.to_dict(),
        loss={
            "name": "MultipleNegativesRankingLoss",
            "similarity": "cosine",
            "scale": cfg.scale,
            "temperature": 1.0 / cfg.scale,
            "in_batch_negatives": True,
        },
        base_model=base_info,
        pairs={
            "path": str(Path(cfg.pairs).resolve()),
            "sha256": sha256_file(cfg.pairs),
            "fingerprint": prep.fingerprint,
            "summary": summarize_pairs(prep.pairs),
        },
        sampler=_sampler(cfg, prep),
        overlap=prep.overlap or "not checked (no --overlap-benchmark / --eval-benchmark)",
        parameters={"trainable": facts.trainable, "frozen_word_embeddings": facts.frozen},
        training=_training(cfg, prep, facts),
        evaluation=evaluation,
        wall_seconds=round(wall_seconds, 2),
    )

"""Trainer callbacks of ``xeval finetune``: sampler epochs, ``--stop-after``, the dev curve."""

from __future__ import annotations

import math
from typing import Any

from transformers import TrainerCallback

from xeval.training.dev_eval import DevEval, DevPoint


class SamplerEpoch(TrainerCallback):
    """Tell the batch sampler its epoch, also on a resumed multi-process run (where the
    trainer's own call does not reach a sampler wrapped twice)."""

    def __init__(self, samplers: list) -> None:
        self.samplers = samplers

    def on_epoch_begin(self, args, state, control, **kw):
        epoch = math.floor((state.epoch or 0.0) + 1e-9)
        for s in self.samplers:
            s.set_epoch(epoch)


class StopAfter(TrainerCallback):
    """Save a checkpoint and stop after ``steps`` optimizer steps (``--stop-after``)."""

    def __init__(self, steps: int | None) -> None:
        self.steps = steps

    def on_step_end(self, args, state, control, **kw):
        if self.steps and state.global_step >= self.steps:
            control.should_save = True
            control.should_training_stop = True
        return control


class DevCurve(TrainerCallback):
    """Evaluate at the start, every ``every`` steps and at the end; keep the curve."""

    def __init__(self, evaluator: DevEval, every: int | None) -> None:
        self.evaluator = evaluator
        self.every = every
        self.curve: list[DevPoint] = []

    def _run(self, state: Any, model: Any) -> None:
        if not state.is_world_process_zero:
            return
        if self.curve and self.curve[-1].step == state.global_step:
            return
        point = self.evaluator(model, state.global_step)
        self.curve.append(point)
        print(
            f"[xeval eval] step {point.step}: "
            + ", ".join(f"MRR@10/{k} {v:.4f}" for k, v in point.mrr10.items()),
            flush=True,
        )

    def on_train_begin(self, args, state, control, model=None, **kw):
        self._run(state, model)

    def on_step_end(self, args, state, control, model=None, **kw):
        if self.every and state.global_step % self.every == 0:
            self._run(state, model)

    def on_train_end(self, args, state, control, model=None, **kw):
        self._run(state, model)

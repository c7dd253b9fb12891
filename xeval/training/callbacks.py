"""Trainer callbacks of ``xeval finetune``: sampler epochs, ``--stop-after``, a deadline,
the dev curve."""

from __future__ import annotations

import math
import time
from typing import Any

from transformers import TrainerCallback

from xeval.training.dev_eval import DevEval, DevPoint

LOG_KEY = "xeval_dev"  # a dev point's record in the trainer state's log_history


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


class StopBy(TrainerCallback):
    """Save a checkpoint and stop when the next step would end within ``margin_s`` seconds
    of ``deadline`` (a ``time.time()`` value), so a resumed run loses nothing.

    The next step is assumed to take as long as the slowest step of this call so far.
    """

    def __init__(self, deadline: float, margin_s: float = 60.0) -> None:
        self.deadline, self.margin_s = deadline, margin_s
        self._last: float | None = None
        self._slowest = 0.0
        self.stopped_at: int | None = None  # the step it stopped at, if it did

    def on_step_begin(self, args, state, control, **kw):
        if self._last is None:
            self._last = time.time()

    def on_step_end(self, args, state, control, **kw):
        now = time.time()
        self._slowest = max(self._slowest, now - (self._last or now))
        self._last = now
        if (
            now + self._slowest + self.margin_s >= self.deadline
            and not control.should_training_stop
        ):
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control


class DevCurve(TrainerCallback):
    """Evaluate at the start, every ``every`` steps and at the end; keep the curve.

    Each point also goes into the trainer state's ``log_history`` (key :data:`LOG_KEY`),
    which every checkpoint saves, so a resumed run starts with the points of the calls
    before it and does not evaluate its checkpoint's step again.
    """

    def __init__(self, evaluator: DevEval, every: int | None) -> None:
        self.evaluator = evaluator
        self.every = every
        self.curve: list[DevPoint] = []
        self.restored = 0  # points that earlier calls evaluated (from the checkpoint)

    @property
    def seconds_this_call(self) -> float:
        """Seconds spent evaluating in this call (restored points excluded)."""
        return sum(p.seconds for p in self.curve[self.restored :])

    def _restore(self, state: Any) -> None:
        self.curve = [DevPoint.from_dict(r[LOG_KEY]) for r in state.log_history if LOG_KEY in r]
        self.restored = len(self.curve)

    def _run(self, state: Any, model: Any) -> None:
        if not state.is_world_process_zero:
            return
        if self.curve and self.curve[-1].step == state.global_step:
            return
        point = self.evaluator(model, state.global_step)
        self.curve.append(point)
        state.log_history.append({"step": point.step, LOG_KEY: point.to_dict()})
        print(
            f"[xeval eval] step {point.step}: "
            + ", ".join(f"MRR@10/{k} {v:.4f}" for k, v in point.mrr10.items()),
            flush=True,
        )

    def on_train_begin(self, args, state, control, model=None, **kw):
        self._restore(state)
        self._run(state, model)

    def on_step_end(self, args, state, control, model=None, **kw):
        if self.every and state.global_step % self.every == 0:
            self._run(state, model)

    def on_train_end(self, args, state, control, model=None, **kw):
        self._run(state, model)

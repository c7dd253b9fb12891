"""``xeval finetune``: contrastive fine-tuning with X-X / X-Y / hybrid batches.

A thin layer over sentence-transformers' trainer: MultipleNegativesRankingLoss (InfoNCE
with in-batch negatives, cosine similarity times ``scale`` = 1 / temperature), AdamW with
linear warm-up and decay, the project's batch sampler (:mod:`xeval.training.sampler`),
``query: `` / ``passage: `` prompts, periodic checkpoints and exact resumption, in fp32 or
bf16 mixed precision (:mod:`xeval.precision`; the trainer's own autocast).

Layout of ``OUT``::

    OUT/model/             the fine-tuned sentence-transformers model (+ xeval-model.json)
    OUT/checkpoints/       checkpoint-STEP folders (removed at the end unless kept)
    OUT/xeval-train.json   the training card (:mod:`xeval.training.card`)
    OUT/xeval-train-config.json  the settings a ``--resume`` must match

Resumption guarantee: batches are a pure function of (pairs, seed, epoch) and the trainer
restores model, optimizer, scheduler and RNG states and skips the batches already
trained, so a run interrupted at a checkpoint and resumed trains on exactly the batches of
an uninterrupted run, from the same step, with the same learning rate; on CPU the final
weights match an uninterrupted run's (tested with the tiny model). Other devices may
differ in the last bits through non-deterministic kernels. Damaged checkpoints are passed
over (:mod:`xeval.training.checkpoints`).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from xeval.errors import XevalError
from xeval.precision import Precision, default_device, default_threads, resolve_dtype, set_threads
from xeval.provenance import atomic_dir, provenance, write_json
from xeval.training.card import RunFacts, training_card
from xeval.training.checkpoints import (
    ResumePoint,
    check_resume_settings,
    find_resume_point,
    latest_checkpoint,
    set_aside,
)
from xeval.training.config import CARD_NAME, CONFIG_NAME, FinetuneConfig, Prepared, identity
from xeval.training.dev_eval import DevEval, DevPoint
from xeval.training.pairs import load_pairs, pairs_fingerprint, training_columns
from xeval.training.sampler import BatchPlan, PairMeta, make_batch_sampler

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "FinetuneConfig",
    "FinetuneResult",
    "Prepared",
    "finetune",
    "freeze_word_embeddings",
    "latest_checkpoint",
    "prepare",
]


@dataclass
class FinetuneResult:
    """The outcome of :func:`finetune`; ``card`` is what ``OUT/xeval-train.json`` holds."""

    out: Path
    model_path: Path | None  # None until the last step is trained
    card: dict[str, Any]
    status: str
    steps: int  # global step reached
    steps_this_call: int
    loss_curve: list[dict[str, float]]  # step, loss, learning_rate per logged step
    dev_curve: list[DevPoint]  # step -> MRR@10 per setting kind, earlier calls' included
    train_seconds: float
    wall_seconds: float
    precision: Precision
    is_main: bool = True  # the process that writes and reports (rank 0)
    dev_seconds: float = 0.0  # dev evaluation seconds of this call

    @property
    def finished(self) -> bool:
        return self.model_path is not None

    @property
    def seconds_per_step(self) -> float | None:
        """Training seconds per step of this call, dev evaluations excluded."""
        if not self.steps_this_call:
            return None
        return (self.train_seconds - self.dev_seconds) / self.steps_this_call

    def summary(self) -> str:
        loss = self.card["training"]["train_loss"]
        per = self.seconds_per_step
        head = (
            f"{self.model_path}: {self.steps} steps"
            if self.finished
            else f"{self.status}: continue with the same command and --resume"
        )
        parts = [head, f"{self.precision.name}"]
        if per is not None:
            parts.append(f"{per:.2f} s/step")
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        parts.append(f"{self.wall_seconds:.0f} s in all; card {self.out / CARD_NAME}")
        text = ", ".join(parts)
        if self.dev_curve:
            last = self.dev_curve[-1]
            text += f"\ndev MRR@10 at step {last.step}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in last.mrr10.items()
            )
        return text


def _rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def freeze_word_embeddings(model: Any) -> int:
    """Stop gradients into the word-embedding matrix; return how many weights were frozen."""
    import torch

    for module in model.modules():
        get = getattr(module, "get_input_embeddings", None)
        if callable(get) and isinstance(emb := get(), torch.nn.Embedding):
            emb.weight.requires_grad_(False)
            return emb.weight.numel()
    raise XevalError("--freeze-embeddings: the model exposes no input word embeddings")


# ---- checks before compute -----------------------------------------------------------------------
def _load_pairs(cfg: FinetuneConfig) -> pl.DataFrame:
    path = Path(cfg.pairs)
    df = load_pairs(path)
    if cfg.languages:
        keep = pl.col("query_lang").is_in(cfg.languages) & pl.col("passage_lang").is_in(
            cfg.languages
        )
        df = df.filter(keep)
    if df.height == 0:
        where = f" in {cfg.languages}" if cfg.languages else ""
        raise XevalError(f"no training pairs{where}", file=path)
    return df


def _check_out(cfg: FinetuneConfig, ident: dict[str, Any]) -> ResumePoint | None:
    """Resume point (with the settings checked) or the guarantees of a fresh start."""
    out = Path(cfg.out)
    if cfg.resume:
        point = find_resume_point(out / "checkpoints", cfg.world_size)
        check_resume_settings(out / CONFIG_NAME, ident)
        return point
    if out.is_file():
        raise XevalError("--out must be a folder", file=out)
    non_empty = out.is_dir() and any(out.iterdir())
    if cfg.overwrite and non_empty and not (out / CONFIG_NAME).exists():
        raise XevalError(
            f"--overwrite: {out} is not an xeval finetune folder (no {CONFIG_NAME}); "
            "refusing to delete it"
        )
    if non_empty and not cfg.overwrite:
        what = "a finished model" if (out / "model").exists() else "checkpoints or other files"
        raise XevalError(f"{out} holds {what}; pass --resume to continue or --overwrite")
    return None


def _overlap(cfg: FinetuneConfig, df: pl.DataFrame) -> list[dict[str, Any]]:
    benches = list(dict.fromkeys([*cfg.overlap_benchmarks, *filter(None, [cfg.eval_benchmark])]))
    if not benches:
        return []
    from xeval.training.overlap import check_overlap

    return [
        check_overlap(
            df, b, allow=cfg.allow_overlap, max_share=cfg.max_overlap, ngram=cfg.overlap_ngram
        )
        for b in benches
    ]


def prepare(cfg: FinetuneConfig) -> Prepared:
    """Every check that needs no model: options, pairs, pools, checkpoints, overlap."""
    cfg.check()
    df = _load_pairs(cfg)
    fingerprint = pairs_fingerprint(df)
    meta = PairMeta.from_pairs(df)
    plan = BatchPlan(meta, cfg.batch_size, cfg.strategy, cfg.alpha, cfg.seed, cfg.world_size)
    precision = resolve_dtype(cfg.dtype, cfg.device or default_device())
    ident = identity(cfg, fingerprint, precision.name)
    resume = _check_out(cfg, ident)
    return Prepared(df, meta, plan, fingerprint, precision, ident, resume, _overlap(cfg, df))


# ---- the run -------------------------------------------------------------------------------------
def _training_args(cfg: FinetuneConfig, prep: Prepared, samplers: list) -> Any:
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments(
        output_dir=str(Path(cfg.out) / "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        warmup_steps=cfg.warmup,
        lr_scheduler_type="linear",
        seed=cfg.seed,
        data_seed=cfg.seed,
        batch_sampler=make_batch_sampler(
            prep.meta, cfg.strategy, cfg.alpha, world_size=cfg.world_size, holder=samplers
        ),
        prompts={"anchor": cfg.query_prompt, "positive": cfg.passage_prompt},
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        disable_tqdm=not cfg.progress,
        report_to="none",
        dataloader_drop_last=True,
        bf16=prep.precision.is_bf16,
        use_cpu=prep.precision.device_type == "cpu",
    )


def _dev_eval(cfg: FinetuneConfig, precision: Precision) -> DevEval | None:
    if not cfg.eval_benchmark:
        return None
    return DevEval(
        cfg.eval_benchmark,
        kinds=tuple(cfg.eval_kinds),
        max_queries=cfg.eval_queries,
        prompts=(cfg.query_prompt, cfg.passage_prompt),
        seed=cfg.seed,
        precision=precision,
    )


def _load(cfg: FinetuneConfig, prep: Prepared) -> tuple[Any, int, int | None]:
    """The model to train (max length set, embeddings frozen if asked), the frozen count
    and the base model's own maximum length (restored before saving)."""
    from xeval.models import load_model

    model = load_model(cfg.model, device=prep.precision.device)
    base_max = model.max_seq_length
    if cfg.max_length:
        model.max_seq_length = cfg.max_length
    return model, freeze_word_embeddings(model) if cfg.freeze_embeddings else 0, base_max


def _start(cfg: FinetuneConfig, prep: Prepared) -> None:
    """Rank 0: clear or create OUT, set damaged checkpoints aside, record the settings."""
    out = Path(cfg.out)
    if cfg.overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if prep.resume is not None:
        set_aside(out / "checkpoints", prep.resume)
    write_json(out / CONFIG_NAME, provenance(identity=prep.identity))


def _save_model(
    cfg: FinetuneConfig, model: Any, card: dict[str, Any], base_max: int | None
) -> dict[str, Any]:
    """Write OUT/model with its xeval card; return the model card.

    The saved model keeps the base model's maximum input length: ``max_length`` bounds
    the training pairs only, so a fine-tuned model is evaluated on exactly the tokens its
    base model sees (not passages cut at the training length).
    """
    from xeval.models.card import finish_model_dir

    out = Path(cfg.out)
    if base_max:
        model.max_seq_length = base_max
    model.prompts = {
        **(model.prompts or {}),
        "query": cfg.query_prompt,
        "passage": cfg.passage_prompt,
    }
    base = card["base_model"]
    alpha = f", alpha {cfg.alpha}" if cfg.strategy == "hybrid" else ""
    steps = card["training"]["global_step"]
    with atomic_dir(out / "model", overwrite=True) as tmp:
        model.save(str(tmp))
        return finish_model_dir(
            tmp,
            name=f"{base['name']}-ft-{cfg.strategy}",
            label=f"{base.get('label', base['name'])} fine-tuned "
            f"({cfg.strategy}{alpha}, {steps} steps)",
            origin="xeval finetune",
            licence="as the base model and the training data",
            made={
                "training_card": CARD_NAME,
                "base_model": base,
                "pairs_fingerprint": card["pairs"]["fingerprint"],
                "config": card["config"],
            },
        )


def _trainer(
    cfg: FinetuneConfig, prep: Prepared, model: Any, evaluator: DevEval | None, extra: list
) -> tuple[Any, Any]:
    """sentence-transformers' trainer with the xeval sampler and callbacks; the dev curve."""
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from xeval.training.callbacks import DevCurve, SamplerEpoch, StopAfter

    samplers: list = []
    dev = DevCurve(evaluator, cfg.eval_steps) if evaluator else None
    own = [SamplerEpoch(samplers), StopAfter(cfg.stop_after), *([dev] if dev else [])]
    trainer = SentenceTransformerTrainer(
        model=model,
        args=_training_args(cfg, prep, samplers),
        train_dataset=training_columns(prep.pairs),
        loss=MultipleNegativesRankingLoss(
            model, scale=cfg.scale, gather_across_devices=cfg.gather_across_devices
        ),
        callbacks=own + extra,
    )
    return trainer, dev


def _threads(cfg: FinetuneConfig) -> int:
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return set_threads(cfg.threads or default_threads(local))


def finetune(cfg: FinetuneConfig, *, callbacks: list | None = None) -> FinetuneResult:
    """Run (or resume) a fine-tune; write the model and ``OUT/xeval-train.json`` on rank 0.

    ``callbacks`` (``transformers.TrainerCallback``) are added to the trainer's own.
    """
    t0 = time.perf_counter()
    cfg.world_size = int(os.environ.get("WORLD_SIZE", cfg.world_size) or 1)
    prep = prepare(cfg)
    main = _rank() == 0
    if main:
        _start(cfg, prep)
    threads = _threads(cfg)
    from xeval.models import model_info

    evaluator = _dev_eval(cfg, prep.precision)
    base_info = model_info(cfg.model)
    model, frozen, base_max = _load(cfg, prep)
    trainer, dev = _trainer(cfg, prep, model, evaluator, list(callbacks or []))
    t_train = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(prep.resume.path) if prep.resume else None)
    facts = RunFacts(
        state=trainer.state,
        train_loss=result.training_loss,
        train_seconds=time.perf_counter() - t_train,
        start_step=prep.resume.step if prep.resume else 0,
        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        frozen=frozen,
        threads=threads,
        dev_curve=[p.to_dict() for p in dev.curve] if dev else None,
        dev_seconds=dev.seconds_this_call if dev else 0.0,
    )
    card = training_card(cfg, prep, base_info, facts, wall_seconds=time.perf_counter() - t0)
    model_path = Path(cfg.out) / "model" if facts.finished else None
    if trainer.is_world_process_zero():
        if model_path is not None:
            mcard = _save_model(cfg, model, card, base_max)
            card["model"] = {
                "path": str(model_path.resolve()),
                "fingerprint": mcard["fingerprint"],
                "max_seq_length": base_max,  # the base model's; max_length bounds training
            }
            if not cfg.keep_checkpoints:
                shutil.rmtree(Path(cfg.out) / "checkpoints", ignore_errors=True)
        write_json(Path(cfg.out) / CARD_NAME, card)
    return FinetuneResult(
        out=Path(cfg.out),
        model_path=model_path,
        card=card,
        status=card["status"],
        steps=facts.state.global_step,
        steps_this_call=facts.steps_this_call,
        loss_curve=card["training"]["log"],
        dev_curve=list(dev.curve) if dev else [],
        dev_seconds=facts.dev_seconds,
        train_seconds=facts.train_seconds,
        wall_seconds=time.perf_counter() - t0,
        precision=prep.precision,
        is_main=trainer.is_world_process_zero(),
    )

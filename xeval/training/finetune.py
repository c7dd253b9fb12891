"""``xeval finetune``: contrastive fine-tuning with X-X / X-Y / hybrid batches.

A thin layer over sentence-transformers' trainer: MultipleNegativesRankingLoss (InfoNCE
with in-batch negatives, cosine similarity times ``scale`` = 1 / temperature), AdamW with
linear warm-up and decay, the project's batch sampler (:mod:`xeval.training.sampler`),
``query: `` / ``passage: `` prompts, periodic checkpoints and exact resumption.

Layout of ``OUT``::

    OUT/model/             the fine-tuned sentence-transformers model (+ xeval-model.json)
    OUT/checkpoints/       checkpoint-STEP folders (removed at the end unless kept)
    OUT/xeval-train.json   the training card: hyperparameters, data fingerprints, overlap
                           figures, sampler statistics, losses, evaluations, versions,
                           command, wall time
    OUT/xeval-train-config.json  the settings a ``--resume`` must match

Resumption guarantee: batches are a pure function of (pairs, seed, epoch) and the trainer
restores model, optimizer, scheduler and RNG states and skips the batches already
trained, so a run interrupted at a checkpoint and resumed trains on exactly the batches of
an uninterrupted run, from the same step, with the same learning rate; on CPU the final
weights match an uninterrupted run's (tested with the tiny model). Other devices may
differ in the last bits through non-deterministic kernels.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xeval.errors import XevalError
from xeval.provenance import atomic_dir, provenance, sha256_file, write_json
from xeval.training.pairs import load_pairs, pairs_fingerprint, summarize_pairs, training_columns
from xeval.training.sampler import STRATEGIES, BatchPlan, PairMeta, make_batch_sampler

CARD_NAME = "xeval-train.json"
CONFIG_NAME = "xeval-train-config.json"
# settings that change what is trained: a resume must match them
_IDENTITY = (
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
        if self.eval_steps is not None and self.eval_steps < 1:
            raise XevalError("--eval-steps must be >= 1")
        if self.stop_after is not None and self.stop_after < 1:
            raise XevalError("--stop-after must be >= 1")


# ---- evaluation during training ------------------------------------------------------------
class QuickRetrievalEval:
    """MRR@10 by exact cosine search on a benchmark's mono / cross settings.

    Independent of the run/evaluate stages so it can run inside the training loop; ties
    follow the project rule (score descending, then doc_id descending).
    """

    def __init__(
        self,
        bench_dir: str | Path,
        *,
        kinds: tuple[str, ...] = ("mono", "cross"),
        max_queries: int | None = 200,
        prompts: tuple[str, str] = ("query: ", "passage: "),
        seed: int = 0,
    ) -> None:
        from xeval.benchmark.registry import subsample_queries
        from xeval.benchmark.schema import load_benchmark
        from xeval.benchmark.settings import enumerate_settings

        bench = load_benchmark(bench_dir)
        if max_queries:
            bench = subsample_queries(bench, max_queries, seed)
        self.bench = bench
        self.settings = enumerate_settings(bench, kinds)
        if not self.settings:
            raise XevalError(f"benchmark has no {'/'.join(kinds)} settings", file=bench_dir)
        self.prompts = prompts
        self.path = str(bench_dir)

    def __call__(self, model: Any) -> dict[str, float]:
        import torch

        bench = self.bench
        was_training = model.training
        qids = sorted({q for s in self.settings for q in s.query_ids})
        queries = bench.queries.filter(pl.col("query_id").is_in(qids))
        langs = sorted({lang for s in self.settings for lang in s.doc_langs})
        # documents ordered by doc_id descending: a stable sort on score keeps the tie rule
        docs = bench.corpus.filter(pl.col("lang").is_in(langs)).sort("doc_id", descending=True)
        enc = dict(normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False)
        with torch.no_grad():
            qe = model.encode(queries["text"].to_list(), prompt=self.prompts[0], **enc)
            de = model.encode(docs["text"].to_list(), prompt=self.prompts[1], **enc)
        if was_training:
            model.train()
        qrow = {q: i for i, q in enumerate(queries["query_id"].to_list())}
        doc_ids = np.asarray(docs["doc_id"].to_list(), dtype=object)
        doc_lang = np.asarray(docs["lang"].to_list(), dtype=object)
        per_kind: dict[str, list[float]] = {}
        for s in self.settings:
            cols = np.flatnonzero(np.isin(doc_lang, list(s.doc_langs)))
            rel: dict[str, set[str]] = {}
            for q, d in s.qrels.select("query_id", "doc_id").iter_rows():
                rel.setdefault(q, set()).add(d)
            qs = list(rel)
            scores = qe[[qrow[q] for q in qs]] @ de[torch.as_tensor(cols)].T
            top = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :10]
            rr = []
            for i, q in enumerate(qs):
                ranked = doc_ids[cols[top[i].cpu().numpy()]]
                hit = next((r for r, d in enumerate(ranked, 1) if d in rel[q]), None)
                rr.append(1.0 / hit if hit else 0.0)
            per_kind.setdefault(s.kind, []).append(float(np.mean(rr)))
        return {f"MRR@10/{k}": float(np.mean(v)) for k, v in per_kind.items()}


# ---- helpers -----------------------------------------------------------------------------------
def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint-N folder with the highest N that holds a trainer state."""
    best: tuple[int, Path] | None = None
    if folder.is_dir():
        for p in folder.iterdir():
            m = re.fullmatch(r"checkpoint-(\d+)", p.name)
            if m and (p / "trainer_state.json").is_file() and (best is None or int(m[1]) > best[0]):
                best = (int(m[1]), p)
    return best[1] if best else None


def _identity(cfg: FinetuneConfig, fingerprint: str) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["pairs_fingerprint"] = fingerprint
    return {k: d[k] for k in _IDENTITY}


def _rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def freeze_word_embeddings(model: Any) -> int:
    """Stop gradients into the word-embedding matrix; return how many weights were frozen."""
    import torch

    frozen = 0
    for module in model.modules():
        get = getattr(module, "get_input_embeddings", None)
        if callable(get):
            emb = get()
            if isinstance(emb, torch.nn.Embedding):
                emb.weight.requires_grad_(False)
                frozen += emb.weight.numel()
                break
    if not frozen:
        raise XevalError("--freeze-embeddings: the model exposes no input word embeddings")
    return frozen


def _callbacks(cfg: FinetuneConfig, holder: list, evaluator: QuickRetrievalEval | None) -> list:
    from transformers import TrainerCallback

    class SamplerEpoch(TrainerCallback):
        """Tell the batch sampler its epoch, also on a resumed multi-process run (where the
        trainer's own call does not reach a sampler wrapped twice)."""

        def on_epoch_begin(self, args, state, control, **kw):
            epoch = math.floor((state.epoch or 0.0) + 1e-9)
            for s in holder:
                s.set_epoch(epoch)

    class StopAfter(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if cfg.stop_after and state.global_step >= cfg.stop_after:
                control.should_save = True
                control.should_training_stop = True
            return control

    class Evaluate(TrainerCallback):
        def __init__(self) -> None:
            self.history: list[dict[str, Any]] = []

        def _run(self, state, model) -> None:
            if evaluator is None or not state.is_world_process_zero:
                return
            if self.history and self.history[-1]["step"] == state.global_step:
                return
            t = time.perf_counter()
            res = evaluator(model)
            rec = {"step": state.global_step, **res, "seconds": round(time.perf_counter() - t, 2)}
            self.history.append(rec)
            print(
                f"[xeval eval] step {state.global_step}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in res.items()),
                flush=True,
            )

        def on_train_begin(self, args, state, control, model=None, **kw):
            self._run(state, model)

        def on_step_end(self, args, state, control, model=None, **kw):
            if cfg.eval_steps and state.global_step % cfg.eval_steps == 0:
                self._run(state, model)

        def on_train_end(self, args, state, control, model=None, **kw):
            self._run(state, model)

    return [SamplerEpoch(), StopAfter(), Evaluate()]


# ---- the run -------------------------------------------------------------------------------------
def prepare(cfg: FinetuneConfig) -> dict[str, Any]:
    """Every check that needs no model: options, pairs, pools, checkpoints, overlap."""
    cfg.check()
    out = Path(cfg.out)
    pairs_path = Path(cfg.pairs)
    df = load_pairs(pairs_path)
    if cfg.languages:
        df = df.filter(
            pl.col("query_lang").is_in(cfg.languages) & pl.col("passage_lang").is_in(cfg.languages)
        )
    if df.height == 0:
        raise XevalError(
            "no training pairs" + (f" in {cfg.languages}" if cfg.languages else ""), file=pairs_path
        )
    fingerprint = pairs_fingerprint(df)
    meta = PairMeta.from_pairs(df)
    plan = BatchPlan(meta, cfg.batch_size, cfg.strategy, cfg.alpha, cfg.seed, cfg.world_size)
    ckpt_dir = out / "checkpoints"
    resume_from = None
    identity = _identity(cfg, fingerprint)
    if cfg.resume:
        resume_from = latest_checkpoint(ckpt_dir)
        if resume_from is None:
            raise XevalError("--resume: no checkpoint to resume from", file=ckpt_dir)
        saved_path = out / CONFIG_NAME
        if saved_path.is_file():
            import json

            saved = json.loads(saved_path.read_text(encoding="utf-8")).get("identity", {})
            diff = {k: (saved.get(k), v) for k, v in identity.items() if saved.get(k) != v}
            if diff:
                raise XevalError(
                    "--resume with different settings than the interrupted run: "
                    + "; ".join(f"{k}: was {a!r}, now {b!r}" for k, (a, b) in diff.items()),
                    file=saved_path,
                )
    elif out.is_file():
        raise XevalError("--out must be a folder", file=out)
    elif cfg.overwrite and out.is_dir() and any(out.iterdir()) and not (out / CONFIG_NAME).exists():
        raise XevalError(
            f"--overwrite: {out} is not an xeval finetune folder (no {CONFIG_NAME}); "
            "refusing to delete it"
        )
    elif out.exists() and any(out.iterdir()) and not cfg.overwrite:
        what = "a finished model" if (out / "model").exists() else "checkpoints or other files"
        raise XevalError(f"{out} holds {what}; pass --resume to continue or --overwrite")
    overlap = []
    benches = list(dict.fromkeys([*cfg.overlap_benchmarks, *filter(None, [cfg.eval_benchmark])]))
    if benches:
        from xeval.training.overlap import check_overlap

        for b in benches:
            overlap.append(
                check_overlap(
                    df,
                    b,
                    allow=cfg.allow_overlap,
                    max_share=cfg.max_overlap,
                    ngram=cfg.overlap_ngram,
                )
            )
    return {
        "df": df,
        "meta": meta,
        "plan": plan,
        "fingerprint": fingerprint,
        "identity": identity,
        "resume_from": resume_from,
        "overlap": overlap,
    }


def finetune(cfg: FinetuneConfig, *, callbacks: list | None = None) -> dict[str, Any]:
    """Run a fine-tune; return the training card (also written to ``OUT/xeval-train.json``).

    ``callbacks`` (``transformers.TrainerCallback``) are added to the trainer's own.
    """
    t0 = time.perf_counter()
    cfg.world_size = int(os.environ.get("WORLD_SIZE", cfg.world_size) or 1)
    prep = prepare(cfg)
    out = Path(cfg.out)
    if _rank() == 0:
        if cfg.overwrite and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / CONFIG_NAME, provenance(identity=prep["identity"]))

    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from xeval.models import load_model, model_info

    evaluator = None
    if cfg.eval_benchmark:
        evaluator = QuickRetrievalEval(
            cfg.eval_benchmark,
            kinds=tuple(cfg.eval_kinds),
            max_queries=cfg.eval_queries,
            prompts=(cfg.query_prompt, cfg.passage_prompt),
            seed=cfg.seed,
        )
    base_info = model_info(cfg.model)
    model = load_model(cfg.model, device=cfg.device)
    if cfg.max_length:
        model.max_seq_length = cfg.max_length
    frozen = freeze_word_embeddings(model) if cfg.freeze_embeddings else 0
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    dataset = training_columns(prep["df"])
    holder: list = []
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"),
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
            prep["meta"], cfg.strategy, cfg.alpha, world_size=cfg.world_size, holder=holder
        ),
        prompts={"anchor": cfg.query_prompt, "positive": cfg.passage_prompt},
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        disable_tqdm=not cfg.progress,
        report_to="none",
        dataloader_drop_last=True,
        use_cpu=cfg.device == "cpu",
    )
    loss = MultipleNegativesRankingLoss(
        model, scale=cfg.scale, gather_across_devices=cfg.gather_across_devices
    )
    cbs = _callbacks(cfg, holder, evaluator)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=loss,
        callbacks=cbs + list(callbacks or []),
    )
    start_step = 0
    if prep["resume_from"] is not None:
        import json

        start_step = json.loads((prep["resume_from"] / "trainer_state.json").read_text())[
            "global_step"
        ]
    t_train = time.perf_counter()
    result = trainer.train(
        resume_from_checkpoint=str(prep["resume_from"]) if prep["resume_from"] else None
    )
    train_s = time.perf_counter() - t_train
    state = trainer.state
    steps_now = state.global_step - start_step
    finished = state.global_step >= state.max_steps
    plan: BatchPlan = prep["plan"]
    epoch0 = plan.epoch(0)
    modes = Counter(m for m, _, _ in epoch0)
    langs = Counter(lang for m, lang, _ in epoch0 if m == "xx")
    card = provenance(
        xeval_train_card=1,
        status="finished" if finished else f"stopped at step {state.global_step}",
        config=dataclasses.asdict(cfg),
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
            "fingerprint": prep["fingerprint"],
            "summary": summarize_pairs(prep["df"]),
        },
        sampler={
            "strategy": cfg.strategy,
            "alpha": plan.alpha,
            "batch_size": cfg.batch_size,
            "world_size": cfg.world_size,
            "batches_per_epoch": len(plan),
            "epoch0_modes": dict(modes),
            "epoch0_xx_languages": dict(sorted(langs.items())),
        },
        overlap=prep["overlap"] or "not checked (no --overlap-benchmark / --eval-benchmark)",
        parameters={"trainable": trainable, "frozen_word_embeddings": frozen},
        training={
            "global_step": state.global_step,
            "max_steps": state.max_steps,
            "epoch": state.epoch,
            "resumed_from": str(prep["resume_from"]) if prep["resume_from"] else None,
            "steps_this_call": steps_now,
            "train_seconds_this_call": round(train_s, 2),
            "pairs_per_second": round(steps_now * cfg.batch_size * cfg.world_size / train_s, 2)
            if train_s > 0
            else None,
            "train_loss": result.training_loss,
            "log": [r for r in state.log_history if "loss" in r],
        },
        evaluation={"benchmark": cfg.eval_benchmark, "history": cbs[2].history}
        if evaluator
        else None,
        wall_seconds=round(time.perf_counter() - t0, 2),
    )
    if trainer.is_world_process_zero():
        if finished:
            model.prompts = {
                **(model.prompts or {}),
                "query": cfg.query_prompt,
                "passage": cfg.passage_prompt,
            }
            from xeval.models.store import finish_model_dir

            with atomic_dir(out / "model", overwrite=True) as tmp:
                model.save(str(tmp))
                mcard = finish_model_dir(
                    tmp,
                    name=f"{base_info['name']}-ft-{cfg.strategy}",
                    label=f"{base_info.get('label', base_info['name'])} fine-tuned "
                    f"({cfg.strategy}"
                    + (f", alpha {cfg.alpha}" if cfg.strategy == "hybrid" else "")
                    + f", {state.global_step} steps)",
                    origin="xeval finetune",
                    licence="as the base model and the training data",
                    made={
                        "training_card": CARD_NAME,
                        "base_model": base_info,
                        "pairs_fingerprint": prep["fingerprint"],
                        "config": card["config"],
                    },
                )
            card["model"] = {
                "path": str((out / "model").resolve()),
                "fingerprint": mcard["fingerprint"],
            }
            if not cfg.keep_checkpoints:
                shutil.rmtree(out / "checkpoints", ignore_errors=True)
        write_json(out / CARD_NAME, card)
    return card

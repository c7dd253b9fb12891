"""``xeval finetune``: options -> :class:`~xeval.training.config.FinetuneConfig` ->
:func:`xeval.training.finetune.finetune`, whose ``summary()`` is printed."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("finetune")
@click.option("--model", "-m", required=True, help="Base model: xeval name or local directory.")
@click.option(
    "--pairs",
    "-p",
    "pairs",
    required=True,
    type=click.Path(path_type=Path),
    help="Pairs file from `xeval pairs` (Parquet) or parallel JSONL.",
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder: model/, checkpoints/, xeval-train.json.",
)
@click.option(
    "--strategy",
    type=click.Choice(["xx", "xy", "hybrid"]),
    default="hybrid",
    show_default=True,
    help="X-X (one language per batch), X-Y (cross-lingual "
    "pairs only) or hybrid (per batch X-X with probability alpha).",
)
@click.option(
    "--alpha",
    type=float,
    default=0.5,
    show_default=True,
    help="Hybrid: probability that a batch is X-X.",
)
@click.option(
    "--batch-size",
    type=int,
    default=32,
    show_default=True,
    help="Pairs per batch and process (the paper used 100).",
)
@click.option("--lr", type=float, default=3e-5, show_default=True, help="AdamW learning rate.")
@click.option("--weight-decay", type=float, default=0.01, show_default=True)
@click.option("--epochs", type=float, default=1.0, show_default=True)
@click.option(
    "--max-steps",
    type=int,
    default=-1,
    show_default=True,
    help="Optimizer steps; > 0 overrides --epochs.",
)
@click.option(
    "--warmup",
    type=float,
    default=0.1,
    show_default=True,
    help="Linear warm-up: < 1 a share of the steps, >= 1 a number of steps.",
)
@click.option(
    "--scale",
    type=float,
    default=20.0,
    show_default=True,
    help="Similarity scale of the InfoNCE loss (1 / temperature; 20 = 0.05).",
)
@click.option(
    "--max-length", type=int, default=128, show_default=True, help="Maximum tokens per text."
)
@click.option("--query-prompt", default="query: ", show_default=True)
@click.option("--passage-prompt", default="passage: ", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--freeze-embeddings",
    is_flag=True,
    help="Freeze the word-embedding matrix (much faster on CPU).",
)
@click.option(
    "--languages",
    default=None,
    help="Comma-separated languages to keep (both sides of a pair). Default: all.",
)
@click.option(
    "--gather-across-devices",
    is_flag=True,
    help="Several processes: use every process's passages as negatives.",
)
@click.option(
    "--save-steps",
    type=int,
    default=500,
    show_default=True,
    help="Write a checkpoint every N steps.",
)
@click.option(
    "--save-total-limit", type=int, default=2, show_default=True, help="Checkpoints to keep."
)
@click.option("--keep-checkpoints", is_flag=True, help="Keep checkpoints/ after finishing.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue from the latest checkpoint in OUT (same settings required).",
)
@click.option("--overwrite", is_flag=True, help="Delete OUT first.")
@click.option(
    "--stop-after",
    type=int,
    default=None,
    help="Stop (with a checkpoint) after N steps; continue later with --resume.",
)
@click.option("--logging-steps", type=int, default=10, show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--device", default=None, help="cpu, cuda, ... Default: the best available.")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "fp32", "bf16"]),
    default="auto",
    show_default=True,
    help="Compute precision: bf16 mixed precision (autocast, fp32 weights) or fp32; auto = "
    "bf16 where the CPU (AVX512-BF16/AMX) or GPU supports it natively.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Torch threads per process. Default: $OMP_NUM_THREADS, else physical cores / processes.",
)
@click.option(
    "--eval-benchmark",
    type=click.Path(path_type=Path),
    default=None,
    help="Benchmark directory for MRR@10 during training (also overlap-checked).",
)
@click.option(
    "--eval-steps",
    type=int,
    default=None,
    help="Evaluate every N steps (and at start and end). Default: start and end.",
)
@click.option(
    "--eval-queries",
    type=int,
    default=200,
    show_default=True,
    help="Query units sampled for the evaluation (0: all).",
)
@click.option(
    "--overlap-benchmark",
    "overlap_benchmarks",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Benchmark directory the training texts must not overlap (repeatable).",
)
@click.option("--allow-overlap", is_flag=True, help="Train even when texts overlap.")
@click.option(
    "--max-overlap",
    type=float,
    default=0.001,
    show_default=True,
    help="Largest tolerated share of benchmark texts found in the training pairs.",
)
@click.option(
    "--overlap-ngram",
    type=int,
    default=None,
    help="Also count benchmark texts sharing a character n-gram of this length.",
)
def finetune_cmd(**kw: object) -> None:
    """Hybrid-batch (X-X / X-Y / hybrid) contrastive fine-tuning.

    MultipleNegativesRankingLoss with in-batch negatives, AdamW (lr 3e-5, weight decay
    0.01 as in Elmahdy et al.), linear warm-up, the query: / passage: prompts, periodic
    checkpoints and exact --resume. Writes OUT/model (use it with `xeval run --model
    OUT/model`) and the training card OUT/xeval-train.json.

    \b
    Example:
      xeval pairs lareqa-mlqa-r --out pairs/mlqa.parquet
      xeval finetune -m multilingual-e5-small -p pairs/mlqa.parquet -o ft/hybrid \\
          --strategy hybrid --alpha 0.5 --max-steps 60 --freeze-embeddings \\
          --overlap-benchmark bench/xquad-r
    Under several processes: torchrun --nproc_per_node 2 -m xeval finetune ...
    """
    from xeval.training.finetune import FinetuneConfig, finetune

    langs = kw.pop("languages")
    eval_bench = kw.pop("eval_benchmark")
    cfg = FinetuneConfig(
        model=str(kw.pop("model")),
        pairs=str(kw.pop("pairs")),
        out=str(kw.pop("out")),
        languages=[x.strip() for x in str(langs).split(",") if x.strip()] if langs else None,
        overlap_benchmarks=[str(p) for p in kw.pop("overlap_benchmarks")],
        eval_benchmark=str(eval_bench) if eval_bench else None,
        eval_queries=kw.pop("eval_queries") or None,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
    result = finetune(cfg)
    if result.is_main:  # several processes: one reports
        click.echo(result.summary())

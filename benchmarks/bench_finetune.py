"""Benchmark ``xeval finetune``: step time vs a plain PyTorch loop, sampler, two processes.

    python benchmarks/bench_finetune.py steps [--model multilingual-e5-small] [--warmup 3]
        [--timed 6] [--repeats 2] [--batch-size 32] [--max-length 128] [--threads N]
    python benchmarks/bench_finetune.py compare [--steps 30] [--batch-size 32] [--repeats 3]
    python benchmarks/bench_finetune.py ddp [--steps 6] [--batch-size 16]

``steps`` times, in one process and interleaved, four variants on the same model, pairs,
batches (the xeval hybrid plan), batch size, max length and frozen word embeddings:
``xeval finetune`` in fp32 and in bf16, and a plain PyTorch loop (tokenize, two forward
passes, MultipleNegativesRankingLoss, AdamW, clipping, linear schedule) in fp32 and bf16
autocast. Each run trains warm-up + timed steps; the timed steps give the per-step time.
It prints min / median seconds per step and the ratios the issue asks for.

``compare`` trains the tiny test model on MLQA-R pairs (synthetic pairs when
../shared/data is absent) with identical training arguments twice over, once with the
xeval hybrid sampler and once with sentence-transformers' NO_DUPLICATES sampler,
interleaving repeats, and also times each sampler alone over one epoch. ``ddp`` runs
``xeval finetune`` under ``torchrun --nproc_per_node 2`` on CPU (gloo), records the texts
every rank trained on, and checks them against the global batch plan (disjoint, complete,
each step's two batches in one mode). Results are printed as Markdown.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # benchmark this checkout, not an installed copy


def _pairs(tmp: Path) -> tuple[Path, str]:
    from xeval.training.pairs import build_pairs, save_pairs

    try:
        df, what = build_pairs("lareqa-mlqa-r"), "MLQA-R pairs (15,747)"
    except Exception:  # no data: synthetic parallel pairs
        sys.path.insert(0, str(REPO))
        from tests.test_training import synthetic_pairs

        df, what = synthetic_pairs(2000), "synthetic pairs"
    return save_pairs(df, tmp / "pairs.parquet"), what


def _tiny(tmp: Path) -> Path:
    from xeval.models.tiny import build_tiny_model

    return build_tiny_model(tmp / "tiny")


def _train_once(
    model_dir: Path, pairs: Path, sampler: str, steps: int, bs: int, seed: int
) -> float:
    """Seconds of ``trainer.train()`` for ``steps`` steps; everything else identical."""
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from xeval.training.pairs import load_pairs, training_columns
    from xeval.training.sampler import PairMeta, make_batch_sampler

    df = load_pairs(pairs)
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.max_seq_length = 128
    bsampler = (
        make_batch_sampler(PairMeta.from_pairs(df), "hybrid", 0.5, world_size=1)
        if sampler == "xeval-hybrid"
        else BatchSamplers.NO_DUPLICATES
    )
    with tempfile.TemporaryDirectory() as out:
        args = SentenceTransformerTrainingArguments(
            output_dir=out,
            per_device_train_batch_size=bs,
            learning_rate=3e-5,
            weight_decay=0.01,
            max_steps=steps,
            warmup_steps=0.1,
            seed=seed,
            batch_sampler=bsampler,
            prompts={"anchor": "query: ", "positive": "passage: "},
            save_strategy="no",
            logging_steps=10**6,
            disable_tqdm=True,
            report_to="none",
            dataloader_drop_last=True,
            use_cpu=True,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=training_columns(df),
            loss=MultipleNegativesRankingLoss(model, scale=20.0),
        )
        t = time.perf_counter()
        trainer.train()
        return time.perf_counter() - t


def _sampler_epoch(pairs: Path, bs: int) -> dict[str, float]:
    """Seconds to produce one epoch of batches, per sampler, and batches per epoch."""
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    from xeval.training.pairs import load_pairs, training_columns
    from xeval.training.sampler import HybridBatchSampler, PairMeta

    df = load_pairs(pairs)
    ds = training_columns(df)
    t = time.perf_counter()
    meta = PairMeta.from_pairs(df)
    ours = HybridBatchSampler(ds, bs, meta=meta, strategy="hybrid", alpha=0.5, world_size=1)
    t_init = time.perf_counter() - t
    t = time.perf_counter()
    n_ours = sum(1 for _ in ours)
    t_ours = time.perf_counter() - t
    import torch

    st = NoDuplicatesBatchSampler(ds, bs, drop_last=True, generator=torch.Generator(), seed=0)
    t = time.perf_counter()
    n_st = sum(1 for _ in st)
    t_st = time.perf_counter() - t
    return {
        "xeval_init_s": t_init,
        "xeval_epoch_s": t_ours,
        "xeval_batches": n_ours,
        "st_epoch_s": t_st,
        "st_batches": n_st,
    }


# ---- step time: xeval finetune vs a plain PyTorch loop --------------------------------------------
def _plain_loop(model_name: str, pairs: Path, a: argparse.Namespace, dtype: str) -> list[float]:
    """Seconds per step of a hand-written loop over the batches xeval would train on."""
    import torch

    from xeval.models import load_model
    from xeval.precision import resolve_dtype
    from xeval.training.finetune import freeze_word_embeddings
    from xeval.training.pairs import load_pairs
    from xeval.training.sampler import BatchPlan, PairMeta

    df = load_pairs(pairs)
    plan = BatchPlan(PairMeta.from_pairs(df), a.batch_size, "hybrid", 0.5, seed=0).epoch(0)
    queries, passages = df["query"].to_list(), df["passage"].to_list()
    prec = resolve_dtype(dtype, "cpu")
    model = load_model(model_name, device="cpu")
    model.max_seq_length = a.max_length
    freeze_word_embeddings(model)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-5, weight_decay=0.01)
    steps = a.warmup + a.timed
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps))
    times = []
    for _, _, rows in plan[:steps]:
        t = time.perf_counter()
        feats = [
            model.preprocess([prompt + texts[i] for i in rows])
            for prompt, texts in (("query: ", queries), ("passage: ", passages))
        ]
        with prec.autocast():
            q, p = (model(f)["sentence_embedding"] for f in feats)
            sim = (
                torch.nn.functional.normalize(q, dim=-1)
                @ torch.nn.functional.normalize(p, dim=-1).T
            )
            loss = torch.nn.functional.cross_entropy(20.0 * sim.float(), torch.arange(len(rows)))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    return times[a.warmup :]


def _xeval_run(model_name: str, pairs: Path, a: argparse.Namespace, dtype: str) -> list[float]:
    """Seconds per step of ``xeval finetune`` (the library call the command makes)."""
    from transformers import TrainerCallback

    from xeval.training.finetune import FinetuneConfig, finetune

    ends: list[float] = []

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            ends.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kw):
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        cfg = FinetuneConfig(
            model=model_name,
            pairs=str(pairs),
            out=out,
            batch_size=a.batch_size,
            max_steps=a.warmup + a.timed,
            max_length=a.max_length,
            freeze_embeddings=True,
            save_steps=10**6,
            logging_steps=10**6,
            progress=False,
            device="cpu",
            dtype=dtype,
            threads=a.threads,
            overwrite=True,
        )
        finetune(cfg, callbacks=[Clock()])
    steps = [b - e for e, b in itertools.pairwise(ends)]
    return steps[a.warmup :]


def step_times(a: argparse.Namespace) -> None:
    import torch

    from xeval.precision import physical_cores, resolve_dtype

    a.threads = a.threads or physical_cores()
    torch.set_num_threads(a.threads)
    variants = {
        "xeval finetune fp32": lambda m, p: _xeval_run(m, p, a, "fp32"),
        "xeval finetune bf16": lambda m, p: _xeval_run(m, p, a, "bf16"),
        "plain loop fp32": lambda m, p: _plain_loop(m, p, a, "fp32"),
        "plain loop bf16": lambda m, p: _plain_loop(m, p, a, "bf16"),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as d:
        pairs, what = (Path(a.pairs), f"pairs {Path(a.pairs).name}") if a.pairs else _pairs(Path(d))
        for r in range(a.repeats):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in order:
                times[name] += variants[name](a.model, pairs)
                torch.set_num_threads(a.threads)
                load.append(os.getloadavg()[0])
    _print_steps(a, what, times, load, resolve_dtype("auto", "cpu").summary())


def _print_steps(a, what: str, times: dict[str, list[float]], load: list[float], auto: str):
    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    print(
        f"\n### Step time: {a.model}, {what}, batch {a.batch_size}, max length {a.max_length}, "
        f"frozen word embeddings, {a.warmup} warm-up + {a.timed} timed steps x {a.repeats} "
        f"interleaved repeats, torch threads {a.threads}, load {min(load):.1f}-{max(load):.1f}; "
        f"--dtype auto here: {auto}\n"
    )
    print("| variant | s/step min | s/step median | timed steps |")
    print("|---|---|---|---|")
    for k, v in times.items():
        print(f"| {k} | {low[k]:.2f} | {med[k]:.2f} | {len(v)} |")
    x32, x16 = "xeval finetune fp32", "xeval finetune bf16"
    p32, p16 = "plain loop fp32", "plain loop bf16"
    print("\n| ratio | min | median | target |")
    print("|---|---|---|---|")
    for label, num, den, target in (
        ("xeval bf16 / xeval fp32", x16, x32, "<= 0.75"),
        ("xeval bf16 / plain bf16 (overhead)", x16, p16, "<= 1.15"),
        ("xeval fp32 / plain fp32 (overhead)", x32, p32, "-"),
        ("plain bf16 / plain fp32", p16, p32, "-"),
    ):
        print(f"| {label} | {low[num] / low[den]:.3f} | {med[num] / med[den]:.3f} | {target} |")


def compare(a: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pairs, what = _pairs(tmp)
        model = _tiny(tmp)
        _train_once(model, pairs, "xeval-hybrid", 3, a.batch_size, 0)  # warm-up (imports, JIT)
        times: dict[str, list[float]] = {"xeval-hybrid": [], "st-no-duplicates": []}
        for r in range(a.repeats):
            order = list(times) if r % 2 == 0 else list(reversed(times))
            for name in order:
                times[name].append(_train_once(model, pairs, name, a.steps, a.batch_size, r))
        samp = _sampler_epoch(pairs, a.batch_size)
    pairs_n = a.steps * a.batch_size
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"\n### Sampler overhead: tiny model, {what}, batch {a.batch_size}, {a.steps} steps, "
        f"{a.repeats} interleaved repeats, torch threads {a.threads}, load {os.getloadavg()[0]:.1f}\n"
    )
    print("| sampler | train() seconds (each repeat) | median | pairs/s (median) |")
    print("|---|---|---|---|")
    for k, v in times.items():
        print(
            f"| {k} | {', '.join(f'{x:.2f}' for x in v)} | {med[k]:.2f} | {pairs_n / med[k]:.1f} |"
        )
    ratio = med["xeval-hybrid"] / med["st-no-duplicates"] - 1
    print(f"\nxeval vs sentence-transformers, train(): {ratio:+.1%} time (median).")
    per_batch_ours = samp["xeval_epoch_s"] / samp["xeval_batches"]
    per_batch_st = samp["st_epoch_s"] / samp["st_batches"]
    step_s = med["xeval-hybrid"] / a.steps
    print(
        f"\nSampler alone, one epoch: xeval {samp['xeval_batches']} batches in "
        f"{samp['xeval_epoch_s']:.3f} s (+{samp['xeval_init_s']:.3f} s set-up) = "
        f"{per_batch_ours * 1e3:.3f} ms/batch; NO_DUPLICATES {samp['st_batches']} batches in "
        f"{samp['st_epoch_s']:.3f} s = {per_batch_st * 1e3:.3f} ms/batch. "
        f"Sampler share of a training step: {per_batch_ours / step_s:.3%} "
        f"(step {step_s * 1e3:.0f} ms)."
    )


# ---- two processes ----------------------------------------------------------------------------
def ddp_worker(a: argparse.Namespace) -> None:
    """Run under torchrun: fine-tune and record each batch's anchors on this rank."""
    import torch
    from sentence_transformers.sentence_transformer import data_collator as dc

    from xeval.training.finetune import FinetuneConfig, finetune

    torch.set_num_threads(1)
    seen: list[list[str]] = []
    orig = dc.SentenceTransformerDataCollator.__call__

    def record(self, features):
        seen.append([f["anchor"] for f in features])
        return orig(self, features)

    dc.SentenceTransformerDataCollator.__call__ = record
    cfg = FinetuneConfig(
        model=a.model,
        pairs=a.pairs,
        out=a.out,
        batch_size=a.batch_size,
        max_steps=a.steps,
        strategy="hybrid",
        alpha=0.5,
        progress=False,
        save_steps=10**6,
        logging_steps=1,
        seed=0,
        device="cpu",
        overwrite=True,
    )
    t = time.perf_counter()
    card = finetune(cfg).card
    rank = int(os.environ["RANK"])
    Path(a.out).parent.joinpath(f"rank{rank}.json").write_text(
        json.dumps(
            {
                "batches": seen,
                "seconds": time.perf_counter() - t,
                "backend": torch.distributed.get_backend()
                if torch.distributed.is_initialized()
                else None,
                "world_size": card["sampler"]["world_size"],
                "steps": card["training"]["global_step"],
                "loss": card["training"]["train_loss"],
            }
        )
    )


def ddp(a: argparse.Namespace) -> None:
    import polars as pl

    from xeval.training.pairs import load_pairs
    from xeval.training.sampler import BatchPlan, PairMeta

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pairs, what = _pairs(tmp)
        model = _tiny(tmp)
        cmd = [
            "torchrun",
            "--nproc_per_node",
            "2",
            "--standalone",
            __file__,
            "ddp-worker",
            "--model",
            str(model),
            "--pairs",
            str(pairs),
            "--out",
            str(tmp / "runs" / "ft"),
            "--steps",
            str(a.steps),
            "--batch-size",
            str(a.batch_size),
        ]
        torchrun = Path(sys.executable).with_name("torchrun")
        cmd[0] = str(torchrun)
        t = time.perf_counter()
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        wall = time.perf_counter() - t
        if proc.returncode:
            print(proc.stdout[-3000:], proc.stderr[-5000:])
            raise SystemExit(f"torchrun failed ({proc.returncode})")
        ranks = [json.loads((tmp / "runs" / f"rank{r}.json").read_text()) for r in (0, 1)]
        df = load_pairs(pairs)
        plan = BatchPlan(
            PairMeta.from_pairs(df), a.batch_size, "hybrid", 0.5, seed=0, world_size=2
        ).epoch(0)
        anchors = df["query"].to_list()
        expect = [[anchors[i] for i in rows] for _, _, rows in plan[: 2 * a.steps]]
        # accelerate's loader collates one batch ahead: compare the batches trained on
        n0, n1 = len(ranks[0]["batches"]), len(ranks[1]["batches"])
        got0, got1 = ranks[0]["batches"][: a.steps], ranks[1]["batches"][: a.steps]
        ok_rank = got0 == expect[0::2] and got1 == expect[1::2]
        step_texts = [b0 + b1 for b0, b1 in zip(got0, got1, strict=True)]
        no_dup = all(len(set(x)) == len(x) for x in step_texts)
        model_ok = (tmp / "runs" / "ft" / "model" / "modules.json").is_file()
        modes = [plan[i][0] for i in range(0, 2 * a.steps, 2)]
        same_mode = all(plan[i][:2] == plan[i + 1][:2] for i in range(0, 2 * a.steps, 2))
        del pl
    print(
        f"\n### torchrun --nproc_per_node 2 (CPU, backend {ranks[0]['backend']}), tiny model, "
        f"{what}, batch {a.batch_size} per process, {a.steps} steps\n"
    )
    print(
        f"- wall {wall:.1f} s (process start-up included); rank 0 finetune() "
        f"{ranks[0]['seconds']:.1f} s; world size in card {ranks[0]['world_size']}; "
        f"steps {ranks[0]['steps']}; loss {ranks[0]['loss']:.4f}"
    )
    print(
        f"- rank 0 collated {n0} batches, rank 1 {n1} (one prefetched beyond the last step); "
        f"the {a.steps} trained on each rank equal its share of "
        f"the global plan (batch i -> rank i % 2): {ok_rank}"
    )
    print(
        f"- no query text twice within a step's two batches: {no_dup}; step modes {modes}; both "
        f"ranks' batches of a step share mode and language: {same_mode}"
    )
    print(f"- model written by rank 0 and loadable: {model_ok}")
    if not (ok_rank and model_ok and same_mode and no_dup):
        raise SystemExit("multi-process check FAILED")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("steps")
    s.add_argument("--model", default="multilingual-e5-small")
    s.add_argument("--warmup", type=int, default=3)
    s.add_argument("--timed", type=int, default=6)
    s.add_argument("--repeats", type=int, default=2)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--max-length", type=int, default=128)
    s.add_argument("--threads", type=int, default=None, help="default: physical cores")
    s.add_argument("--pairs", default=None, help="a pairs file (default: build MLQA-R pairs)")
    c = sub.add_parser("compare")
    c.add_argument("--steps", type=int, default=30)
    c.add_argument("--batch-size", type=int, default=32)
    c.add_argument("--repeats", type=int, default=3)
    c.add_argument("--threads", type=int, default=1)
    g = sub.add_parser("ddp")
    g.add_argument("--steps", type=int, default=6)
    g.add_argument("--batch-size", type=int, default=16)
    w = sub.add_parser("ddp-worker")
    for name in ("--model", "--pairs", "--out"):
        w.add_argument(name, required=True)
    w.add_argument("--steps", type=int, default=6)
    w.add_argument("--batch-size", type=int, default=16)
    a = p.parse_args()
    {"steps": step_times, "compare": compare, "ddp": ddp, "ddp-worker": ddp_worker}[a.cmd](a)


if __name__ == "__main__":
    main()

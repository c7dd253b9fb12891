"""The cost of a study cell on this machine: seconds per optimizer step and encode speed.

    OMP_NUM_THREADS=1 nice python benchmarks/study/cost.py --steps 6 --texts 64

Trains multilingual-e5-small for a few steps at the plan's batch size and max length on
MLQA-R pairs (the first step, which includes warm-up allocations, is reported apart),
then encodes a seeded sample of each benchmark's passages and queries. Prints one JSON
object; the figures and the plan arithmetic are in benchmarks/results/study-cost.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

BENCHMARKS = ("xquad-r", "python-faq", "manpages", "justice-canada", "finlex", "cc-legalcode")


def step_times(model_name: str, steps: int, batch: int, max_len: int) -> list[float]:
    """Wall seconds of each optimizer step of a hybrid fine-tune (frozen word embeddings)."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from xeval.models import load_model
    from xeval.training.finetune import freeze_word_embeddings
    from xeval.training.pairs import build_pairs

    pairs = build_pairs("lareqa-mlqa-r").sample(steps * batch, seed=0)
    model = load_model(model_name, device="cpu")
    model.max_seq_length = max_len
    freeze_word_embeddings(model)
    loss = MultipleNegativesRankingLoss(model, scale=20.0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-5)
    model.train()
    times = []
    for i in range(steps):
        rows = pairs.slice(i * batch, batch)
        t = time.perf_counter()
        feats = [
            model.tokenize(["query: " + x for x in rows["query"].to_list()]),
            model.tokenize(["passage: " + x for x in rows["passage"].to_list()]),
        ]
        value = loss(feats, None)
        value.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t)
    return times


def encode_rates(model_name: str, n: int) -> dict[str, dict[str, float]]:
    """Texts per second encoding ``n`` sampled passages and ``n`` queries per benchmark."""
    from xeval.benchmark.registry import build
    from xeval.models import load_model

    model = load_model(model_name, device="cpu")
    out = {}
    for name in BENCHMARKS:
        t = time.perf_counter()
        bench = build(name)
        build_s = time.perf_counter() - t
        rec: dict[str, float] = {
            "build_s": round(build_s, 1),
            "docs": bench.corpus.height,
            "queries": bench.queries.height,
        }
        for what, df, prompt in (
            ("passages", bench.corpus, "passage: "),
            ("queries", bench.queries, "query: "),
        ):
            texts = df.sample(min(n, df.height), seed=0)["text"].to_list()
            t = time.perf_counter()
            model.encode(texts, prompt=prompt, batch_size=32, show_progress_bar=False)
            s = time.perf_counter() - t
            rec[f"{what}_per_s"] = round(len(texts) / s, 1)
            rec[f"{what}_mean_chars"] = round(float(np.mean([len(x) for x in texts])), 0)
        out[name] = rec
        print(name, rec, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="multilingual-e5-small")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--texts", type=int, default=64)
    args = ap.parse_args()
    import torch

    t = step_times(args.model, args.steps, args.batch_size, args.max_length)
    print("steps", [round(x, 2) for x in t], flush=True)
    enc = encode_rates(args.model, args.texts)
    print(
        json.dumps(
            {
                "machine": platform.platform(),
                "torch_threads": torch.get_num_threads(),
                "batch_size": args.batch_size,
                "max_length": args.max_length,
                "step_seconds": [round(x, 2) for x in t],
                "step_seconds_median_after_first": round(float(np.median(t[1:])), 2),
                "encode": enc,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

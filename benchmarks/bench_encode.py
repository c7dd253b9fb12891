"""Encoding benchmark: xeval's encode path vs plain sentence-transformers fp32 vs bf16 autocast.

Takes a seeded sample of distinct real XQuAD-R candidate sentences (../shared/data/lareqa,
every language) and encodes them with a real model (multilingual-e5-small by default),
no cache, in interleaved repeats (A B C A B C ...):

- ``sentence-transformers fp32 (peer)``: ``model.encode(texts, prompt=...)``, what
  ``xeval run`` did before;
- ``sentence-transformers bf16 autocast (floor)``: the same call inside
  ``torch.autocast("cpu", dtype=torch.bfloat16)``: the plain bf16 speed this machine
  offers;
- ``xeval encode_texts (--dtype auto)``: :func:`xeval.retrieval.encode.encode_texts`
  (length-sorted batches, tokenization ahead, autocast per ``--dtype``).

All three run with the same torch thread count (physical cores, as ``xeval run`` sets).
Prints passages/s (median and best of the repeats), ratios vs the peer and vs the floor
in wall time and in CPU time (process time of all threads: steadier on a shared machine),
and the agreement (min cosine) of each path with the fp32 peer.

    nice .venv/bin/python benchmarks/bench_encode.py [--n 512] [--repeats 3] [--model tiny]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("XEVAL_SOURCES") or REPO.parent / "shared" / "data")
sys.path.insert(0, str(REPO))

from benchmarks.bench_search import lareqa_texts, model_and_info  # noqa: E402
from xeval.precision import physical_cores, resolve_dtype, set_threads  # noqa: E402
from xeval.retrieval.encode import default_prompts, encode_texts  # noqa: E402


def xquad_passages(data: Path, n: int, seed: int) -> list[str]:
    ids, docs, _ = lareqa_texts(data)
    if not docs:
        raise SystemExit(f"no LaReQA files under {data}/lareqa (set XEVAL_SOURCES or --data)")
    pool = sorted({d for i, d in zip(ids, docs, strict=True) if i.startswith("xquad-r-")})
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), min(n, len(pool)), replace=False)]


def paths(st, prompt: str, batch: int, dtype: str) -> dict[str, Callable[[list[str]], np.ndarray]]:
    import torch

    def plain(texts: list[str]) -> np.ndarray:
        return st.encode(texts, prompt=prompt, batch_size=batch, convert_to_numpy=True)

    def floor(texts: list[str]) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return plain(texts)

    precision = resolve_dtype(dtype, "cpu")

    def xeval(texts: list[str]) -> np.ndarray:
        return encode_texts(st, texts, prompt=prompt, batch_size=batch, precision=precision,
                            progress=False)[0]  # fmt: skip

    return {
        "sentence-transformers fp32 (peer)": plain,
        "sentence-transformers bf16 autocast (floor)": floor,
        f"xeval encode_texts (--dtype {dtype} = {precision.name})": xeval,
    }


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    return float(((a * b).sum(1) / (na * nb)).min())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="multilingual-e5-small")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--n", type=int, default=512, help="passages to encode")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    texts = xquad_passages(args.data, args.n, args.seed)
    st, info = model_and_info(args.model)
    threads = set_threads(physical_cores())
    prompt = default_prompts(st)["passage"]
    print(f"model: {info['label']}; {len(texts)} distinct XQuAD-R passages, mean "
          f"{np.mean([len(t) for t in texts]):.0f} chars, batch {args.batch_size}, torch threads "
          f"{threads}; machine: {platform.processor() or platform.machine()}, "
          f"{resolve_dtype('auto', 'cpu').reason}")  # fmt: skip
    fns = paths(st, prompt, args.batch_size, args.dtype)
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    out: dict[str, np.ndarray] = {}
    for fn in fns.values():  # warm-up (first-call allocations, oneDNN kernels)
        fn(texts[: args.batch_size])
    for _ in range(args.repeats):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out[name] = fn(texts)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    peer, floor = (statistics.median(times[k]) for k in list(fns)[:2])
    cpeer, cfloor = (statistics.median(cpu[k]) for k in list(fns)[:2])
    ref = out[next(iter(fns))]
    print("\n| path | median s | best s | passages/s (median) | vs peer | vs floor | CPU s "
          "| CPU vs peer | CPU vs floor | min cosine to fp32 |\n"
          "|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for name, ts in times.items():
        med, c = statistics.median(ts), statistics.median(cpu[name])
        print(f"| {name} | {med:.2f} | {min(ts):.2f} | {len(texts) / med:.1f} | "
              f"{peer / med:.2f}x | {floor / med:.2f}x | {c:.1f} | {cpeer / c:.2f}x | "
              f"{cfloor / c:.2f}x | {min_cosine(out[name], ref):.5f} |")  # fmt: skip
    print(f"\nrepeats (s): { {k: [round(t, 2) for t in v] for k, v in times.items()} }")


if __name__ == "__main__":
    main()

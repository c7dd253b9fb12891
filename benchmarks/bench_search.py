"""Search benchmark: usearch HNSW vs exact search on real embeddings.

Encodes every candidate sentence of XQuAD-R and MLQA-R (../shared/data/lareqa; 33.5k
sentences, 18 language editions) and a seeded sample of their questions with a real
model (multilingual-e5-small by default, through the embedding cache, so only the first
run pays for encoding), then measures top-k search:

- ``exact (xeval)``: :func:`xeval.retrieval.search.exact_search`, batched numpy matmul,
  tie rule applied: the reference for recall;
- ``exact numpy, one block``: all-queries x all-docs at once + argpartition (the naive
  peer, for memory);
- ``exact torch``: batched ``torch.mm`` + ``torch.topk`` (no tie rule);
- ``usearch HNSW f32`` / ``f16``: build + search, with exact rescoring of candidates.

Prints recall@k vs exact, seconds, queries/s, ratios vs exact (xeval), and memory peaks
(tracemalloc for Python/numpy allocations, usearch's own ``memory_usage`` for the index,
ru_maxrss for the process).

    nice .venv/bin/python benchmarks/bench_search.py                 # e5, all sentences
    nice .venv/bin/python benchmarks/bench_search.py --model tiny    # random test model
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from xeval.retrieval.cache import EmbeddingCache, default_cache_root  # noqa: E402
from xeval.retrieval.encode import default_prompts, encode_texts, normalize  # noqa: E402
from xeval.retrieval.search import HnswIndex, exact_search, tie_ranks  # noqa: E402


def lareqa_texts(root: Path) -> tuple[list[str], list[str], list[str]]:
    """(doc ids, sentences, questions) of every XQuAD-R and MLQA-R language file."""
    ids, docs, questions = [], [], []
    for ds in ("xquad-r", "mlqa-r"):
        for f in sorted((root / "lareqa" / ds).glob("*.json")):
            data = json.loads(f.read_text(encoding="utf-8"))
            n = 0
            for art in data["data"]:
                for para in art["paragraphs"]:
                    for sent in para["sentences"]:
                        ids.append(f"{ds}-{f.stem}-{n:06d}")
                        docs.append(sent)
                        n += 1
                    questions += [qa["question"] for qa in para["qas"]]
    return ids, docs, questions


def model_and_info(name: str):
    if name == "tiny":
        from xeval.models.tiny import build_tiny_model

        path = build_tiny_model(Path(tempfile.mkdtemp()) / "tiny")
    else:
        from xeval.models import resolve_model

        path = resolve_model(name)
    from xeval.models import load_model, model_info

    return load_model(str(path), device="cpu"), model_info(str(path))


def measure(fn: Callable[[], Any]) -> tuple[Any, float, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    out = fn()
    sec = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, sec, peak


def torch_search(q: np.ndarray, d: np.ndarray, k: int, batch: int = 2048) -> np.ndarray:
    import torch

    dt = torch.from_numpy(d)
    out = []
    for s in range(0, len(q), batch):
        out.append(torch.topk(torch.from_numpy(q[s : s + batch]) @ dt.T, k, dim=1).indices)
    return torch.cat(out).numpy()


def one_block(q: np.ndarray, d: np.ndarray, k: int) -> np.ndarray:
    s = q @ d.T
    return np.argpartition(-s, k - 1, axis=1)[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="multilingual-e5-small")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--max-docs", type=int, default=5000, help="0: all 33.5k")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--expansion-search", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    ids, docs, questions = lareqa_texts(args.data)
    rng = np.random.default_rng(args.seed)
    if args.max_docs and args.max_docs < len(docs):
        keep = np.sort(rng.choice(len(docs), args.max_docs, replace=False))
        ids, docs = [ids[i] for i in keep], [docs[i] for i in keep]
    questions = [questions[i] for i in rng.choice(len(questions), args.queries, replace=False)]

    st, info = model_and_info(args.model)
    prompts = default_prompts(st)
    root = default_cache_root()
    t0 = time.perf_counter()
    dv, ds = encode_texts(st, docs, prompt=prompts["passage"], batch_size=args.batch_size,
                          cache=EmbeddingCache(root, info["fingerprint"], prompts["passage"]),
                          desc="encode passages")  # fmt: skip
    qv, qs = encode_texts(st, questions, prompt=prompts["query"], batch_size=args.batch_size,
                          cache=EmbeddingCache(root, info["fingerprint"], prompts["query"]),
                          desc="encode queries")  # fmt: skip
    enc = time.perf_counter() - t0
    dv, qv = normalize(dv), normalize(qv)
    print(f"model: {info['label']} ({info['fingerprint'][:12]})")
    print(f"corpus: {len(docs)} sentences (XQuAD-R + MLQA-R), {len(questions)} questions, "
          f"dim {dv.shape[1]}, k={args.k}")  # fmt: skip
    print(f"encoding: {enc:.1f} s ({ds['encoded']} passages + {qs['encoded']} queries encoded, "
          f"{ds['cached'] + qs['cached']} from cache)\n")  # fmt: skip

    tie = tie_ranks(ids)
    rows: list[tuple[str, float, float, float, float, int]] = []
    ref, t_ref, m_ref = measure(lambda: exact_search(qv, dv, args.k, tie))
    truth = ref.indices
    rows.append(("exact (xeval, batched numpy)", 0.0, t_ref, 1.0, 0, m_ref))
    got, t, m = measure(lambda: one_block(qv, dv, args.k))
    rows.append(("exact numpy, one block", 0.0, t, recall(got, truth), 0, m))
    got, t, m = measure(lambda: torch_search(qv, dv, args.k))
    rows.append(("exact torch mm + topk", 0.0, t, recall(got, truth), 0, m))
    for dtype in ("f32", "f16"):
        idx, tb, mb = measure(lambda dt=dtype: HnswIndex(dv, dtype=dt))
        for ef in args.expansion_search:
            idx.params["expansion_search"] = ef
            got, t, m = measure(lambda i=idx: i.search(qv, args.k, tie))
            rows.append((f"usearch HNSW {dtype} ef={ef} (xeval: + exact rescoring, tie rule)",
                         tb, t, recall(got.indices, truth), idx.index.memory_usage,
                         max(mb, m)))  # fmt: skip
            idx.index.expansion_search = ef
            raw, t, m = measure(lambda i=idx: i.index.search(qv, args.k))
            rows.append((f"usearch HNSW {dtype} ef={ef}, raw usearch search", tb, t,
                         recall(np.asarray(raw.keys, dtype=np.int64), truth),
                         idx.index.memory_usage, max(mb, m)))  # fmt: skip
        del idx

    print(f"| method | build s | search s | queries/s | speed vs exact (xeval) | recall@{args.k} "
          "| index MiB | tracemalloc peak MiB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, tb, ts, rec, mem, peak in rows:
        print(f"| {name} | {tb:.2f} | {ts:.2f} | {len(questions) / ts:,.0f} | "
              f"{t_ref / ts:.2f}x | {rec:.4f} | {mem / 2**20:.1f} | {peak / 2**20:.1f} |")  # fmt: skip
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS (ru_maxrss, whole run incl. model): {rss:.0f} MiB")
    print(f"embeddings: docs {dv.nbytes / 2**20:.1f} MiB, queries {qv.nbytes / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()

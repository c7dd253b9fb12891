"""Encoding benchmark: passages/s with no cache, a cold cache and a warm cache.

Takes a seeded sample of real candidate sentences from XQuAD-R and MLQA-R
(../shared/data/lareqa, every language) and encodes them with a real model
(multilingual-e5-small by default) through :func:`xeval.retrieval.encode.encode_texts`:

- ``no cache``: plain batched encoding (the peer);
- ``cold cache``: an empty cache in a temporary folder: encode + store the shards;
- ``warm cache``: the same texts again from a fresh cache object (a new process would see
  the same): hashing, index lookup, memory-mapped reads; nothing is encoded.

    nice .venv/bin/python benchmarks/bench_encode.py [--n 500] [--model tiny]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_search import lareqa_texts, model_and_info  # noqa: E402
from xeval.retrieval.cache import EmbeddingCache  # noqa: E402
from xeval.retrieval.encode import default_prompts, encode_texts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="multilingual-e5-small")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=500, help="passages to encode")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    _, docs, _ = lareqa_texts(args.data)
    docs = sorted(set(docs))
    rng = np.random.default_rng(args.seed)
    texts = [docs[i] for i in rng.choice(len(docs), args.n, replace=False)]
    st, info = model_and_info(args.model)
    prompt = default_prompts(st)["passage"]
    print(f"model: {info['label']}; {len(texts)} distinct passages (XQuAD-R + MLQA-R sample), "
          f"mean {np.mean([len(t) for t in texts]):.0f} chars, batch {args.batch_size}, "
          f"torch threads {__import__('torch').get_num_threads()}")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        kw = {"prompt": prompt, "batch_size": args.batch_size, "progress": False}
        t0 = time.perf_counter()
        ref, _ = encode_texts(st, texts, cache=None, **kw)
        rows.append(("no cache (peer)", time.perf_counter() - t0))
        t0 = time.perf_counter()
        cold, s1 = encode_texts(st, texts, cache=EmbeddingCache(tmp, info["fingerprint"], prompt),
                                **kw)  # fmt: skip
        rows.append(("cold cache (encoding + storing)", time.perf_counter() - t0))
        t0 = time.perf_counter()
        warm, s2 = encode_texts(st, texts, cache=EmbeddingCache(tmp, info["fingerprint"], prompt),
                                **kw)  # fmt: skip
        rows.append(("warm cache (nothing encoded)", time.perf_counter() - t0))
        assert s1["encoded"] == len(texts) and s2["encoded"] == 0
        assert np.array_equal(cold, warm)
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    print(f"max |no cache - cold| = {np.abs(ref - cold).max():.2e}; cache on disk "
          f"{size / 2**20:.2f} MiB ({size / len(texts):.0f} B/passage, float32)\n")  # fmt: skip
    base = rows[0][1]
    print("| mode | seconds | passages/s | speed vs no cache |")
    print("|---|---|---|---|")
    for name, sec in rows:
        print(f"| {name} | {sec:.3f} | {len(texts) / sec:,.0f} | {base / sec:.1f}x |")


if __name__ == "__main__":
    main()

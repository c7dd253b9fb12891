"""``xeval run`` as one rank of a ``torchrun`` job: encode a shard, search it, merge on rank 0.

Each rank encodes its slice of the queries and of the corpus into the shared embedding
cache (append-only shards with unique names, so ranks never write the same file), waits
for the others, reads the vectors it needs back from the cache (every query, its corpus
slice, the relevant documents), searches its slice of every setting's corpus and sends
the per-shard top-k and rank counts to rank 0, which merges them exactly
(:mod:`xeval.retrieval.distributed`) and writes the run folder through the same atomic
writer as a one-process run. With the exact backend the run tables are identical to the
one-process run's; with HNSW each rank searches its own index over its slice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from xeval.benchmark.schema import Benchmark
from xeval.benchmark.settings import Setting
from xeval.errors import XevalError
from xeval.provenance import atomic_dir, write_json
from xeval.retrieval import distributed as dd
from xeval.retrieval.cache import EmbeddingCache, text_keys
from xeval.retrieval.config import RunConfig, RunResult
from xeval.retrieval.encode import EncodeOptions, encode_texts, max_length, normalize, uses_cosine
from xeval.retrieval.index_store import stored_index
from xeval.retrieval.inputs import (
    Encoded,
    LangCodes,
    load_encoder,
    quiet_libraries,
    run_precision,
    run_prompts,
    select,
)
from xeval.retrieval.outputs import (
    SettingTables,
    rank_table,
    run_meta,
    run_table,
    trec_tag,
    write_setting,
)
from xeval.retrieval.search import HnswIndex, TopK, batch_rows, choose_backend, tie_ranks

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def rank_device(device: str | None, dist: dd.Dist) -> str | None:
    """``cuda`` (or no device on a CUDA machine) becomes ``cuda:LOCAL_RANK``: one GPU a rank."""
    import torch

    if device == "cuda" or (device is None and torch.cuda.is_available()):
        return f"cuda:{dist.local_rank}"
    return device


@dataclass
class _Shard:
    """What one rank searches with: all queries, its corpus slice, the relevant docs."""

    enc: Encoded
    part: slice
    rel_row: dict[str, int]  # relevant doc id -> row of ``relvec``
    relvec: np.ndarray
    tie: np.ndarray  # tie ranks over the whole corpus
    dlang: LangCodes
    q_row: dict[str, int]
    hnsw: dict[tuple[str, ...], HnswIndex]


def _vectors(st, texts: list[str], cache, opts: EncodeOptions) -> tuple[np.ndarray, dict]:
    return encode_texts(st, texts, opts, cache=cache)


def _encode_mine(
    st: SentenceTransformer,
    texts: list[str],
    cache: EmbeddingCache,
    opts: EncodeOptions,
    dist: dd.Dist,
) -> dict[str, int]:
    """Encode this rank's batches of the one-process plan over the texts missing from the cache.

    Every rank looks the texts up before any rank writes (a barrier), so all ranks plan
    over the same missing texts, in the same order, as one process would.
    """
    keys = text_keys(texts, opts.prompt)
    _, found = cache.lookup(list(dict.fromkeys(keys)))
    uniq = list(dict.fromkeys(zip(keys, texts, strict=True)))
    missing = [t for (_, t), hit in zip(uniq, found, strict=True) if not hit]
    dd.barrier(dist)
    mine = dataclasses.replace(opts, shard=(dist.rank, dist.world_size), reuse=False)
    _, stats = encode_texts(st, missing, mine, cache=cache)
    return {**stats, "texts": len(texts), "unique": len(uniq), "cached": len(uniq) - len(missing)}


def _encode(
    st: SentenceTransformer,
    bench: Benchmark,
    settings: list[Setting],
    fingerprint: str,
    cfg: RunConfig,
    dist: dd.Dist,
) -> _Shard:
    """Encode this rank's batches into the cache; then read back what the search needs."""
    precision = run_precision(cfg, st, bench)
    prompts = run_prompts(st, cfg)
    queries, corpus = select(bench, settings)
    root = cfg.cache_root()
    opts = EncodeOptions(batch_size=cfg.batch_size, precision=precision, progress=cfg.progress)
    caches = {w: EmbeddingCache(root, fingerprint, prompts[w], precision.name) for w in prompts}
    qo = dataclasses.replace(opts, prompt=prompts["query"], desc="encode queries")
    po = dataclasses.replace(opts, prompt=prompts["passage"], desc="encode passages")
    t0 = time.perf_counter()
    qtexts = queries["text"].to_list()
    qstats = _encode_mine(st, qtexts, caches["query"], qo, dist)
    pstats = _encode_mine(st, corpus["text"].to_list(), caches["passage"], po, dist)
    dd.barrier(dist)  # every batch is in the cache now: read back what this rank searches
    part = dist.shard(corpus.height)
    qvec, _ = _vectors(st, qtexts, caches["query"], dataclasses.replace(qo, progress=False))
    dvec, _ = _vectors(st, corpus["text"][part].to_list(), caches["passage"],
                       dataclasses.replace(po, progress=False))  # fmt: skip
    rel_ids = sorted(
        {d for s in settings for d in s.qrels.filter(pl.col("relevance") > 0)["doc_id"]}
    )
    rel = corpus.filter(pl.col("doc_id").is_in(rel_ids))
    relvec, _ = _vectors(
        st, rel["text"].to_list(), caches["passage"], dataclasses.replace(po, progress=False)
    )
    if uses_cosine(st):
        qvec, dvec, relvec = normalize(qvec), normalize(dvec), normalize(relvec)
    stats = _sum_stats(dd.gather(dist, {"queries": qstats, "passages": pstats}))
    enc = Encoded(
        qvec, dvec, queries, corpus, stats, uses_cosine(st), time.perf_counter() - t0, prompts,
        precision, 0, str(st.device), max_length(st),
    )  # fmt: skip
    q_row = {q: i for i, q in enumerate(queries["query_id"].to_list())}
    tie = tie_ranks(corpus["doc_id"].to_numpy().astype(object))
    rel_row = dict(zip(rel["doc_id"].to_list(), range(rel.height), strict=True))
    return _Shard(enc, part, rel_row, relvec, tie, LangCodes(corpus["lang"]), q_row, {})


def _sum_stats(per_rank: list[dict[str, dict[str, int]]] | None) -> dict[str, dict[str, int]]:
    """Counts of the whole run: every rank saw all texts, each encoded its own batches."""
    if not per_rank:
        return {}
    out = {}
    for what, first in per_rank[0].items():
        enc = sum(r[what]["encoded"] for r in per_rank)
        cut = first["truncated"]  # counted over all missing texts, on every rank
        out[what] = {**first, "encoded": enc, "truncated": cut, "cached": first["unique"] - enc}
    return out


def _search(s: Setting, sh: _Shard, cfg: RunConfig) -> tuple[str, dd.ShardPart]:
    """This rank's part of one setting: top-k over its slice and the pairs' rank counts."""
    qids = s.query_ids
    qsel = np.fromiter((sh.q_row[q] for q in qids), dtype=np.int64, count=len(qids))
    in_setting = sh.dlang.isin(s.doc_langs)
    n_total = int(in_setting.sum())
    rows = sh.part.start + np.flatnonzero(in_setting[sh.part])
    sub_q, sub_d, sub_tie = sh.enc.qvec[qsel], sh.enc.dvec[rows - sh.part.start], sh.tie[rows]
    qpos = {q: i for i, q in enumerate(qids)}
    rel = s.qrels.filter(pl.col("relevance") > 0)
    target = np.fromiter((sh.rel_row[d] for d in rel["doc_id"]), np.int64, count=rel.height)
    pairs = dd.Pairs(
        np.fromiter((qpos[q] for q in rel["query_id"]), np.int64, count=rel.height),
        target,
        sh.tie[_corpus_rows(sh, rel["doc_id"])],
        sh.relvec,
    )
    used = "exact" if s.kind == "multi" else choose_backend(
        cfg.backend, n_total, cfg.k, cfg.hnsw_threshold
    )  # fmt: skip
    block = batch_rows(n_total, cfg.memory_mb)  # the one-process query blocks
    if used == "hnsw" and cfg.k < n_total:
        part = dd.search_shard(sub_q, sub_d, rows, sub_tie, 0, pairs, block)
        if len(rows):
            if s.doc_langs not in sh.hnsw:
                sh.hnsw[s.doc_langs] = stored_index(sub_d, cfg.index_root(), cfg.hnsw_params)
            top = sh.hnsw[s.doc_langs].search(sub_q, cfg.k, sub_tie)
            part.indices, part.scores = rows[top.indices], top.scores
        return used, part
    return "exact", dd.search_shard(sub_q, sub_d, rows, sub_tie, cfg.k, pairs, block)


def _corpus_rows(sh: _Shard, doc_ids: pl.Series) -> np.ndarray:
    ids = sh.enc.corpus["doc_id"]
    found = pl.DataFrame({"doc_id": ids, "row": np.arange(len(ids))}).join(
        pl.DataFrame({"doc_id": doc_ids, "pos": np.arange(len(doc_ids))}), on="doc_id"
    )
    out = np.empty(len(doc_ids), dtype=np.int64)
    out[found["pos"].to_numpy()] = found["row"].to_numpy()
    return out


def _merge(s: Setting, parts: list[dd.ShardPart], sh: _Shard, cfg: RunConfig) -> SettingTables:
    top, ranks = dd.merge(parts, cfg.k, sh.tie)
    rel = s.qrels.filter(pl.col("relevance") > 0)
    run = run_table(TopK(top.indices, top.scores), s.query_ids, sh.enc.corpus["doc_id"])
    return SettingTables(s.name, run, rank_table(rel, ranks))


def _search_all(
    settings: list[Setting], sh: _Shard, cfg: RunConfig, tmp: Path | None, tag: str, dist: dd.Dist
) -> dict[str, str]:
    used: dict[str, str] = {}
    if tmp is not None:
        (tmp / "runs").mkdir()
        (tmp / "ranks").mkdir()
    for s in settings:
        used[s.name], part = _search(s, sh, cfg)
        parts = dd.gather(dist, part)
        if tmp is not None and parts is not None:
            write_setting(_merge(s, parts, sh, cfg), tmp, cfg.trec, tag)
    return used


def run_sharded(
    model: Any,
    bench: Benchmark,
    settings: list[Setting],
    out: Path,
    cfg: RunConfig,
    info: dict[str, Any] | None,
    dist: dd.Dist,
) -> RunResult:
    """One rank's share of :func:`xeval.retrieval.run.run_benchmark` (rank 0 writes ``out``)."""
    import torch

    from xeval.precision import default_threads, set_threads

    if not cfg.use_cache:
        raise XevalError("a sharded run (torchrun) passes vectors through the embedding cache")
    created = dd.init(dist)
    try:
        with quiet_libraries(not cfg.progress or not dist.root):
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size))
            threads = set_threads(cfg.threads or default_threads(local_world))
            torch.manual_seed(cfg.seed)
            st, info = load_encoder(model, info, rank_device(cfg.device, dist))
            quiet = dataclasses.replace(cfg, progress=cfg.progress and dist.root)
            sh = _encode(st, bench, settings, info["fingerprint"], quiet, dist)
            sh.enc.threads = threads
            label = cfg.label or str(info.get("label") or info.get("name"))
            meta = _write(settings, sh, quiet, out, label, info, bench, dist)
        meta = dd.broadcast(dist, meta)
    finally:
        dd.finish(created)
    q, p = meta["encoding"]["queries"], meta["encoding"]["passages"]
    return RunResult(
        out, label, tuple(meta["settings"]), cfg.k, sh.enc.precision.name, threads, q, p,
        meta["backends"], meta["timings_s"],
    )  # fmt: skip


def _write(
    settings: list[Setting],
    sh: _Shard,
    cfg: RunConfig,
    out: Path,
    label: str,
    info: dict[str, Any],
    bench: Benchmark,
    dist: dd.Dist,
) -> dict[str, Any] | None:
    """Search every setting; rank 0 merges and writes ``out`` atomically, returns run.json."""
    writer = atomic_dir(out, overwrite=cfg.overwrite) if dist.root else contextlib.nullcontext()
    with writer as tmp:
        t1 = time.perf_counter()
        used = _search_all(settings, sh, cfg, tmp, trec_tag(label), dist)
        if tmp is None:
            return None
        timings = {"encode": round(sh.enc.seconds, 3), "search": round(time.perf_counter() - t1, 3)}
        meta = run_meta(cfg, info, label, bench, settings, sh.enc, used, timings)
        meta["distributed"] = {"world_size": dist.world_size, "backend": "gloo"}
        write_json(tmp / "run.json", meta)
    return meta

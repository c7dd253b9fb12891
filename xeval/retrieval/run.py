"""``run_benchmark``: encode a benchmark once, search every setting, write a run directory.

RUNDIR layout (written atomically: it appears only when complete)::

    run.json                    provenance, label, model, benchmark, prompts, precision,
                                threads, truncation, backend, k, settings, timings
    runs/<setting>.parquet      query_id, doc_id, score (f64), rank (i32, 1-based)
    runs/<setting>.trec[.gz]    qid Q0 docid rank score label (only with ``trec``)
    ranks/<setting>.parquet     query_id, doc_id, rank: exact rank of every relevant
                                document over the setting's whole corpus (every setting)

Every query and document is encoded once (not once per setting), through the embedding
cache, so a re-run after an interruption or with other settings re-encodes nothing.
Searching a setting overlaps with writing the previous one (a writer thread).
Tie rule: score descending, then doc_id descending.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from xeval.benchmark.schema import Benchmark, load_benchmark
from xeval.benchmark.settings import Setting, enumerate_settings
from xeval.errors import XevalError
from xeval.provenance import atomic_dir, write_json
from xeval.retrieval.cache import EmbeddingCache
from xeval.retrieval.config import RunConfig, RunResult
from xeval.retrieval.distributed import Dist
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
from xeval.retrieval.search import HnswIndex, choose_backend, exact_search, pair_ranks, tie_ranks
from xeval.retrieval.sharded import run_sharded

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["RunConfig", "RunResult", "run_benchmark"]


def _encode_all(
    st: SentenceTransformer,
    bench: Benchmark,
    settings: list[Setting],
    fingerprint: str,
    threads: int,
    cfg: RunConfig,
) -> Encoded:
    """Encode every query and document the settings need, once, through the cache."""
    precision = run_precision(cfg, st, bench)
    prompts = run_prompts(st, cfg)
    queries, corpus = select(bench, settings)
    root = cfg.cache_root()
    opts = EncodeOptions(batch_size=cfg.batch_size, precision=precision, progress=cfg.progress)
    t0 = time.perf_counter()
    vecs, stats = {}, {}
    for what, table in (("queries", queries), ("passages", corpus)):
        prompt = prompts["query" if what == "queries" else "passage"]
        cache = EmbeddingCache(root, fingerprint, prompt, precision.name) if cfg.use_cache else None
        o = dataclasses.replace(opts, prompt=prompt, desc=f"encode {what}")
        vecs[what], stats[what] = encode_texts(st, table["text"].to_list(), o, cache=cache)
    cosine = uses_cosine(st)
    qvec, dvec = vecs["queries"], vecs["passages"]
    if cosine:
        qvec, dvec = normalize(qvec), normalize(dvec)
    return Encoded(
        qvec, dvec, queries, corpus, stats, cosine, time.perf_counter() - t0, prompts,
        precision, threads, str(st.device), max_length(st),
    )  # fmt: skip


def _is_lexical(model: str) -> bool:
    from xeval.retrieval.lexical import is_bm25

    return is_bm25(model)


def _run_lexical(model: str, benchmark_dir: str | Path, out: str | Path, cfg: RunConfig) -> Any:
    """``bm25[:k1=..,b=..]``: BM25 (bm25s) over the same settings, ranks and run folder."""
    from xeval.retrieval.lexical import run_bm25_spec

    opts = {"k": cfg.k, "kinds": cfg.kinds, "languages": cfg.languages, "label": cfg.label}
    opts |= {"overwrite": cfg.overwrite, "progress": cfg.progress, "trec": cfg.trec != "none"}
    return run_bm25_spec(model, benchmark_dir, out, **opts)


def run_benchmark(
    model: str | Path | SentenceTransformer,
    benchmark_dir: str | Path,
    out: str | Path,
    config: RunConfig | None = None,
    *,
    info: dict[str, Any] | None = None,
    **options: Any,
) -> RunResult:
    """Encode ``benchmark_dir`` with ``model`` and write ranked runs for every setting to ``out``.

    ``config`` (default :class:`RunConfig`), with ``options`` overriding its fields.
    ``model`` is a name or path for :func:`xeval.models.load_model`, or a loaded
    SentenceTransformer (then ``info`` may give name/label/path/fingerprint; the
    fingerprint defaults to a hash of its weights). Prompts default to the model's own.
    Multi settings always take their top-k from the exact pass that computes the exact
    ranks of relevant documents (that pass scores every document anyway).
    """
    import torch

    from xeval.precision import set_threads

    cfg = dataclasses.replace(config or RunConfig(), **options)
    if isinstance(model, str) and _is_lexical(model):  # BM25: the same run folder, other scorer
        return _run_lexical(model, benchmark_dir, out, cfg)
    out = Path(out)
    cfg.check(out)
    bench = load_benchmark(benchmark_dir)
    langs = list(cfg.languages) if cfg.languages else None
    settings = enumerate_settings(bench, cfg.kinds, langs)
    if not settings:
        raise XevalError("no setting has queries with relevant documents", file=benchmark_dir)
    dist = Dist.from_env()
    if dist.active:  # torchrun: this process is one rank of a sharded run
        return run_sharded(model, bench, settings, out, cfg, info, dist)
    with quiet_libraries(not cfg.progress):
        threads = set_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        st, info = load_encoder(model, info, cfg.device)
        enc = _encode_all(st, bench, settings, info["fingerprint"], threads, cfg)
        label = cfg.label or str(info.get("label") or info.get("name"))
        ctx = _SearchContext.build(enc, cfg, trec_tag(label))
        with atomic_dir(out, overwrite=cfg.overwrite) as tmp:
            t1 = time.perf_counter()
            used = _search_all(settings, ctx, tmp)
            timings = {
                "encode": round(enc.seconds, 3),
                "search": round(time.perf_counter() - t1, 3),
            }
            meta = run_meta(cfg, info, label, bench, settings, enc, used, timings)
            write_json(tmp / "run.json", meta)
    return RunResult(
        out, label, tuple(meta["settings"]), cfg.k, enc.precision.name, threads,
        enc.stats["queries"], enc.stats["passages"], used, timings,
    )  # fmt: skip


@dataclass
class _SearchContext:
    """What every setting's search shares: vectors, ids, tie ranks, options, HNSW indexes."""

    qvec: np.ndarray
    dvec: np.ndarray
    q_row: dict[str, int]
    dids: pl.Series
    tie: np.ndarray
    dlang: LangCodes
    cfg: RunConfig
    tag: str
    hnsw: dict[tuple[str, ...], HnswIndex] = field(default_factory=dict)

    @classmethod
    def build(cls, enc: Encoded, cfg: RunConfig, tag: str) -> _SearchContext:
        q_row = {q: i for i, q in enumerate(enc.queries["query_id"].to_list())}
        dids = enc.corpus["doc_id"]
        tie = tie_ranks(dids.to_numpy().astype(object))
        return cls(enc.qvec, enc.dvec, q_row, dids, tie, LangCodes(enc.corpus["lang"]), cfg, tag)


def _search_all(settings: list[Setting], ctx: _SearchContext, tmp: Path) -> dict[str, str]:
    """Search every setting; a writer thread writes one setting while the next is searched."""
    from tqdm.auto import tqdm

    (tmp / "runs").mkdir()
    (tmp / "ranks").mkdir()
    used: dict[str, str] = {}
    pending: list[Future[None]] = []
    bar = tqdm(settings, desc="search + write", unit="setting", disable=not ctx.cfg.progress)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xeval-write") as writer, bar:
        for s in bar:
            used[s.name], tables = _search_setting(s, ctx)
            pending.append(writer.submit(write_setting, tables, tmp, ctx.cfg.trec, ctx.tag))
            while len(pending) > 2:  # bound the tables held in memory
                pending.pop(0).result()
        for f in pending:
            f.result()
    return used


def _search_setting(s: Setting, ctx: _SearchContext) -> tuple[str, SettingTables]:
    """Search one setting; return the backend used and its run and ranks tables."""
    cfg = ctx.cfg
    qids = s.query_ids
    qsel = np.fromiter((ctx.q_row[q] for q in qids), dtype=np.int64, count=len(qids))
    dsel = np.flatnonzero(ctx.dlang.isin(s.doc_langs))
    sub_q, sub_d, sub_tie = ctx.qvec[qsel], ctx.dvec[dsel], ctx.tie[dsel]
    sub_ids = ctx.dids.gather(dsel)
    local = dict(zip(sub_ids.to_list(), range(len(dsel)), strict=True))
    qpos = {q: i for i, q in enumerate(qids)}
    rel = s.qrels.filter(pl.col("relevance") > 0)
    pq = np.fromiter((qpos[q] for q in rel["query_id"]), dtype=np.int64, count=rel.height)
    pd = np.fromiter((local[d] for d in rel["doc_id"]), dtype=np.int64, count=rel.height)
    used = "exact" if s.kind == "multi" else choose_backend(
        cfg.backend, len(dsel), cfg.k, cfg.hnsw_threshold
    )  # fmt: skip
    if used == "hnsw" and cfg.k < len(dsel):
        if s.doc_langs not in ctx.hnsw:
            ctx.hnsw[s.doc_langs] = stored_index(sub_d, cfg.index_root(), cfg.hnsw_params)
        top = ctx.hnsw[s.doc_langs].search(sub_q, cfg.k, sub_tie)
        ranks = pair_ranks(sub_q, sub_d, sub_tie, pq, pd, memory_mb=cfg.memory_mb)
    else:
        used = "exact"
        top = exact_search(sub_q, sub_d, cfg.k, sub_tie, pairs=(pq, pd), memory_mb=cfg.memory_mb)
        ranks = top.pair_ranks
    return used, SettingTables(s.name, run_table(top, qids, sub_ids), rank_table(rel, ranks))

"""``run_benchmark``: encode a benchmark once, search every setting, write a run directory.

RUNDIR layout (written atomically: it appears only when complete)::

    run.json                    provenance, model, benchmark, prompts, backend, k, settings
    runs/<setting>.parquet      query_id, doc_id, score (f64), rank (i32, 1-based)
    runs/<setting>.trec         qid Q0 docid rank score tag
    ranks/<multi-setting>.parquet  query_id, doc_id, rank: exact rank of every relevant
                                   document over the whole pooled corpus

Every query and document is encoded once (not once per setting), through the embedding
cache, so a re-run after an interruption or with other settings re-encodes nothing.
Tie rule: score descending, then doc_id descending.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from xeval.benchmark.schema import load_benchmark
from xeval.benchmark.settings import Setting, enumerate_settings
from xeval.errors import XevalError
from xeval.metrics.trec import write_trec_run
from xeval.provenance import atomic_dir, provenance, write_json
from xeval.retrieval.cache import EmbeddingCache, default_cache_root
from xeval.retrieval.encode import (
    default_prompts,
    encode_texts,
    fingerprint_model,
    normalize,
    uses_cosine,
)
from xeval.retrieval.search import (
    BACKENDS,
    HNSW_THRESHOLD,
    HnswIndex,
    TopK,
    choose_backend,
    exact_search,
    tie_ranks,
)
from xeval.tables import KINDS, RANKS, RUN, TIE_RULE

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def _load(
    model: str | Path | SentenceTransformer, info: dict[str, Any] | None, device: str | None
) -> tuple[SentenceTransformer, dict[str, Any]]:
    if isinstance(model, (str, Path)):
        from xeval.models import load_model, model_info

        st = load_model(str(model), device=device)
        return st, {**model_info(str(model)), **(info or {})}
    info = dict(info or {})
    info.setdefault("name", type(model).__name__)
    info.setdefault("label", info["name"])
    info.setdefault("path", None)
    if not info.get("fingerprint"):
        info["fingerprint"] = fingerprint_model(model)
    if device is not None:
        model.to(device)
    return model, info


def _trec_tag(label: str) -> str:
    tag = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in label).strip("_")
    return tag or "xeval"


def _write_run(top: TopK, qids: list[str], dids: np.ndarray, tmp: Path, name: str, tag: str):
    nq, k = top.indices.shape
    run = pl.DataFrame(
        {
            "query_id": np.repeat(np.asarray(qids, dtype=object), k),
            "doc_id": dids[top.indices.ravel()],
            "score": top.scores.ravel().astype(np.float64),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), nq),
        },
        schema=RUN.schema,
    )
    run.write_parquet(tmp / "runs" / f"{name}.parquet")
    write_trec_run(run, tmp / "runs" / f"{name}.trec", tag, ranked=True)
    return run.height


def run_benchmark(
    model: str | Path | SentenceTransformer,
    benchmark_dir: str | Path,
    out: str | Path,
    *,
    k: int = 100,
    backend: str = "auto",
    batch_size: int = 64,
    query_prompt: str | None = None,
    passage_prompt: str | None = None,
    kinds: Iterable[str] = KINDS,
    languages: Iterable[str] | None = None,
    device: str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    overwrite: bool = False,
    seed: int = 0,
    hnsw_threshold: int = HNSW_THRESHOLD,
    hnsw_params: dict[str, Any] | None = None,
    memory_mb: float = 256,
    progress: bool = True,
    info: dict[str, Any] | None = None,
) -> Path:
    """Encode ``benchmark_dir`` with ``model`` and write ranked runs for every setting to ``out``.

    ``model`` is a name or path for :func:`xeval.models.load_model`, or a loaded
    SentenceTransformer (then ``info`` may give name/label/path/fingerprint; the
    fingerprint defaults to a hash of its weights). Prompts default to the model's own
    (``model.prompts["query"]`` and ``["passage"]``/``["document"]``); pass ``""`` for none.
    ``backend``: ``exact``, ``hnsw`` or ``auto`` (HNSW when a pool exceeds
    ``hnsw_threshold`` docs). Multi settings always take their top-k from the exact pass
    that computes the exact ranks of relevant documents: that pass scores every
    document anyway, so HNSW would save nothing there. Returns ``out``.
    """
    import torch

    if backend not in BACKENDS:
        raise XevalError(f"unknown search backend {backend!r}; choose from {list(BACKENDS)}")
    if k < 1:
        raise XevalError(f"k must be at least 1, got {k}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise XevalError(f"{out} exists; pass --overwrite to replace it")
    bench = load_benchmark(benchmark_dir)
    settings = enumerate_settings(bench, kinds, languages)
    if not settings:
        raise XevalError("no setting has queries with relevant documents", file=benchmark_dir)
    torch.manual_seed(seed)
    st, info = _load(model, info, device)
    prompts = default_prompts(st)
    if query_prompt is not None:
        prompts["query"] = query_prompt
    if passage_prompt is not None:
        prompts["passage"] = passage_prompt

    # ---- encode every needed query and document once ------------------------------
    qids = sorted({q for s in settings for q in s.query_ids})
    doc_langs = {lang for s in settings for lang in s.doc_langs}
    corpus = bench.corpus.filter(pl.col("lang").is_in(sorted(doc_langs)))
    queries = bench.queries.filter(pl.col("query_id").is_in(qids)).sort("query_id")
    root = Path(cache_dir) if cache_dir is not None else default_cache_root()

    def cache(prompt: str) -> EmbeddingCache | None:
        return EmbeddingCache(root, info["fingerprint"], prompt) if use_cache else None

    t0 = time.perf_counter()
    qvec, qstats = encode_texts(
        st, queries["text"].to_list(), prompt=prompts["query"], batch_size=batch_size,
        cache=cache(prompts["query"]), progress=progress, desc="encode queries",
    )  # fmt: skip
    dvec, dstats = encode_texts(
        st, corpus["text"].to_list(), prompt=prompts["passage"], batch_size=batch_size,
        cache=cache(prompts["passage"]), progress=progress, desc="encode passages",
    )  # fmt: skip
    encode_s = time.perf_counter() - t0
    cosine = uses_cosine(st)
    if cosine:
        qvec, dvec = normalize(qvec), normalize(dvec)

    # ---- search every setting ------------------------------------------------------
    q_row = {q: i for i, q in enumerate(queries["query_id"].to_list())}
    dids = corpus["doc_id"].to_numpy().astype(object)
    tie = tie_ranks(dids)
    dlang = corpus["lang"].to_numpy()
    hnsw: dict[tuple[str, ...], HnswIndex] = {}
    used: dict[str, str] = {}
    tag = _trec_tag(str(info.get("label") or info.get("name")))
    t1 = time.perf_counter()
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "runs").mkdir()
        if any(s.kind == "multi" for s in settings):
            (tmp / "ranks").mkdir()
        for s in settings:
            used[s.name] = _search_setting(
                s, qvec, dvec, q_row, dids, tie, dlang, k, backend, hnsw,
                hnsw_threshold, hnsw_params or {}, memory_mb, tmp, tag,
            )  # fmt: skip
        search_s = time.perf_counter() - t1
        meta = provenance(
            model={key: info.get(key) for key in ("name", "label", "path", "fingerprint")},
            benchmark={
                "name": bench.name,
                "path": str(Path(benchmark_dir).resolve()),
                "fingerprint": bench.fingerprint,
            },
            prompts=prompts,
            backend=backend,
            backends=used,
            k=k,
            settings=[s.name for s in settings],
            seed=seed,
            tie_rule=TIE_RULE,
            similarity="cosine" if cosine else "dot",
            hnsw={"threshold": hnsw_threshold, **(hnsw_params or {})},
            encoding={
                "queries": qstats,
                "passages": dstats,
                "batch_size": batch_size,
                "device": str(st.device),
                "cache": str(root) if use_cache else None,
                "dtype": "float32",
            },
            timings_s={"encode": round(encode_s, 3), "search": round(search_s, 3)},
        )
        write_json(tmp / "run.json", meta)
    return out


def _search_setting(
    s: Setting,
    qvec: np.ndarray,
    dvec: np.ndarray,
    q_row: dict[str, int],
    dids: np.ndarray,
    tie: np.ndarray,
    dlang: np.ndarray,
    k: int,
    backend: str,
    hnsw: dict[tuple[str, ...], HnswIndex],
    threshold: int,
    hnsw_params: dict[str, Any],
    memory_mb: float,
    tmp: Path,
    tag: str,
) -> str:
    """Search one setting, write its run (and ranks for multi); return the backend used."""
    qids = s.query_ids
    qsel = np.fromiter((q_row[q] for q in qids), dtype=np.int64, count=len(qids))
    dsel = np.flatnonzero(np.isin(dlang, list(s.doc_langs)))
    sub_q, sub_d, sub_tie, sub_ids = qvec[qsel], dvec[dsel], tie[dsel], dids[dsel]
    if s.kind == "multi":
        local = {d: i for i, d in enumerate(sub_ids)}
        qpos = {q: i for i, q in enumerate(qids)}
        rel = s.qrels.filter(pl.col("relevance") > 0)
        pq = np.fromiter((qpos[q] for q in rel["query_id"]), dtype=np.int64, count=rel.height)
        pd = np.fromiter((local[d] for d in rel["doc_id"]), dtype=np.int64, count=rel.height)
        top = exact_search(sub_q, sub_d, k, sub_tie, pairs=(pq, pd), memory_mb=memory_mb)
        assert top.pair_ranks is not None
        pl.DataFrame(
            {"query_id": rel["query_id"], "doc_id": rel["doc_id"], "rank": top.pair_ranks},
            schema=RANKS.columns,
        ).sort("query_id", "rank").write_parquet(tmp / "ranks" / f"{s.name}.parquet")
        used = "exact"
    else:
        used = choose_backend(backend, len(dsel), k, threshold)
        if used == "hnsw" and k < len(dsel):
            key = s.doc_langs
            if key not in hnsw:
                hnsw[key] = HnswIndex(sub_d, **hnsw_params)
            top = hnsw[key].search(sub_q, k, sub_tie)
        else:
            used = "exact"
            top = exact_search(sub_q, sub_d, k, sub_tie, memory_mb=memory_mb)
    _write_run(top, qids, sub_ids, tmp, s.name, tag)
    return used

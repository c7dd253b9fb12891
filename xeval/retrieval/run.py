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

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from xeval.benchmark.schema import Benchmark, load_benchmark
from xeval.benchmark.settings import Setting, enumerate_settings
from xeval.errors import XevalError
from xeval.metrics.trec import write_trec_run
from xeval.provenance import atomic_dir, provenance, write_json
from xeval.retrieval.cache import EmbeddingCache, default_cache_root
from xeval.retrieval.distributed import Dist
from xeval.retrieval.encode import (
    EncodeOptions,
    default_prompts,
    encode_texts,
    fingerprint_model,
    max_length,
    normalize,
    uses_cosine,
)
from xeval.retrieval.index_store import stored_index
from xeval.retrieval.search import (
    BACKENDS,
    HNSW_THRESHOLD,
    HnswIndex,
    TopK,
    choose_backend,
    exact_search,
    pair_ranks,
    tie_ranks,
)
from xeval.tables import KINDS, RANKS, RUN, TIE_RULE

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from xeval.precision import Precision

TREC_FORMATS = ("none", "gz", "plain")
THIRD_PARTY = r"(transformers|sentence_transformers|torch|tqdm|huggingface_hub|usearch)"


@dataclass(frozen=True)
class RunConfig:
    """Everything ``xeval run`` can be told, with its defaults."""

    k: int = 100
    backend: str = "auto"  # exact | hnsw | auto (HNSW for pools over hnsw_threshold)
    batch_size: int = 64
    query_prompt: str | None = None  # None: the model's own; "" for none
    passage_prompt: str | None = None
    kinds: tuple[str, ...] = KINDS
    languages: tuple[str, ...] | None = None
    device: str | None = None
    dtype: str = "auto"  # auto | fp32 | bf16 (xeval.precision)
    threads: int | None = None  # torch threads; None: the physical cores
    cache_dir: Path | None = None
    use_cache: bool = True
    overwrite: bool = False
    seed: int = 0
    hnsw_threshold: int = HNSW_THRESHOLD
    hnsw_params: dict[str, Any] = field(default_factory=dict)
    memory_mb: float = 256
    progress: bool = True
    trec: str = "none"  # none | gz | plain
    label: str | None = None  # the run's system name (TREC tag); default: the model label


@dataclass(frozen=True)
class RunResult:
    """What ``run_benchmark`` wrote, and how long each stage took."""

    path: Path
    label: str
    settings: tuple[str, ...]
    k: int
    precision: str
    threads: int
    queries: dict[str, int]
    passages: dict[str, int]
    backends: dict[str, str]
    timings_s: dict[str, float]

    def __fspath__(self) -> str:
        return str(self.path)

    def summary(self) -> str:
        q, p = self.queries, self.passages
        cut = q.get("truncated", 0) + p.get("truncated", 0)
        t = self.timings_s
        return (
            f"wrote {self.path}: {len(self.settings)} settings, k={self.k}, label {self.label}; "
            f"encoded {q['encoded']} queries + {p['encoded']} passages "
            f"({q['cached'] + p['cached']} from cache, {cut} truncated at the model maximum) "
            f"in {t['encode']:.1f} s ({self.precision}, {self.threads} threads), "
            f"searched and wrote in {t['search']:.1f} s"
        )


@contextlib.contextmanager
def quiet_libraries(quiet: bool = True) -> Iterator[None]:
    """Silence third-party progress bars, logging and warnings (transformers, tqdm, ...)."""
    if not quiet:
        yield
        return
    import logging
    import warnings

    from transformers.utils import logging as tlog

    loggers = [logging.getLogger(n) for n in ("sentence_transformers", "huggingface_hub")]
    levels = [lg.level for lg in loggers]
    verbosity, bars = tlog.get_verbosity(), tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=THIRD_PARTY)
            yield
    finally:
        tlog.set_verbosity(verbosity)
        if bars:
            tlog.enable_progress_bar()
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _load(
    model: str | Path | SentenceTransformer, info: dict[str, Any] | None, device: str | None
) -> tuple[SentenceTransformer, dict[str, Any]]:
    from xeval.models import check_device, load_model, model_info

    check_device(device)
    if isinstance(model, (str, Path)):
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


def index_root(cfg: RunConfig) -> Path | None:
    """Where HNSW indexes are stored and reused: the embedding cache folder (None: no cache)."""
    if not cfg.use_cache:
        return None
    return Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_root()


def _trec_tag(label: str) -> str:
    tag = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in label).strip("_")
    return tag or "xeval"


def _check(cfg: RunConfig, out: Path) -> None:
    if cfg.backend not in BACKENDS:
        raise XevalError(f"unknown search backend {cfg.backend!r}; choose from {list(BACKENDS)}")
    if cfg.k < 1:
        raise XevalError(f"k must be at least 1, got {cfg.k}")
    if cfg.trec not in TREC_FORMATS:
        raise XevalError(f"--trec must be one of {', '.join(TREC_FORMATS)}, got {cfg.trec!r}")
    if out.exists() and not cfg.overwrite:
        raise XevalError(f"{out} exists; pass --overwrite to replace it")


@dataclass
class _Encoded:
    """Normalised query and document vectors, the tables they belong to, their counts."""

    qvec: np.ndarray
    dvec: np.ndarray
    queries: pl.DataFrame
    corpus: pl.DataFrame
    stats: dict[str, dict[str, int]]
    cosine: bool
    seconds: float
    prompts: dict[str, str]
    precision: Precision
    threads: int
    device: str
    max_length: int | None


def bf16_caution(benchmark: str) -> str | None:
    """Why ``--dtype auto`` must stay fp32 on ``benchmark`` (None: no failed bf16 check).

    Reads the recorded bf16-vs-fp32 checks (``bf16_checks.json``): where bf16 moved some
    per-setting MRR@10 by more than the tolerance, ``auto`` does not pick bf16.
    """
    checks = json.loads((Path(__file__).with_name("bf16_checks.json")).read_text("utf-8"))
    rec = checks["benchmarks"].get(benchmark)
    if rec is None or rec["ok"]:
        return None
    return (
        f"bf16 moved {rec['settings_beyond_tolerance']} of {rec['settings']} per-setting "
        f"{rec['metric'].split()[0]} by more than {checks['tolerance']} on {benchmark} "
        f"(max {rec['max_abs_diff']}); pass --dtype bf16 to use it anyway"
    )


def _encode_all(
    st: SentenceTransformer,
    bench: Benchmark,
    settings: list[Setting],
    fingerprint: str,
    threads: int,
    cfg: RunConfig,
) -> _Encoded:
    """Encode every query and document the settings need, once, through the cache."""
    from xeval.precision import resolve_dtype

    precision = resolve_dtype(cfg.dtype, str(st.device), avoid_bf16=bf16_caution(bench.name))
    prompts = _prompts(st, cfg)
    queries, corpus = _select(bench, settings)
    root = Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_root()
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
    return _Encoded(
        qvec, dvec, queries, corpus, stats, cosine, time.perf_counter() - t0, prompts,
        precision, threads, str(st.device), max_length(st),
    )  # fmt: skip


def _select(bench: Benchmark, settings: list[Setting]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The queries (sorted by id) and the corpus rows (in benchmark order) the settings use."""
    qids = sorted({q for s in settings for q in s.query_ids})
    doc_langs = sorted({lang for s in settings for lang in s.doc_langs})
    corpus = bench.corpus.filter(pl.col("lang").is_in(doc_langs))
    queries = bench.queries.filter(pl.col("query_id").is_in(qids)).sort("query_id")
    return queries, corpus


def _prompts(st: SentenceTransformer, cfg: RunConfig) -> dict[str, str]:
    prompts = default_prompts(st)
    if cfg.query_prompt is not None:
        prompts["query"] = cfg.query_prompt
    if cfg.passage_prompt is not None:
        prompts["passage"] = cfg.passage_prompt
    return prompts


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
    _check(cfg, out)
    bench = load_benchmark(benchmark_dir)
    langs = list(cfg.languages) if cfg.languages else None
    settings = enumerate_settings(bench, cfg.kinds, langs)
    if not settings:
        raise XevalError("no setting has queries with relevant documents", file=benchmark_dir)
    dist = Dist.from_env()
    if dist.active:  # torchrun: this process is one rank of a sharded run
        from xeval.retrieval.sharded import run_sharded

        return run_sharded(model, bench, settings, out, cfg, info, dist)
    with quiet_libraries(not cfg.progress):
        threads = set_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        st, info = _load(model, info, cfg.device)
        enc = _encode_all(st, bench, settings, info["fingerprint"], threads, cfg)
        label = cfg.label or str(info.get("label") or info.get("name"))
        ctx = _SearchContext.build(enc, cfg, _trec_tag(label))
        with atomic_dir(out, overwrite=cfg.overwrite) as tmp:
            t1 = time.perf_counter()
            used = _search_all(settings, ctx, tmp)
            timings = {
                "encode": round(enc.seconds, 3),
                "search": round(time.perf_counter() - t1, 3),
            }
            meta = _run_meta(cfg, info, label, bench, settings, enc, used, timings)
            write_json(tmp / "run.json", meta)
    return RunResult(
        out, label, tuple(meta["settings"]), cfg.k, enc.precision.name, threads,
        enc.stats["queries"], enc.stats["passages"], used, timings,
    )  # fmt: skip


def _run_meta(
    cfg: RunConfig,
    info: dict[str, Any],
    label: str,
    bench: Benchmark,
    settings: list[Setting],
    enc: _Encoded,
    backends: dict[str, str],
    timings: dict[str, float],
) -> dict[str, Any]:
    """run.json: provenance, label, model, benchmark, encoding, search and outputs."""
    return provenance(
        label=label,
        model={key: info.get(key) for key in ("name", "label", "path", "fingerprint")},
        benchmark={
            "name": bench.name,
            "path": str(Path(bench.path).resolve()) if bench.path else None,
            "fingerprint": bench.fingerprint,
        },
        prompts=enc.prompts,
        backend=cfg.backend,
        backends=backends,
        k=cfg.k,
        settings=[s.name for s in settings],
        seed=cfg.seed,
        tie_rule=TIE_RULE,
        similarity="cosine" if enc.cosine else "dot",
        hnsw={"threshold": cfg.hnsw_threshold, **HnswIndex.describe(cfg.hnsw_params)},
        encoding={
            **enc.stats,
            "batch_size": cfg.batch_size,
            "device": enc.device,
            "threads": enc.threads,
            "max_length": enc.max_length,
            "cache": str(cfg.cache_dir or default_cache_root()) if cfg.use_cache else None,
            "dtype": "float32",  # stored vectors
            "precision": enc.precision.to_dict(),  # compute precision
        },
        outputs={"trec": cfg.trec, "ranks": "every setting"},
        timings_s=timings,
    )


class LangCodes:
    """Document languages as small integer codes: a setting's rows without string compares."""

    def __init__(self, langs: pl.Series) -> None:
        self.codes = langs.rank("dense").to_numpy().astype(np.int32)
        self.of = {x: i + 1 for i, x in enumerate(langs.unique().sort().to_list())}

    def isin(self, langs: tuple[str, ...]) -> np.ndarray:
        return np.isin(self.codes, [self.of[x] for x in langs if x in self.of])


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
    def build(cls, enc: _Encoded, cfg: RunConfig, tag: str) -> _SearchContext:
        q_row = {q: i for i, q in enumerate(enc.queries["query_id"].to_list())}
        dids = enc.corpus["doc_id"]
        tie = tie_ranks(dids.to_numpy().astype(object))
        return cls(enc.qvec, enc.dvec, q_row, dids, tie, LangCodes(enc.corpus["lang"]), cfg, tag)


@dataclass
class _SettingTables:
    """One setting's run and ranks, ready to write."""

    name: str
    run: pl.DataFrame
    ranks: pl.DataFrame


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
            pending.append(writer.submit(_write_setting, tables, tmp, ctx.cfg.trec, ctx.tag))
            while len(pending) > 2:  # bound the tables held in memory
                pending.pop(0).result()
        for f in pending:
            f.result()
    return used


def _search_setting(s: Setting, ctx: _SearchContext) -> tuple[str, _SettingTables]:
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
            ctx.hnsw[s.doc_langs] = stored_index(sub_d, index_root(cfg), cfg.hnsw_params)
        top = ctx.hnsw[s.doc_langs].search(sub_q, cfg.k, sub_tie)
        ranks = pair_ranks(sub_q, sub_d, sub_tie, pq, pd, memory_mb=cfg.memory_mb)
    else:
        used = "exact"
        top = exact_search(sub_q, sub_d, cfg.k, sub_tie, pairs=(pq, pd), memory_mb=cfg.memory_mb)
        ranks = top.pair_ranks
    rank_table = pl.DataFrame(
        {"query_id": rel["query_id"], "doc_id": rel["doc_id"], "rank": ranks}, schema=RANKS.columns
    ).sort("query_id", "rank")
    return used, _SettingTables(s.name, _run_table(top, qids, sub_ids), rank_table)


def _run_table(top: TopK, qids: list[str], dids: pl.Series) -> pl.DataFrame:
    nq, k = top.indices.shape
    return pl.DataFrame(
        {
            "query_id": pl.Series(qids, dtype=pl.String).gather(np.repeat(np.arange(nq), k)),
            "doc_id": dids.gather(top.indices.ravel()),
            "score": top.scores.ravel().astype(np.float64),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), nq),
        },
        schema=RUN.schema,
    )


def _write_setting(t: _SettingTables, tmp: Path, trec: str, tag: str) -> None:
    """runs/<name>.parquet, ranks/<name>.parquet and, if asked, runs/<name>.trec[.gz]."""
    RUN.write(t.run, tmp / "runs" / f"{t.name}.parquet")
    RANKS.write(t.ranks, tmp / "ranks" / f"{t.name}.parquet")
    if trec != "none":
        suffix = ".trec.gz" if trec == "gz" else ".trec"
        write_trec_run(t.run, tmp / "runs" / f"{t.name}{suffix}", tag, ranked=True)

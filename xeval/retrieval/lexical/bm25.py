"""BM25 as a first-class system: ``xeval run --model bm25`` writes a normal run directory.

Library: **bm25s** (Lù 2024). It builds the BM25 weight of every (term, document) pair
once into a sparse matrix, so scoring is a scipy-sparse product, with no JVM (Pyserini
needs Java and Lucene) and without rank_bm25's per-query Python loop over every document;
with PyStemmer it gives Snowball stemmers for ~30 languages, and it ships stop-word lists.

Indexes: one per distinct document pool of the settings (mono-X and cross-Y-X share the
index of corpus X; multi settings use the pooled corpus). Every document is analysed in
its own language and every query in its own language (:mod:`.analysis`), so the pooled
index mixes the terms of every language, as a multilingual Lucene index with per-field
analysers would. Cross-lingual settings run too: shared names, numbers and cognates are
the lexical baseline there.

Output (the run contract of :func:`xeval.retrieval.run_benchmark`)::

    run.json                 provenance: bm25s version, k1, b, method, analyzers per language
    runs/<setting>.parquet   query_id, doc_id, score (f64), rank (i32): top-k
    ranks/<setting>.parquet  query_id, doc_id, rank: exact rank of every relevant document
                             over the setting's whole corpus (every setting, not only multi)

Scores and ranks come from BM25's full score vector over the setting's corpus; ties are
broken by doc_id descending, so the ranks files agree with the runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from xeval.benchmark.schema import Benchmark, load_benchmark
from xeval.benchmark.settings import KINDS, Setting, enumerate_settings
from xeval.errors import XevalError
from xeval.provenance import atomic_dir, provenance, sha256_file, sha256_text, write_json
from xeval.retrieval.lexical.analysis import Analyzer, make_analyzer

TIE_RULE = "score descending, then doc_id descending"
RUN_SCHEMA = {"query_id": pl.String, "doc_id": pl.String, "score": pl.Float64, "rank": pl.Int32}
RANKS_SCHEMA = {"query_id": pl.String, "doc_id": pl.String, "rank": pl.Int32}
METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")


@dataclass(frozen=True)
class BM25Config:
    """BM25 parameters and run options. Defaults k1=0.9, b=0.4: Anserini/Pyserini's,
    the usual BEIR and MIRACL baseline."""

    k1: float = 0.9
    b: float = 0.4
    method: str = "lucene"
    k: int = 100
    stopwords: bool = True
    tokenizer: str | None = None  # subword tokenizer.json; default multilingual-e5-small's
    kinds: tuple[str, ...] = KINDS
    languages: tuple[str, ...] | None = None
    trec: bool = False  # also write runs/<setting>.trec
    label: str | None = None  # default: bm25, with any non-default parameters
    overwrite: bool = False
    progress: bool = True
    memory_mb: float = 128

    @property
    def system(self) -> str:
        """The system's name in reports: ``bm25`` or e.g. ``bm25(k1=1.2,b=0.75)``."""
        if self.label:
            return self.label
        base = BM25Config.__dataclass_fields__
        keys = ("k1", "b", "method", "stopwords")
        changed = [f"{n}={getattr(self, n)}" for n in keys if getattr(self, n) != base[n].default]
        return f"bm25({','.join(changed)})" if changed else "bm25"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise XevalError(f"unknown BM25 method {self.method!r}; choose from {list(METHODS)}")
        if self.k < 1:
            raise XevalError(f"k must be at least 1, got {self.k}")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise XevalError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")


def is_bm25(model: object) -> bool:
    """True for the model names that select BM25: ``bm25`` or ``bm25:k1=1.2,b=0.75``."""
    return isinstance(model, str) and (model == "bm25" or model.startswith("bm25:"))


def parse_bm25(spec: str, **options: Any) -> BM25Config:
    """``bm25`` or ``bm25:k1=1.2,b=0.75,method=robertson,stopwords=false`` -> config."""
    params: dict[str, Any] = dict(options)
    _, _, rest = spec.partition(":")
    allowed = {"k1": float, "b": float, "method": str, "stopwords": _bool, "tokenizer": str}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in allowed:
            raise XevalError(
                f"bad BM25 parameter {item!r} in {spec!r}; use e.g. bm25:k1=1.2,b=0.75 "
                f"(parameters: {', '.join(allowed)})"
            )
        try:
            params[key.strip()] = allowed[key.strip()](value.strip())
        except ValueError:
            raise XevalError(f"bad value for {key.strip()!r} in {spec!r}: {value!r}") from None
    return BM25Config(**params)


def _bool(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(value)


@dataclass
class BM25Index:
    """bm25s's sparse (document x term) weights over one corpus, doc ids in tie order."""

    weights: sp.csr_matrix  # terms x documents (float64), columns in tie order
    vocab: dict[str, int]
    doc_ids: np.ndarray  # doc ids of the columns: doc_id descending

    @classmethod
    def build(cls, doc_ids: list[str], tokens: list[list[str]], cfg: BM25Config) -> BM25Index:
        import bm25s

        if not doc_ids:
            raise XevalError("cannot index an empty corpus")
        order = np.argsort(np.asarray(doc_ids, dtype=object), kind="stable")[::-1]
        retriever = bm25s.BM25(k1=cfg.k1, b=cfg.b, method=cfg.method)
        retriever.index([tokens[i] for i in order], show_progress=False)
        s = retriever.scores
        csc = sp.csc_matrix(
            (s["data"], s["indices"], s["indptr"]), shape=(s["num_docs"], len(s["indptr"]) - 1)
        )
        ids = np.asarray(doc_ids, dtype=object)[order]
        vocab = {t: i for t, i in retriever.vocab_dict.items() if i < csc.shape[1]}  # no ""
        return cls(csc.T.tocsr().astype(np.float64), vocab, ids)

    def query_matrix(self, queries: list[list[str]]) -> sp.csr_matrix:
        """Term counts of each query over the index's vocabulary (unknown terms dropped)."""
        rows, cols = [], []
        for r, terms in enumerate(queries):
            ids = [self.vocab[t] for t in terms if t in self.vocab]
            rows.extend([r] * len(ids))
            cols.extend(ids)
        data = np.ones(len(rows), dtype=np.float64)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(queries), self.weights.shape[0]))

    def scores(self, queries: list[list[str]]) -> np.ndarray:
        """Dense BM25 scores (queries x documents, columns in tie order); a repeated query
        term counts once per occurrence, as in bm25s."""
        return np.asarray((self.query_matrix(queries) @ self.weights).todense())


def top_and_ranks(
    scores: np.ndarray, k: int, rel_rows: np.ndarray, rel_cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k columns per row and the exact 1-based rank of each (row, col) pair.

    Columns are in tie order (a lower column wins a tie): rank = 1 + #higher scores +
    #equal scores in a lower column.
    """
    n = scores.shape[1]
    k = min(k, n)
    kth = np.partition(scores, n - k, axis=1)[:, n - k]
    idx = np.empty((scores.shape[0], k), dtype=np.int64)
    for r in range(scores.shape[0]):
        row = scores[r]
        above = np.flatnonzero(row > kth[r])  # ascending column = tie order
        above = above[np.lexsort((above, -row[above]))]
        ties = np.flatnonzero(row == kth[r])[: k - len(above)]  # zero-score ties can be many
        idx[r, : len(above)], idx[r, len(above) :] = above, ties
    ranks = np.empty(len(rel_rows), dtype=np.int64)
    cols = np.arange(n)[None, :]
    for s0 in range(0, len(rel_rows), max(1, scores.shape[0])):  # bound the pairs x docs block
        rr, rc = rel_rows[s0 : s0 + scores.shape[0]], rel_cols[s0 : s0 + scores.shape[0]]
        rows = scores[rr]
        target = rows[np.arange(len(rr)), rc][:, None]
        higher = (rows > target).sum(axis=1)
        ranks[s0 : s0 + len(rr)] = 1 + higher + ((rows == target) & (cols < rc[:, None])).sum(1)
    return idx, np.take_along_axis(scores, idx, axis=1), ranks


@dataclass
class BM25Result:
    """What :func:`run_bm25` wrote."""

    out: Path
    settings: list[str]
    k: int
    n_indexes: int
    timings_s: dict[str, float]
    analyzers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> str:
        schemes = sorted({f"{lang}:{a['scheme']}" for lang, a in self.analyzers.items()})
        t = self.timings_s
        return (
            f"wrote {self.out}: BM25, {len(self.settings)} settings, k={self.k}, "
            f"{self.n_indexes} indexes; analysed in {t['analyze']:.1f} s, indexed in "
            f"{t['index']:.1f} s, searched in {t['search']:.1f} s\n"
            f"analyzers: {' '.join(schemes)}"
        )


def _analyze(frame: pl.DataFrame, analyzers: dict[str, Analyzer], id_col: str):
    return {
        i: analyzers[lang](text)
        for i, lang, text in zip(frame[id_col], frame["lang"], frame["text"], strict=True)
    }


def run_bm25(
    benchmark_dir: str | Path, out: str | Path, config: BM25Config | None = None
) -> BM25Result:
    """BM25 over every setting of ``benchmark_dir``; write a run directory to ``out``."""
    cfg = config or BM25Config()
    out = Path(out)
    if out.exists() and not cfg.overwrite:
        raise XevalError(f"{out} exists; pass --overwrite to replace it")
    bench = load_benchmark(benchmark_dir)
    settings = enumerate_settings(bench, cfg.kinds, cfg.languages)
    if not settings:
        raise XevalError("no setting has queries with relevant documents", file=benchmark_dir)
    analyzers = {lang: make_analyzer(lang, tokenizer=cfg.tokenizer, stopwords=cfg.stopwords)
                 for lang in bench.languages}  # fmt: skip
    t0 = time.perf_counter()
    qids = {q for s in settings for q in s.query_ids}
    q_tokens = _analyze(bench.queries.filter(pl.col("query_id").is_in(qids)), analyzers, "query_id")
    d_tokens = _analyze(bench.corpus, analyzers, "doc_id")
    timings = {"analyze": time.perf_counter() - t0, "index": 0.0, "search": 0.0}
    pools = {s.doc_langs for s in settings}
    with atomic_dir(out, overwrite=cfg.overwrite) as tmp:
        (tmp / "runs").mkdir()
        (tmp / "ranks").mkdir()
        bar = _progress(len(settings), cfg.progress)
        for pool in sorted(pools):
            t1 = time.perf_counter()
            docs = bench.corpus.filter(pl.col("lang").is_in(list(pool)))["doc_id"].to_list()
            index = BM25Index.build(docs, [d_tokens[d] for d in docs], cfg)
            timings["index"] += time.perf_counter() - t1
            t2 = time.perf_counter()
            for s in (s for s in settings if s.doc_langs == pool):
                _search_setting(s, index, q_tokens, cfg, tmp)
                bar.update(1)
            timings["search"] += time.perf_counter() - t2
        bar.close()
        described = {lang: a.describe() for lang, a in analyzers.items()}
        write_json(
            tmp / "run.json", _run_json(bench, benchmark_dir, settings, cfg, described, timings)
        )
    return BM25Result(out, [s.name for s in settings], cfg.k, len(pools), timings, described)


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="BM25 settings", unit="setting", disable=not enabled)


def _search_setting(
    s: Setting, index: BM25Index, q_tokens: dict[str, list[str]], cfg: BM25Config, tmp: Path
) -> None:
    qids = s.query_ids
    col = {d: i for i, d in enumerate(index.doc_ids)}
    row = {q: i for i, q in enumerate(qids)}
    rel = s.qrels.filter(pl.col("relevance") > 0).sort(
        pl.col("query_id").replace_strict(row, return_dtype=pl.Int64), "doc_id"
    )
    rel_q = np.fromiter((row[q] for q in rel["query_id"]), dtype=np.int64, count=rel.height)
    rel_c = np.fromiter((col[d] for d in rel["doc_id"]), dtype=np.int64, count=rel.height)
    n_docs = len(index.doc_ids)
    step = max(1, int(cfg.memory_mb * 2**20 / 8 / n_docs))
    tops, scores, ranks = [], [], np.empty(rel.height, dtype=np.int64)
    for start in range(0, len(qids), step):
        block = index.scores([q_tokens[q] for q in qids[start : start + step]])
        lo, hi = np.searchsorted(rel_q, [start, start + block.shape[0]])
        i, sc, rk = top_and_ranks(block, cfg.k, rel_q[lo:hi] - start, rel_c[lo:hi])
        tops.append(i)
        scores.append(sc)
        ranks[lo:hi] = rk
    idx, sc = np.concatenate(tops), np.concatenate(scores)
    k = idx.shape[1]
    run = pl.DataFrame(
        {
            "query_id": np.repeat(np.asarray(qids, dtype=object), k),
            "doc_id": index.doc_ids[idx.ravel()],
            "score": sc.ravel(),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(qids)),
        },
        schema=RUN_SCHEMA,
    )
    run.write_parquet(tmp / "runs" / f"{s.name}.parquet")
    if cfg.trec:
        run.select(
            "query_id", pl.lit("Q0"), "doc_id", "rank", "score", pl.lit(cfg.system)
        ).write_csv(
            tmp / "runs" / f"{s.name}.trec",
            separator=" ",
            include_header=False,
            quote_style="never",
        )
    pl.DataFrame(
        {"query_id": rel["query_id"], "doc_id": rel["doc_id"], "rank": ranks}, schema=RANKS_SCHEMA
    ).sort("query_id", "rank").write_parquet(tmp / "ranks" / f"{s.name}.parquet")


def _run_json(
    bench: Benchmark,
    benchmark_dir: str | Path,
    settings: list[Setting],
    cfg: BM25Config,
    analyzers: dict[str, dict[str, Any]],
    timings: dict[str, float],
) -> dict[str, Any]:
    libs = {name: _version(name) for name in ("bm25s", "PyStemmer", "tokenizers", "regex")}
    params = {"k1": cfg.k1, "b": cfg.b, "method": cfg.method, "stopwords": cfg.stopwords}
    tok_files = sorted({a["tokenizer"] for a in analyzers.values() if a["tokenizer"]})
    tok_sha = {p: sha256_file(p) for p in tok_files}
    fingerprint = sha256_text("bm25", repr(sorted(params.items())), repr(libs), repr(analyzers),
                              repr(sorted(tok_sha.values())))  # fmt: skip
    return provenance(
        label=cfg.system,
        model={"name": "bm25", "label": cfg.system, "path": None, "fingerprint": fingerprint},
        benchmark={
            "name": bench.name,
            "path": str(Path(benchmark_dir).resolve()),
            "fingerprint": bench.fingerprint,
        },
        prompts=None,
        backend="bm25s",
        k=cfg.k,
        settings=[s.name for s in settings],
        seed=0,
        tie_rule=TIE_RULE,
        exact_ranks=True,
        ranks="ranks/<setting>.parquet: exact rank of every relevant document, every setting",
        bm25={**params, "library": libs, "tokenizer_sha256": tok_sha},
        analyzers=analyzers,
        query_analysis="each query in its own language; each document in its own language",
        timings_s={k: round(v, 3) for k, v in timings.items()},
        config={f.name: getattr(cfg, f.name) for f in fields(cfg)},
    )


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def run_bm25_spec(
    model: str,
    benchmark_dir: str | Path,
    out: str | Path,
    *,
    kinds: Iterable[str] = KINDS,
    languages: Iterable[str] | None = None,
    **options: Any,
) -> BM25Result:
    """``xeval run --model bm25[:k1=..,b=..]``: parse the spec, then :func:`run_bm25`."""
    cfg = parse_bm25(
        model, kinds=tuple(kinds), languages=tuple(languages) if languages else None, **options
    )
    return run_bm25(benchmark_dir, out, cfg)

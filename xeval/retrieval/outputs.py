"""The run folder's contents: per-setting run and ranks tables, TREC files, ``run.json``.

Written by the one-process run and by rank 0 of a sharded run alike (see
:mod:`xeval.retrieval.run` for the layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from xeval.benchmark.schema import Benchmark
from xeval.benchmark.settings import Setting
from xeval.metrics.trec import write_trec_run
from xeval.provenance import provenance
from xeval.retrieval.search import HnswIndex, TopK
from xeval.tables import RANKS, RUN, TIE_RULE

if TYPE_CHECKING:
    from xeval.retrieval.config import RunConfig
    from xeval.retrieval.inputs import Encoded


@dataclass
class SettingTables:
    """One setting's run and ranks, ready to write."""

    name: str
    run: pl.DataFrame
    ranks: pl.DataFrame


def trec_tag(label: str) -> str:
    """The run's label as a TREC run tag (no spaces or odd characters)."""
    tag = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in label).strip("_")
    return tag or "xeval"


def run_table(top: TopK, qids: list[str], dids: pl.Series) -> pl.DataFrame:
    """The RUN table of a top-k: ``top.indices`` index ``dids``, one row of it per query."""
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


def rank_table(rel: pl.DataFrame, ranks: np.ndarray) -> pl.DataFrame:
    """The RANKS table: each relevant (query, doc) pair of ``rel`` with its exact rank."""
    return pl.DataFrame(
        {"query_id": rel["query_id"], "doc_id": rel["doc_id"], "rank": ranks}, schema=RANKS.columns
    ).sort("query_id", "rank")


def write_setting(t: SettingTables, tmp: Path, trec: str, tag: str) -> None:
    """runs/<name>.parquet, ranks/<name>.parquet and, if asked, runs/<name>.trec[.gz]."""
    RUN.write(t.run, tmp / "runs" / f"{t.name}.parquet")
    RANKS.write(t.ranks, tmp / "ranks" / f"{t.name}.parquet")
    if trec != "none":
        suffix = ".trec.gz" if trec == "gz" else ".trec"
        write_trec_run(t.run, tmp / "runs" / f"{t.name}{suffix}", tag, ranked=True)


def run_meta(
    cfg: RunConfig,
    info: dict[str, Any],
    label: str,
    bench: Benchmark,
    settings: list[Setting],
    enc: Encoded,
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
            "cache": str(cfg.cache_root()) if cfg.use_cache else None,
            "dtype": "float32",  # stored vectors
            "precision": enc.precision.to_dict(),  # compute precision
        },
        outputs={"trec": cfg.trec, "ranks": "every setting"},
        timings_s=timings,
    )

"""What a run prepares before it searches: the model, its precision and prompts, the
queries and corpus rows its settings use, and their vectors.

Shared by the one-process run (:mod:`xeval.retrieval.run`) and the sharded one
(:mod:`xeval.retrieval.sharded`), so both load, choose a precision and prompt alike.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from xeval.benchmark.schema import Benchmark
from xeval.benchmark.settings import Setting
from xeval.retrieval.encode import default_prompts, fingerprint_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from xeval.precision import Precision
    from xeval.retrieval.config import RunConfig

THIRD_PARTY = r"(transformers|sentence_transformers|torch|tqdm|huggingface_hub|usearch)"


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


def load_encoder(
    model: str | Path | SentenceTransformer, info: dict[str, Any] | None, device: str | None
) -> tuple[SentenceTransformer, dict[str, Any]]:
    """The model to encode with and its name, label, path and fingerprint."""
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


def run_precision(cfg: RunConfig, st: SentenceTransformer, bench: Benchmark) -> Precision:
    """``cfg.dtype`` on the model's device; ``auto`` stays fp32 where bf16 failed its check."""
    from xeval.precision import resolve_dtype

    return resolve_dtype(cfg.dtype, str(st.device), avoid_bf16=bf16_caution(bench.name))


def run_prompts(st: SentenceTransformer, cfg: RunConfig) -> dict[str, str]:
    """The query and passage prompts: the model's own unless ``cfg`` names others."""
    prompts = default_prompts(st)
    if cfg.query_prompt is not None:
        prompts["query"] = cfg.query_prompt
    if cfg.passage_prompt is not None:
        prompts["passage"] = cfg.passage_prompt
    return prompts


def select(bench: Benchmark, settings: list[Setting]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The queries (sorted by id) and the corpus rows (in benchmark order) the settings use."""
    qids = sorted({q for s in settings for q in s.query_ids})
    doc_langs = sorted({lang for s in settings for lang in s.doc_langs})
    corpus = bench.corpus.filter(pl.col("lang").is_in(doc_langs))
    queries = bench.queries.filter(pl.col("query_id").is_in(qids)).sort("query_id")
    return queries, corpus


@dataclass
class Encoded:
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


class LangCodes:
    """Document languages as small integer codes: a setting's rows without string compares."""

    def __init__(self, langs: pl.Series) -> None:
        self.codes = langs.rank("dense").to_numpy().astype(np.int32)
        self.of = {x: i + 1 for i, x in enumerate(langs.unique().sort().to_list())}

    def isin(self, langs: tuple[str, ...]) -> np.ndarray:
        return np.isin(self.codes, [self.of[x] for x in langs if x in self.of])

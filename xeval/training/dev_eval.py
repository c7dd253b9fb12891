"""Evaluation during training: MRR@10 on a held-out benchmark, scored by xeval's metrics.

Exact cosine search over each mono / cross setting of a (query-subsampled) benchmark; the
top 10 documents per query form a run table (``setting, query_id, doc_id, score``) that
:func:`xeval.metrics.score` ranks under the project's tie rule, exactly as ``xeval
evaluate`` does. A :class:`DevPoint` per evaluation makes the dev curve (step -> MRR@10).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from xeval.errors import XevalError
from xeval.precision import Precision

METRIC = "MRR@10"
_TOP = 10


@dataclass(frozen=True)
class DevPoint:
    """One point of the dev curve: MRR@10 per setting kind after ``step`` steps."""

    step: int
    mrr10: dict[str, float]  # kind -> mean over the kind's settings
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The card's record: ``{"step", "MRR@10/<kind>", ..., "seconds"}``."""
        return {
            "step": self.step,
            **{f"{METRIC}/{k}": v for k, v in self.mrr10.items()},
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, rec: dict[str, Any]) -> DevPoint:
        """The inverse of :meth:`to_dict`."""
        prefix = f"{METRIC}/"
        mrr = {k.removeprefix(prefix): float(v) for k, v in rec.items() if k.startswith(prefix)}
        return cls(int(rec["step"]), mrr, float(rec.get("seconds", 0.0)))


class DevEval:
    """MRR@10 of a model on a benchmark's ``kinds`` settings (seeded query subsample)."""

    def __init__(
        self,
        bench_dir: str | Path,
        *,
        kinds: tuple[str, ...] = ("mono", "cross"),
        max_queries: int | None = 200,
        prompts: tuple[str, str] = ("query: ", "passage: "),
        seed: int = 0,
        precision: Precision | None = None,
    ) -> None:
        from xeval.benchmark.registry import subsample_queries
        from xeval.benchmark.schema import load_benchmark
        from xeval.benchmark.settings import enumerate_settings

        bench = load_benchmark(bench_dir)
        if max_queries:
            bench = subsample_queries(bench, max_queries, seed)
        self.settings = enumerate_settings(bench, kinds)
        if not self.settings:
            raise XevalError(f"benchmark has no {'/'.join(kinds)} settings", file=bench_dir)
        qids = sorted({q for s in self.settings for q in s.query_ids})
        langs = sorted({lang for s in self.settings for lang in s.doc_langs})
        self.queries = bench.queries.filter(pl.col("query_id").is_in(qids))
        self.docs = bench.corpus.filter(pl.col("lang").is_in(langs)).sort("doc_id", descending=True)
        self.qrels = pl.concat(
            [
                s.qrels.select("query_id", "doc_id", "relevance").with_columns(
                    setting=pl.lit(s.name)
                )
                for s in self.settings
            ]
        )
        self.prompts = prompts
        self.precision = precision
        self.path = str(bench_dir)

    def _encode(self, model: Any) -> tuple[Any, Any]:
        import torch

        was_training = model.training
        enc = dict(normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False)
        cast = self.precision.autocast() if self.precision else contextlib.nullcontext()
        with torch.no_grad(), cast:
            qe = model.encode(self.queries["text"].to_list(), prompt=self.prompts[0], **enc)
            de = model.encode(self.docs["text"].to_list(), prompt=self.prompts[1], **enc)
        if was_training:
            model.train()
        return qe.float(), de.float()

    def run_table(self, model: Any) -> pl.DataFrame:
        """The top 10 per setting and query (``setting, query_id, doc_id, score``).

        Documents are held in doc_id-descending order and sorted stably by score, so the
        cut-off itself follows the tie rule; the metric engine then ranks the run.
        """
        import torch

        qe, de = self._encode(model)
        qrow = {q: i for i, q in enumerate(self.queries["query_id"].to_list())}
        doc_ids = self.docs["doc_id"].to_list()
        parts = []
        for s in self.settings:
            cols = self.docs["lang"].is_in(list(s.doc_langs)).arg_true().to_list()
            qs = s.query_ids
            scores = qe[[qrow[q] for q in qs]] @ de[cols].T
            k = min(_TOP, len(cols))
            top = torch.sort(scores, dim=1, descending=True, stable=True)
            idx, val = top.indices[:, :k].tolist(), top.values[:, :k].tolist()
            parts.append(
                pl.DataFrame(
                    {
                        "setting": s.name,
                        "query_id": [q for q in qs for _ in range(k)],
                        "doc_id": [doc_ids[cols[j]] for row in idx for j in row],
                        "score": [float(v) for row in val for v in row],
                    },
                    schema={
                        "setting": pl.String,
                        "query_id": pl.String,
                        "doc_id": pl.String,
                        "score": pl.Float64,
                    },
                )
            )
        return pl.concat(parts)

    def __call__(self, model: Any, step: int = 0) -> DevPoint:
        from xeval.metrics import score

        t = time.perf_counter()
        per_query = score(self.run_table(model), self.qrels, METRIC, keys=("setting", "query_id"))
        kind = pl.DataFrame(
            {"setting": [s.name for s in self.settings], "kind": [s.kind for s in self.settings]}
        )
        per_kind = (
            per_query.group_by("setting")
            .agg(pl.col("value").mean())
            .join(kind, on="setting")
            .group_by("kind", maintain_order=True)
            .agg(pl.col("value").mean())
        )
        values = dict(zip(per_kind["kind"].to_list(), per_kind["value"].to_list(), strict=True))
        ordered = {k: float(values[k]) for k in dict.fromkeys(s.kind for s in self.settings)}
        return DevPoint(step, ordered, round(time.perf_counter() - t, 2))

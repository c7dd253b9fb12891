"""Metric names, their parameters and their exact definitions (one registry for all engines).

Notation for one query: ``rel`` = its relevant documents (qrels relevance > 0), ``|rel|``
their number, ``rank(d)`` the 1-based position of ``d`` in the run ordered by the
**tie rule** (score descending, then doc_id descending, as trec_eval does), and
``hits`` the relevant documents the run retrieved.

- ``MRR@k``   1 / (rank of the first relevant document) if it is <= k, else 0
  (``MRR``: no cut-off; trec_eval ``recip_rank``).
- ``R@k``     |rel ∩ top-k| / |rel|  (trec_eval ``recall_k``).
- ``P@k``     |rel ∩ top-k| / k  (trec_eval ``P_k``; a run shorter than k still divides by k).
- ``nDCG@k``  DCG@k / IDCG@k with gain = relevance and discount log2(rank + 1); IDCG ranks the
  qrels' relevant documents by relevance (trec_eval ``ndcg_cut_k``; ``nDCG``: no cut-off).
- ``MAP``     AP = Σ_{d ∈ hits} (hits at or above rank(d)) / rank(d), divided by |rel|
  (trec_eval ``map``; only retrieved documents add to the sum).
- ``MAP@k``   the same sum over hits ranked <= k, divided by **min(|rel|, k)** (XTREME-R's
  mAP@20). trec_eval ``map_cut_k`` and ranx ``map@k`` divide by |rel| instead; the two agree
  whenever |rel| <= k, and xeval's value is theirs × |rel| / min(|rel|, k) otherwise.
- ``LB``      language bias (max rank distance), multilingual settings only: rank of the worst
  ranked relevant item minus rank of the best ranked one, both over the whole pooled corpus
  (exact ranks from ``ranks/<setting>.parquet``). Queries with fewer than 2 relevant items
  have no distance and are **excluded** (not counted as 0). Lower is better.

A query with no relevant document scores 0 on every ranking metric. Queries of the qrels that
the run lacks score 0 and are counted as missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from xeval.errors import XevalError

#: family -> (display name, needs a cut-off, description)
FAMILIES: dict[str, tuple[str, bool, str]] = {
    "mrr": ("MRR", False, "reciprocal rank of the first relevant document"),
    "recall": ("R", True, "|rel ∩ top-k| / |rel|"),
    "precision": ("P", True, "|rel ∩ top-k| / k"),
    "ndcg": ("nDCG", False, "nDCG, gain = relevance, discount log2(rank + 1) (trec_eval)"),
    "map": ("MAP", False, "average precision; @k divides by min(|rel|, k) (XTREME-R)"),
    "lb": ("LB", False, "language bias: worst minus best rank of the relevant items (multi)"),
}

_ALIASES = {
    "mrr": "mrr",
    "rr": "mrr",
    "recip_rank": "mrr",
    "r": "recall",
    "recall": "recall",
    "p": "precision",
    "precision": "precision",
    "ndcg": "ndcg",
    "map": "map",
    "ap": "map",
    "lb": "lb",
    "language_bias": "lb",
}

DEFAULT_METRICS = ("MRR@10", "R@1", "R@5", "R@10", "R@100", "nDCG@10", "MAP", "MAP@20", "LB")


@dataclass(frozen=True, order=True)
class Metric:
    """One metric: a family and an optional cut-off ``k``."""

    family: str
    k: int | None = None

    @property
    def name(self) -> str:
        """Canonical name, e.g. ``MRR@10``, ``MAP``, ``LB``."""
        base = FAMILIES[self.family][0]
        return f"{base}@{self.k}" if self.k is not None else base

    @property
    def description(self) -> str:
        return FAMILIES[self.family][2]

    def __str__(self) -> str:
        return self.name


_PATTERN = re.compile(r"^\s*([A-Za-z_]+)\s*(?:@\s*(\d+))?\s*$")


def parse_metric(name: str | Metric) -> Metric:
    """Parse ``MRR@10``, ``R@100``, ``nDCG@10``, ``MAP``, ``MAP@20``, ``P@5``, ``LB``.

    Case-insensitive; ``recall@k``, ``precision@k``, ``recip_rank`` are accepted too.
    """
    if isinstance(name, Metric):
        return name
    m = _PATTERN.match(str(name))
    family = _ALIASES.get(m.group(1).lower()) if m else None
    if m is None or family is None:
        known = ", ".join((*DEFAULT_METRICS, "P@k", "MRR", "nDCG"))
        raise XevalError(f"unknown metric {name!r}; known: {known}")
    k = int(m.group(2)) if m.group(2) is not None else None
    if k is not None and k < 1:
        raise XevalError(f"metric {name!r}: the cut-off must be >= 1")
    if FAMILIES[family][1] and k is None:
        raise XevalError(f"metric {name!r} needs a cut-off, e.g. {FAMILIES[family][0]}@10")
    if family == "lb" and k is not None:
        raise XevalError(f"metric {name!r}: language bias takes no cut-off (use LB)")
    return Metric(family, k)


def parse_metrics(names: str | Iterable[str | Metric] | None) -> list[Metric]:
    """Parse a list (or a comma/space separated string) of metric names; drop duplicates.

    ``None`` gives :data:`DEFAULT_METRICS`.
    """
    if names is None:
        names = DEFAULT_METRICS
    if isinstance(names, str):
        names = [names]
    out: list[Metric] = []
    for item in names:
        parts = re.split(r"[,\s]+", item.strip()) if isinstance(item, str) else [item]
        for part in parts:
            if part == "":
                continue
            metric = parse_metric(part)
            if metric not in out:
                out.append(metric)
    if not out:
        raise XevalError("no metric given")
    return out

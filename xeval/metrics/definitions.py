"""The metric registry: one :class:`MetricSpec` entry per metric family, everything else derives.

A new metric is one entry in :data:`REGISTRY` (plus its test): its name and aliases, whether it
takes a cut-off, whether lower is better, its display format, its Polars expression, its ranx
and trec_eval names, whether it needs exact ranks and its definition with a citation. The
engines, the CLI help, ``xeval compare`` (``get(name).lower_is_better``) and the formatters read
the registry; nothing else names a metric.

Notation for one query: ``rel`` = its relevant documents (qrels relevance > 0), ``|rel|``
their number, ``rank(d)`` the 1-based position of ``d`` in the ranking under the **tie rule**
(score descending, then doc_id descending, as trec_eval does), ``hits`` the relevant documents
that have a rank. Every expression aggregates the *hits table* of one query (one row per
ranked relevant document: ``rank``, ``hit_no`` = its position among the hits, ``n_rel``,
``relevance``, ``idcg_<k>``, and for language measures ``doc_lang`` / ``query_lang``).

**Where ranks come from.** The hits of a *run* are the relevant documents it retrieved, at
their run positions; the hits of *exact ranks* (``ranks/<setting>.parquet``) are every relevant
document at its exact rank over the setting's whole corpus. A metric that looks below the
run's cut-off (``exact="always"``, or ``exact="deep"`` with no cut-off or one deeper than the
run) is computed from exact ranks; without them it is unavailable, never computed on the
truncated run.

A query with no relevant document scores 0 on every ranking metric. Queries of the qrels that
the run lacks score 0 and are counted as missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import polars as pl

from xeval.errors import XevalError

_rank = pl.col("rank")


def _within(k: int | None) -> pl.Expr:
    return _rank <= k if k is not None else pl.lit(True)


def _mrr(k: int | None) -> pl.Expr:
    return (1.0 / _rank.filter(_within(k)).min()).fill_null(0.0)


def _recall(k: int | None) -> pl.Expr:
    return _within(k).sum() / pl.col("n_rel").first()


def _precision(k: int | None) -> pl.Expr:
    return _within(k).sum() / float(k)  # type: ignore[arg-type]


def _ap(k: int | None) -> pl.Expr:
    denom = pl.col("n_rel").first()
    if k is not None:
        denom = pl.min_horizontal(denom, pl.lit(k))
    return (pl.col("hit_no") / _rank).filter(_within(k)).sum() / denom


def _ndcg(k: int | None) -> pl.Expr:
    dcg = (pl.col("relevance") / (_rank + 1).log(2)).filter(_within(k)).sum()
    return dcg / pl.col(f"idcg_{k or 0}").first()


def _lb(_k: int | None) -> pl.Expr:
    spread = (_rank.max() - _rank.min()).cast(pl.Float64)
    return pl.when(pl.len() >= 2).then(spread).otherwise(None)


def _qlp(_k: int | None) -> pl.Expr:
    best = pl.col("doc_lang").sort_by(_rank).first()
    return (best == pl.col("query_lang").first()).cast(pl.Float64)


@dataclass(frozen=True)
class MetricSpec:
    """One metric family (a registry entry).

    ``cutoff``: ``"required"``, ``"optional"`` or ``"none"``. ``exact``: ``"always"`` (needs
    ranks over the whole corpus), ``"deep"`` (when it has no cut-off or one deeper than the
    run) or ``"never"`` (defined on the run as given). ``empty``: the value of a query without
    hits (None: the query is excluded). ``ranx`` / ``trec``: names with ``{k}`` for the cut-off
    (None: the tool has no such measure).
    """

    key: str
    display: str
    aliases: tuple[str, ...]
    cutoff: str
    lower_is_better: bool
    fmt: str
    expr: Callable[[int | None], pl.Expr]
    ranx: tuple[str | None, str | None]  # (no cut-off, with cut-off)
    trec: tuple[str | None, str | None]
    exact: str
    doc: str
    multi_only: bool = False
    empty: float | None = 0.0
    #: closed range of a per-query value (rank distances are unbounded above)
    value_range: tuple[float, float] = (0.0, 1.0)


REGISTRY: dict[str, MetricSpec] = {
    s.key: s
    for s in (
        MetricSpec(
            "mrr", "MRR", ("rr", "recip_rank"), "optional", False, "{:.4f}", _mrr,
            ("mrr", "mrr@{k}"), ("recip_rank", None), "deep",
            "Reciprocal rank: 1 / rank of the first relevant document if <= k, else 0 "
            "(Voorhees, TREC-8 QA, 1999; trec_eval recip_rank).",
        ),
        MetricSpec(
            "recall", "R", ("r",), "required", False, "{:.4f}", _recall,
            (None, "recall@{k}"), (None, "recall_{k}"), "deep",
            "Recall@k = |rel ∩ top-k| / |rel| (trec_eval recall_k).",
        ),
        MetricSpec(
            "precision", "P", ("p",), "required", False, "{:.4f}", _precision,
            (None, "precision@{k}"), (None, "P_{k}"), "deep",
            "Precision@k = |rel ∩ top-k| / k; a run shorter than k still divides by k "
            "(trec_eval P_k).",
        ),
        MetricSpec(
            "ndcg", "nDCG", (), "optional", False, "{:.4f}", _ndcg,
            ("ndcg", "ndcg@{k}"), ("ndcg", "ndcg_cut_{k}"), "deep",
            "nDCG@k = DCG@k / IDCG@k, gain = relevance, discount log2(rank + 1); IDCG ranks "
            "the qrels' relevant documents by relevance (Järvelin & Kekäläinen 2002; "
            "trec_eval ndcg_cut_k).",
        ),
        MetricSpec(
            "map", "MAP", ("ap", "mAP"), "optional", False, "{:.4f}", _ap,
            ("map", "map@{k}"), ("map", "map_cut_{k}"), "deep",
            "Average precision over the whole corpus (LaReQA's mAP, Roy et al. 2020): "
            "Σ_{d ∈ rel} (relevant at or above rank(d)) / rank(d), divided by |rel|, from exact "
            "ranks. MAP@k sums over ranks <= k and divides by min(|rel|, k) (XTREME-R's mAP@20; "
            "trec_eval map_cut_k and ranx map@k divide by |rel|: xeval's value is theirs × "
            "|rel| / min(|rel|, k)).",
        ),
        MetricSpec(
            "map_trunc", "MAP_trunc", ("map@run", "map_run"), "none", False, "{:.4f}", _ap,
            ("map", None), ("map", None), "never",
            "trec_eval's map on the run as given: relevant documents below the run's cut-off "
            "add 0 (a lower bound of MAP; biased low in multilingual settings).",
        ),
        MetricSpec(
            "lb", "LB", ("language_bias",), "none", True, "{:.1f}", _lb,
            (None, None), (None, None), "always",
            "Language bias, max rank distance (Roy et al. 2020, LaReQA §5): rank of the "
            "worst-ranked minus rank of the best-ranked relevant item over the whole pooled "
            "corpus; queries with < 2 relevant items are excluded. Multi settings only.",
            multi_only=True,
            empty=None,
            value_range=(0.0, math.inf),
        ),
        MetricSpec(
            "qlp", "QLP", ("lpr", "query_language_preference"), "none", False, "{:.4f}",
            _qlp, (None, None), (None, None), "always",
            "Query-language preference rate: the share of queries whose best-ranked relevant "
            "item (exact rank over the pooled corpus) is the one in the query's language. "
            "With one parallel relevant item per language, a language-neutral retriever "
            "scores 1/|languages|; higher means a stronger pull to the query language. After "
            "the Language Preference Rate of MLAIRE (Jang et al., arXiv 2605.07249), applied "
            "to the relevant items only. Multi settings only; neither lower nor higher is "
            "better in itself.",
            multi_only=True,
            empty=None,
        ),
    )
}  # fmt: skip

_ALIASES = {
    name.lower(): s.key
    for s in REGISTRY.values()
    for name in (s.key, s.display, *s.aliases, *(["recall"] if s.key == "recall" else []),
                 *(["precision"] if s.key == "precision" else []))
}  # fmt: skip

DEFAULT_METRICS = (
    "MRR@10", "R@1", "R@5", "R@10", "R@100", "nDCG@10", "MAP", "MAP@20", "LB", "QLP",
)  # fmt: skip


@dataclass(frozen=True, order=True)
class Metric:
    """One metric: a registry family and an optional cut-off ``k``."""

    family: str
    k: int | None = None

    @property
    def spec(self) -> MetricSpec:
        return REGISTRY[self.family]

    @property
    def name(self) -> str:
        """Canonical name, e.g. ``MRR@10``, ``MAP``, ``LB``."""
        base = self.spec.display
        return f"{base}@{self.k}" if self.k is not None else base

    @property
    def description(self) -> str:
        return self.spec.doc

    @property
    def lower_is_better(self) -> bool:
        return self.spec.lower_is_better

    @property
    def multi_only(self) -> bool:
        return self.spec.multi_only

    @property
    def value_range(self) -> tuple[float, float]:
        """Closed range of a per-query value (a value outside it is a damaged input)."""
        return self.spec.value_range

    def fmt(self, value: float | None, *, sign: bool = False) -> str:
        """The value (with ``sign``: a difference) as tables print it; ``—`` when unavailable."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        return self.spec.fmt.replace("{:", "{:+" if sign else "{:").format(value)

    def expr(self) -> pl.Expr:
        """The per-query aggregation over a hits table (see the module notes)."""
        return self.spec.expr(self.k)

    def ranx_name(self) -> str | None:
        return _tool_name(self.spec.ranx, self.k)

    def trec_name(self) -> str | None:
        return _tool_name(self.spec.trec, self.k)

    def needs_exact(self, depth: int | None) -> bool:
        """Whether the value depends on ranks below ``depth`` (None: the run is complete)."""
        if self.spec.exact == "always":
            return True
        if self.spec.exact == "never" or depth is None:
            return False
        return self.k is None or self.k > depth

    def __str__(self) -> str:
        return self.name


def _tool_name(names: tuple[str | None, str | None], k: int | None) -> str | None:
    name = names[1] if k is not None else names[0]
    return name.format(k=k) if name else None


_PATTERN = re.compile(r"^\s*([A-Za-z_]+)\s*(?:@\s*(\d+|run))?\s*$")


def parse_metric(name: str | Metric) -> Metric:
    """Parse ``MRR@10``, ``R@100``, ``nDCG@10``, ``MAP``, ``MAP@20``, ``MAP_trunc``, ``LB``, ``QLP``.

    Case-insensitive; every alias of the registry is accepted (``recall@k``, ``recip_rank``...).
    """
    if isinstance(name, Metric):
        return name
    m = _PATTERN.match(str(name))
    if m is not None and m.group(2) == "run":
        family = _ALIASES.get(f"{m.group(1).lower()}@run")
        k_text = None
    else:
        family = _ALIASES.get(m.group(1).lower()) if m else None
        k_text = m.group(2) if m else None
    if m is None or family is None:
        raise XevalError(f"unknown metric {name!r}; known: {metric_help()}")
    spec = REGISTRY[family]
    k = int(k_text) if k_text is not None else None
    if k is not None and k < 1:
        raise XevalError(f"metric {name!r}: the cut-off must be >= 1")
    if spec.cutoff == "required" and k is None:
        raise XevalError(f"metric {name!r} needs a cut-off, e.g. {spec.display}@10")
    if spec.cutoff == "none" and k is not None:
        raise XevalError(f"metric {name!r} takes no cut-off (use {spec.display})")
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


def get(name: str | Metric) -> Metric:
    """The registry's metric for ``name`` (``get("LB").lower_is_better``, ``get("MAP").fmt(x)``)."""
    return parse_metric(name)


def metric_help() -> str:
    """One line naming every family with its cut-off form (for the CLI help)."""
    forms = {"required": "{}@k", "optional": "{}[@k]", "none": "{}"}
    return ", ".join(forms[s.cutoff].format(s.display) for s in REGISTRY.values())

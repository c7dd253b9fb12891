"""The metric registry: every entry parses, prints, names its tool measures and agrees with
a brute-force computation of its definition."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from xeval.errors import XevalError
from xeval.metrics import REGISTRY, get, metric_help, parse_metric, score


@pytest.mark.parametrize("key", sorted(REGISTRY))
def test_round_trip(key: str) -> None:
    spec = REGISTRY[key]
    k = 5 if spec.cutoff != "none" else None
    m = parse_metric(f"{spec.display}@{k}" if k else spec.display)
    assert m.family == key and parse_metric(m.name) == m and get(m.name) == m
    for alias in spec.aliases:
        if alias.endswith("@run"):
            assert parse_metric(alias) == m
        else:
            assert parse_metric(f"{alias}@{k}" if k else alias) == m
    assert m.fmt(None) == "—" and m.fmt(0.5) == spec.fmt.format(0.5)
    assert spec.doc and spec.display in metric_help()
    if spec.cutoff == "required":
        with pytest.raises(XevalError, match="needs a cut-off"):
            parse_metric(spec.display)
    if spec.cutoff == "none":
        with pytest.raises(XevalError, match="takes no cut-off"):
            parse_metric(f"{spec.display}@3")


def test_lookup_for_compare_and_tools() -> None:
    assert get("LB").lower_is_better and not get("MRR@10").lower_is_better
    assert get("map").name == "MAP" and get("map@run").name == "MAP_trunc"
    assert get("MAP").fmt(0.25) == "0.2500" and get("LB").fmt(12.345) == "12.3"
    assert get("R@100").ranx_name() == "recall@100" and get("R@100").trec_name() == "recall_100"
    assert get("nDCG@10").trec_name() == "ndcg_cut_10" and get("MAP@20").ranx_name() == "map@20"
    assert get("LB").ranx_name() is None and get("QLP").multi_only
    # which metrics look below a run of depth 10
    assert [m for m in ("MAP", "MAP@20", "MAP@10", "R@10", "MAP_trunc", "LB")
            if get(m).needs_exact(10)] == ["MAP", "MAP@20", "LB"]  # fmt: skip
    assert not get("MAP").needs_exact(None)  # a complete run is its own exact ranking


def _brute(ranking: list[str], rel: dict[str, int], name: str) -> float:
    m = get(name)
    k = m.k or len(ranking)
    ranks = [i + 1 for i, d in enumerate(ranking) if rel.get(d, 0) > 0]
    n_rel = sum(1 for v in rel.values() if v > 0)
    top = [r for r in ranks if r <= k]
    if m.family == "mrr":
        return 1 / top[0] if top else 0.0
    if m.family == "recall":
        return len(top) / n_rel
    if m.family == "precision":
        return len(top) / k
    if m.family in ("map", "map_trunc"):
        denom = min(n_rel, m.k) if m.k else n_rel
        return sum((j + 1) / r for j, r in enumerate(top)) / denom
    dcg = sum(rel[ranking[r - 1]] / math.log2(r + 1) for r in top)
    ideal = sorted((v for v in rel.values() if v > 0), reverse=True)[:k]
    return dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))


def test_every_ranking_metric_matches_its_definition() -> None:
    rng = np.random.default_rng(7)
    docs = [f"d{i:02d}" for i in range(30)]
    rows, qrels = [], []
    for q in range(12):
        scores = rng.integers(0, 6, len(docs)) / 6  # many ties: the tie rule decides
        rows += [(f"q{q}", d, float(s)) for d, s in zip(docs, scores, strict=True)]
        for d in rng.choice(docs, int(rng.integers(1, 8)), replace=False):
            qrels.append((f"q{q}", str(d), int(rng.integers(1, 3))))
    run = pl.DataFrame(rows, schema=["query_id", "doc_id", "score"], orient="row")
    qr = pl.DataFrame(qrels, schema=["query_id", "doc_id", "relevance"], orient="row")
    names = ["MRR", "MRR@3", "R@5", "P@5", "nDCG", "nDCG@5", "MAP", "MAP@3", "MAP_trunc"]
    got = {(q, m): v for q, m, v in score(run, qr, names).iter_rows()}
    for (q,), sub in run.group_by("query_id"):
        ranking = [d for _, d, _ in sorted(sub.rows(), key=lambda r: (r[2], r[1]), reverse=True)]
        rel = {d: r for qq, d, r in qrels if qq == q}
        for name in names:
            assert got[(q, name)] == pytest.approx(_brute(ranking, rel, name)), (q, name)

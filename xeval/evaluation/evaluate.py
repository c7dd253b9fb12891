"""Score a run directory: every setting's run against its qrels, exact-rank metrics from ranks.

Reads (the run contract)::

    RUNDIR/run.json                 benchmark name, path, fingerprint; settings; model;
                                    "exact_ranks": false for runs without ranks/ (external, fused)
    RUNDIR/runs/<setting>.parquet   query_id, doc_id, score[, rank]  (rank is ignored)
    RUNDIR/ranks/<setting>.parquet  query_id, doc_id, rank: exact rank of every relevant item
                                    over the setting's whole corpus (tie rule)

Writes ``RUNDIR/eval/`` atomically (layout: :mod:`xeval.evaluation.report`).

Which ranks a metric uses: a metric whose value depends on documents below the run's cut-off
(``MAP``, ``nDCG``, ``MRR`` without cut-off; ``R@k``, ``MAP@k``... with k deeper than the run;
``LB`` and ``QLP`` always) is computed from the exact ranks; a run that lists every document
of its setting is its own exact ranking. Without exact ranks such a metric is **unavailable**
(null, listed in the notes), never computed on the truncated run. ``MAP_trunc`` is trec_eval's
map on the run as given. ``eval.json`` records the source of every metric per kind.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import polars as pl

from xeval.benchmark.schema import Benchmark, load_benchmark
from xeval.benchmark.settings import Setting, enumerate_settings
from xeval.errors import XevalError
from xeval.evaluation.report import (
    EvaluationResult,
    SettingScores,
    aggregate,
    check_replace,
    write_eval,
)
from xeval.metrics import ENGINES, TIE_RULE, Metric, parse_metrics, score
from xeval.metrics.polars_engine import check_ranks, missing_queries, rank_run, score_hits
from xeval.metrics.validate import check_fingerprint, validate_run
from xeval.provenance import provenance
from xeval.tables import PER_QUERY, RANKS, RUN, read_json

#: the fields of ``run.json`` copied into ``eval.json``
RUN_FIELDS = ("model", "benchmark", "prompts", "backend", "k", "settings", "seed", "exact_ranks")
EXACT_RULE = (
    "metrics that depend on documents below the run's cut-off (MAP, nDCG, MRR without cut-off; "
    "@k deeper than the run; LB, QLP) come from the exact rank of every relevant item over the "
    "setting's whole corpus (ranks/<setting>.parquet, or the run itself when it lists every "
    "document); without exact ranks they are unavailable (null). MAP_trunc: trec_eval map on "
    "the run as given."
)


@dataclass(frozen=True)
class EvalConfig:
    """Options of :func:`evaluate_run` (``metrics``: names, None = the defaults)."""

    metrics: str | tuple[str, ...] | list[str] | None = None
    engine: str = "polars"
    write: bool = True
    replace: bool = False  # replace an eval/ that holds metrics this evaluation lacks


# ---- reading the run directory -------------------------------------------------------------
def read_run_json(rundir: Path) -> dict[str, Any]:
    """``run.json`` as a dict; a missing or malformed one is an :class:`XevalError`."""
    path = Path(rundir) / "run.json"
    if not Path(rundir).is_dir():
        raise XevalError(f"run directory {rundir} does not exist")
    info = read_json(path, missing="not a run directory (no run.json)")
    if not isinstance(info, dict) or not isinstance(info.get("benchmark"), dict):
        raise XevalError("run.json has no 'benchmark' object (name, path, fingerprint)", file=path)
    return info


def resolve_benchmark(
    benchmark: str | Path | Benchmark | None, info: dict[str, Any], rundir: Path
) -> Benchmark:
    """The benchmark given, else the one whose path ``run.json`` records."""
    if isinstance(benchmark, Benchmark):
        return benchmark
    if benchmark is not None:
        return load_benchmark(benchmark)
    recorded = info["benchmark"].get("path")
    if not recorded:
        raise XevalError(
            "run.json names no benchmark path; pass --benchmark DIR", file=rundir / "run.json"
        )
    p = Path(recorded).expanduser()
    for cand in (p,) if p.is_absolute() else (p, rundir / p):
        if (cand / "benchmark.json").is_file():
            return load_benchmark(cand)
    raise XevalError(
        f"benchmark {recorded!r} named in run.json is not found; pass --benchmark DIR",
        file=rundir / "run.json",
    )


def _settings(bench: Benchmark, info: dict[str, Any], rundir: Path) -> list[Setting]:
    available = {s.name: s for s in enumerate_settings(bench)}
    names = info.get("settings")
    if not names:
        names = sorted(p.stem for p in (rundir / "runs").glob("*.parquet"))
        if not names:
            raise XevalError(
                "no runs/<setting>.parquet file and no settings in run.json", file=rundir
            )
    unknown = [n for n in names if n not in available]
    if unknown:
        raise XevalError(
            f"setting(s) {unknown} are not settings of benchmark {bench.name!r} "
            f"(it has {len(available)}, e.g. {list(available)[:3]})",
            file=rundir / "run.json",
        )
    order = {n: i for i, n in enumerate(available)}
    return [available[n] for n in sorted(set(names), key=order.__getitem__)]


# ---- scoring one setting -------------------------------------------------------------------
def run_depth(run: pl.DataFrame, n_docs: int) -> int | None:
    """The run's cut-off (most documents of one query); None when it lists the whole corpus."""
    depth = int(run.group_by("query_id").len()["len"].max() or 0)  # type: ignore[arg-type]
    return None if depth >= n_docs else depth


def ranks_from_run(run: pl.DataFrame, qrels: pl.DataFrame) -> pl.DataFrame:
    """Exact ranks of the relevant items from a run that lists every document."""
    rel = qrels.filter(pl.col("relevance") > 0).select("query_id", "doc_id")
    return rank_run(run).join(rel, on=["query_id", "doc_id"]).select("query_id", "doc_id", "rank")


def score_setting(
    s: Setting,
    run: pl.DataFrame,
    ranks: pl.DataFrame | None,
    metrics: list[Metric],
    context: tuple[pl.DataFrame, str],
) -> SettingScores:
    """Values of ``metrics`` on one setting: each from the run or from exact ranks.

    ``ranks``: exact ranks over the setting's corpus (None: none recorded). ``context``: the
    corpus (``doc_id``, ``lang``) and the engine.
    """
    corpus, engine = context
    ms = [m for m in metrics if s.kind == "multi" or not m.multi_only]
    n_docs = int(corpus["lang"].is_in(list(s.doc_langs)).sum())
    depth = run_depth(run, n_docs)
    if ranks is None and depth is None:
        ranks = ranks_from_run(run, s.qrels)
    from_run = [m for m in ms if not m.needs_exact(depth)]
    exact = [m for m in ms if m.needs_exact(depth)] if ranks is not None else []
    sources = {m.name: "run" for m in from_run} | {m.name: "exact" for m in exact}
    sources |= {m.name: "unavailable" for m in ms if m.name not in sources}
    frames = [score(run, s.qrels, from_run, engine=engine)] if from_run else []
    if exact:
        hits = ranks.join(  # type: ignore[union-attr]
            corpus.select("doc_id", doc_lang="lang"), on="doc_id", how="left"
        ).with_columns(query_lang=pl.lit(s.query_lang))
        frames.append(score_hits(hits, s.qrels, exact))
    meta = {"setting": s.name, "kind": s.kind, "query_lang": s.query_lang, "doc_lang": s.doc_lang}
    per_query = (
        pl.concat([f.select("query_id", "metric", "value") for f in frames])
        .with_columns(**{k: pl.lit(v) for k, v in meta.items()})
        .select(list(PER_QUERY.columns))
        if frames
        else PER_QUERY.empty()
    )
    return SettingScores(per_query, sources, missing_queries(run, s.qrels).height)


def _load_setting(
    rundir: Path, s: Setting, bench: Benchmark, exact_ranks: bool
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    path = rundir / "runs" / f"{s.name}.parquet"
    run = validate_run(
        RUN.read(path),
        qrels=s.qrels,
        corpus=bench.corpus.select("doc_id", "lang"),
        doc_langs=s.doc_langs,
        known_queries=bench.queries.select("query_id"),
        file=path,
        what=f"setting {s.name}",
    )
    rpath = rundir / "ranks" / f"{s.name}.parquet"
    if not exact_ranks or not rpath.is_file():
        return run, None
    return run, check_ranks(RANKS.read(rpath), s.qrels, file=str(rpath))


# ---- the evaluation ------------------------------------------------------------------------
def evaluate_run(
    rundir: str | Path,
    benchmark: str | Path | Benchmark | None = None,
    config: EvalConfig | None = None,
    **options: Any,
) -> EvaluationResult:
    """Evaluate every setting of ``rundir`` and (by default) write ``rundir/eval``.

    ``benchmark`` defaults to the path recorded in ``run.json``; its fingerprint must match
    the one recorded there. ``options`` override fields of ``config`` (``metrics=``,
    ``engine=``, ``write=``, ``replace=``). Raises :class:`XevalError` on bad input.
    """
    cfg = _config(config, options)
    rundir = Path(rundir)
    info = read_run_json(rundir)
    bench = resolve_benchmark(benchmark, info, rundir)
    check_fingerprint(
        info["benchmark"].get("fingerprint"), bench.fingerprint, file=rundir / "run.json"
    )
    ms = parse_metrics(list(cfg.metrics) if isinstance(cfg.metrics, tuple) else cfg.metrics)
    if cfg.write:
        check_replace(rundir / "eval", [m.name for m in ms], cfg.replace)
    settings = _settings(bench, info, rundir)
    exact_ranks = info.get("exact_ranks", True) is not False
    context = (bench.corpus.select("doc_id", "lang"), cfg.engine)
    scores = {}
    for s in settings:
        run, ranks = _load_setting(rundir, s, bench, exact_ranks)
        scores[s.name] = score_setting(s, run, ranks, ms, context)
    result = aggregate(rundir, settings, ms, scores, bench.languages)
    result.info = _provenance(info, rundir, bench, ms, cfg, result)
    if cfg.write:
        write_eval(result, bench.name)
    return result


def _config(config: EvalConfig | None, options: dict[str, Any]) -> EvalConfig:
    cfg = config or EvalConfig()
    unknown = set(options) - {f.name for f in fields(EvalConfig)}
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}")
    cfg = replace(cfg, **options)
    if cfg.engine not in ENGINES:
        raise XevalError(f"unknown engine {cfg.engine!r}; choose from {list(ENGINES)}")
    return cfg


def _provenance(
    info: dict[str, Any],
    rundir: Path,
    bench: Benchmark,
    ms: list[Metric],
    cfg: EvalConfig,
    result: EvaluationResult,
) -> dict[str, Any]:
    return provenance(
        run={k: info.get(k) for k in RUN_FIELDS if k in info},
        rundir=str(rundir),
        benchmark={
            "name": bench.name,
            "path": str(bench.path) if bench.path else None,
            "fingerprint": bench.fingerprint,
        },
        metrics=[m.name for m in ms],
        metric_definitions={m.name: m.description for m in ms},
        exact_ranks={
            "rule": EXACT_RULE,
            "from_exact_ranks": result.exact_metrics(),
            "unavailable": result.unavailable_metrics(),
            "sources_by_kind": result.sources,
        },
        tie_rule=TIE_RULE,
        missing_queries="queries absent from a run score 0 and are counted in n_missing",
        engine=cfg.engine,
        n_settings=result.n_settings,
        n_missing=result.n_missing,
        notes=result.notes,
    )


__all__ = [
    "EvalConfig",
    "EvaluationResult",
    "Metric",
    "SettingScores",
    "evaluate_run",
    "read_run_json",
    "score_setting",
    "write_eval",
]

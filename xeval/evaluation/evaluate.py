"""Score a run directory: every setting's run against its qrels, plus language bias.

Reads (the run contract)::

    RUNDIR/run.json                      benchmark name, path, fingerprint; settings; model ...
    RUNDIR/runs/<setting>.parquet        query_id, doc_id, score[, rank]  (rank is ignored)
    RUNDIR/ranks/<multi-setting>.parquet query_id, doc_id, rank: exact pooled rank of every
                                         relevant item (language bias)

Writes ``RUNDIR/eval/`` atomically (the evaluation contract)::

    per_query.parquet|csv        setting, kind, query_lang, doc_lang, query_id, metric, value
    per_setting.parquet|csv|md   setting, kind, query_lang, doc_lang, metric, value,
                                 n_queries, n_missing
    summary.parquet|csv|md       kind, metric, value (macro-average over settings),
                                 n_settings, n_queries, n_missing
    matrix/<metric>.csv, matrix.md   query language × document language ("all" = multi)
    eval.json                    provenance: run.json fields, metrics, tie rule, engine, notes

Per-query values have no Markdown form (hundreds of thousands of rows). Queries of a
setting that the run lacks score 0 on every ranking metric and are counted in
``n_missing``. Language bias (``LB``) is computed for multilingual settings only, from the
ranks files; queries with fewer than 2 relevant items are excluded from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from xeval.benchmark.schema import Benchmark, load_benchmark
from xeval.benchmark.settings import Setting, enumerate_settings
from xeval.errors import XevalError
from xeval.metrics import ENGINES, Metric, parse_metrics, score
from xeval.metrics.polars_engine import language_bias, missing_queries
from xeval.metrics.validate import check_fingerprint, validate_run
from xeval.provenance import atomic_dir, provenance, write_text
from xeval.tables import (
    KINDS,
    PER_QUERY,
    PER_SETTING,
    RANKS,
    RUN,
    SUMMARY,
    TIE_RULE,
    read_json,
    write_json,
)

#: the columns of ``run.json`` copied into ``eval.json``
RUN_FIELDS = ("model", "benchmark", "prompts", "backend", "k", "settings", "seed")
LB_RULE = (
    "language bias = rank of the worst-ranked minus rank of the best-ranked relevant item over "
    "the whole pooled corpus (multi settings only); queries with < 2 relevant items are excluded"
)


@dataclass
class EvaluationResult:
    """The frames of one evaluation (as written to ``RUNDIR/eval``)."""

    rundir: Path
    metrics: list[str]
    per_query: pl.DataFrame
    per_setting: pl.DataFrame
    summary: pl.DataFrame
    matrices: dict[str, pl.DataFrame]
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def eval_dir(self) -> Path:
        return self.rundir / "eval"

    def value(self, kind: str, metric: str) -> float | None:
        """Macro-average of ``metric`` over the settings of ``kind`` (None if absent)."""
        row = self.summary.filter((pl.col("kind") == kind) & (pl.col("metric") == metric))
        return float(row["value"][0]) if row.height else None

    def console_table(self) -> str:
        """Mono / cross / multi macro-averages, one column per metric, aligned for a terminal."""
        return _text_table(self.summary, self.metrics)


# ---- reading the run directory -------------------------------------------------------------
def read_run_json(rundir: Path) -> dict[str, Any]:
    path = rundir / "run.json"
    if not rundir.is_dir():
        raise XevalError(f"run directory {rundir} does not exist")
    info = read_json(path, missing="not a run directory (no run.json)")
    if not isinstance(info, dict) or not isinstance(info.get("benchmark"), dict):
        raise XevalError("run.json has no 'benchmark' object (name, path, fingerprint)", file=path)
    return info


def _resolve_benchmark(
    benchmark: str | Path | Benchmark | None, info: dict[str, Any], rundir: Path
) -> Benchmark:
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


# ---- the evaluation ------------------------------------------------------------------------
def evaluate_run(
    rundir: str | Path,
    benchmark: str | Path | Benchmark | None = None,
    metrics: str | list[str] | None = None,
    engine: str = "polars",
    *,
    write: bool = True,
) -> EvaluationResult:
    """Evaluate every setting of ``rundir`` and (by default) write ``rundir/eval``.

    ``benchmark`` defaults to the path recorded in ``run.json``; its fingerprint must match
    the one recorded there. ``metrics`` defaults to
    :data:`xeval.metrics.definitions.DEFAULT_METRICS`. Raises :class:`XevalError` on bad input.
    """
    if engine not in ENGINES:
        raise XevalError(f"unknown engine {engine!r}; choose from {list(ENGINES)}")
    rundir = Path(rundir)
    info = read_run_json(rundir)
    bench = _resolve_benchmark(benchmark, info, rundir)
    check_fingerprint(
        info["benchmark"].get("fingerprint"), bench.fingerprint, file=rundir / "run.json"
    )
    ms = parse_metrics(metrics)
    lb_asked = metrics is not None and any(m.family == "lb" for m in ms)
    ranking = [m for m in ms if m.family != "lb"]
    settings = _settings(bench, info, rundir)
    corpus = bench.corpus.select("doc_id", "lang")
    known = bench.queries.select("query_id")
    notes: list[str] = []
    frames: list[pl.DataFrame] = []
    missing: dict[str, int] = {}
    cut = max((m.k for m in ranking if m.k is not None), default=0)
    shallow: list[tuple[str, int]] = []  # settings whose runs stop before the deepest cut-off
    for s in settings:
        path = rundir / "runs" / f"{s.name}.parquet"
        run = validate_run(
            RUN.read(path),
            qrels=s.qrels,
            corpus=corpus,
            doc_langs=s.doc_langs,
            known_queries=known,
            file=path,
            what=f"setting {s.name}",
        )
        n_docs = (
            bench.corpus.height
            if s.kind == "multi"
            else int(bench.corpus["lang"].is_in(list(s.doc_langs)).sum())
        )
        depth = int(run.group_by("query_id").len()["len"].max())  # type: ignore[arg-type]
        if depth < min(cut, n_docs):
            shallow.append((s.name, depth))
        missing[s.name] = missing_queries(run, s.qrels).height
        meta = {
            "setting": s.name,
            "kind": s.kind,
            "query_lang": s.query_lang,
            "doc_lang": s.doc_lang,
        }
        if ranking:
            values = score(run, s.qrels, ranking, engine=engine)
            frames.append(values.with_columns(**{k: pl.lit(v) for k, v in meta.items()}))
        if s.kind == "multi" and any(m.family == "lb" for m in ms):
            rpath = rundir / "ranks" / f"{s.name}.parquet"
            if not rpath.is_file():
                if lb_asked:
                    raise XevalError(
                        "missing ranks file: language bias needs exact ranks", file=rpath
                    )
                notes.append(f"LB of {s.name} not computed: {rpath} is missing")
                continue
            lb = language_bias(RANKS.read(rpath), s.qrels, file=str(rpath))
            frames.append(
                lb.select("query_id", "value").with_columns(
                    metric=pl.lit("LB"), **{k: pl.lit(v) for k, v in meta.items()}
                )
            )
    if shallow:
        depth = max(d for _, d in shallow)
        notes.append(
            f"{len(shallow)} setting run(s) hold at most {depth} documents per query, fewer "
            f"than the deepest cut-off ({cut}) and than their corpus (e.g. {shallow[0][0]}): "
            "metrics at that depth count only the retrieved documents"
        )
    n_missing = sum(missing.values())
    if n_missing:
        worst = sorted(((v, k) for k, v in missing.items() if v), reverse=True)[:3]
        notes.append(
            f"{n_missing} (setting, query) pairs are missing from the runs and score 0 "
            f"(most in: {', '.join(f'{k} ({v})' for v, k in worst)})"
        )
    names = [m.name for m in ms]
    per_query = (
        pl.concat([f.select(list(PER_QUERY.columns)) for f in frames], how="vertical")
        if frames
        else PER_QUERY.empty()
    )
    per_setting = _per_setting(per_query, settings, names, missing)
    summary = _summary(per_setting, names)
    matrices = {
        m: _matrix(per_setting, m, bench.languages)
        for m in names
        if per_setting.filter(pl.col("metric") == m).height
    }
    meta_info = provenance(
        run={k: info.get(k) for k in RUN_FIELDS if k in info},
        rundir=str(rundir),
        benchmark={
            "name": bench.name,
            "path": str(bench.path) if bench.path else None,
            "fingerprint": bench.fingerprint,
        },
        metrics=names,
        metric_definitions={m.name: m.description for m in ms},
        map_at_k="MAP@k divides by min(|rel|, k) (XTREME-R); trec_eval/ranx divide by |rel|",
        tie_rule=TIE_RULE,
        language_bias=LB_RULE,
        missing_queries="queries absent from a run score 0 and are counted in n_missing",
        engine=engine,
        n_settings=len(settings),
        n_missing=n_missing,
        notes=notes,
    )
    result = EvaluationResult(
        rundir,
        [n for n in names if n in set(summary["metric"])],
        per_query,
        per_setting,
        summary,
        matrices,
        meta_info,
        notes,
    )
    if write:
        write_eval(result, bench)
    return result


def _per_setting(
    per_query: pl.DataFrame, settings: list[Setting], names: list[str], missing: dict[str, int]
) -> pl.DataFrame:
    s_order = {s.name: i for i, s in enumerate(settings)}
    m_order = {m: i for i, m in enumerate(names)}
    agg = per_query.group_by("setting", "kind", "query_lang", "doc_lang", "metric").agg(
        value=pl.col("value").mean(), n_queries=pl.len().cast(pl.Int64)
    )
    return (
        agg.with_columns(
            n_missing=pl.when(pl.col("metric") == "LB")
            .then(0)
            .otherwise(pl.col("setting").replace_strict(missing, default=0))
            .cast(pl.Int64),
            _s=pl.col("setting").replace_strict(s_order, default=len(s_order)),
            _m=pl.col("metric").replace_strict(m_order, default=len(m_order)),
        )
        .sort("_s", "_m")
        .drop("_s", "_m")
        .select(
            "setting", "kind", "query_lang", "doc_lang", "metric", "value", "n_queries", "n_missing"
        )
    )


def _summary(per_setting: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    k_order = {k: i for i, k in enumerate(KINDS)}
    m_order = {m: i for i, m in enumerate(names)}
    return (
        per_setting.group_by("kind", "metric")
        .agg(
            value=pl.col("value").mean(),
            n_settings=pl.len().cast(pl.Int64),
            n_queries=pl.col("n_queries").sum(),
            n_missing=pl.col("n_missing").sum(),
        )
        .with_columns(
            _k=pl.col("kind").replace_strict(k_order, default=len(k_order)),
            _m=pl.col("metric").replace_strict(m_order, default=len(m_order)),
        )
        .sort("_k", "_m")
        .drop("_k", "_m")
    )


def _matrix(per_setting: pl.DataFrame, metric: str, languages: list[str]) -> pl.DataFrame:
    """Rows: query language; columns: document languages then ``all`` (multi)."""
    sub = per_setting.filter(pl.col("metric") == metric)
    cols = [c for c in [*languages, "all"] if c in set(sub["doc_lang"])]
    rows = sorted(set(sub["query_lang"]))
    wide = sub.pivot(on="doc_lang", index="query_lang", values="value")
    base = pl.DataFrame({"query_lang": rows})
    return base.join(wide, on="query_lang", how="left").select("query_lang", *cols)


# ---- writing -----------------------------------------------------------------------------
def _fmt(metric: str, v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.1f}" if metric == "LB" else f"{v:.4f}"


def _wide_summary(summary: pl.DataFrame, metrics: list[str]) -> list[list[str]]:
    rows = []
    for kind in KINDS:
        sub = summary.filter(pl.col("kind") == kind)
        if not sub.height:
            continue
        vals = dict(zip(sub["metric"], sub["value"], strict=True))
        n = int(sub["n_settings"].max())  # type: ignore[arg-type]
        rows.append([kind, str(n), *(_fmt(m, vals.get(m)) for m in metrics)])
    return rows


def _text_table(summary: pl.DataFrame, metrics: list[str]) -> str:
    header = ["kind", "settings", *metrics]
    rows = _wide_summary(summary, metrics)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
    )
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def write_eval(result: EvaluationResult, bench: Benchmark) -> Path:
    """Write ``RUNDIR/eval`` atomically (the old one is replaced only when all is written)."""
    names = result.metrics
    model = (result.info.get("run", {}).get("model") or {}).get("name", "?")
    title = f"{model} on {bench.name}"
    with atomic_dir(result.eval_dir, overwrite=True) as tmp:
        PER_QUERY.write(result.per_query, tmp / "per_query.parquet")
        result.per_query.write_csv(tmp / "per_query.csv")
        PER_SETTING.write(result.per_setting, tmp / "per_setting.parquet")
        result.per_setting.write_csv(tmp / "per_setting.csv")
        SUMMARY.write(result.summary, tmp / "summary.parquet")
        result.summary.write_csv(tmp / "summary.csv")
        md = [
            f"# Evaluation: {title}",
            "",
            "Macro-averages over the settings of each kind (LB: lower is better).",
            "",
            _md_table(["kind", "settings", *names], _wide_summary(result.summary, names)),
        ]
        if result.notes:
            md += ["Notes:", "", *[f"- {n}" for n in result.notes], ""]
        md += [f"Tie rule: {TIE_RULE}. Engine: {result.info.get('engine')}.", ""]
        write_text(tmp / "summary.md", "\n".join(md))
        write_text(tmp / "per_setting.md", _per_setting_md(result.per_setting, names, title))
        (tmp / "matrix").mkdir()
        sections = [
            f"# Query language × document language: {title}",
            "",
            "Rows: query language; columns: document language (all = multilingual).",
            "",
        ]
        for m, mat in result.matrices.items():
            mat.write_csv(tmp / "matrix" / f"{m}.csv")
            rows = [[r[0], *(_fmt(m, v) for v in r[1:])] for r in mat.iter_rows()]
            sections += [f"## {m}", "", _md_table(list(mat.columns), rows)]
        write_text(tmp / "matrix.md", "\n".join(sections))
        write_json(tmp / "eval.json", result.info)
    return result.eval_dir


def _per_setting_md(per_setting: pl.DataFrame, names: list[str], title: str) -> str:
    header = ["setting", "kind", "query", "docs", "n_queries", "n_missing", *names]
    rows = []
    for (name,), sub in per_setting.group_by("setting", maintain_order=True):
        vals = dict(zip(sub["metric"], sub["value"], strict=True))
        first = sub.filter(pl.col("metric") != "LB")
        first = first if first.height else sub
        r = first.row(0, named=True)
        rows.append(
            [
                str(name),
                r["kind"],
                r["query_lang"],
                r["doc_lang"],
                str(r["n_queries"]),
                str(r["n_missing"]),
                *(_fmt(m, vals.get(m)) for m in names),
            ]
        )
    return f"# Per setting: {title}\n\n" + _md_table(header, rows)


__all__ = ["EvaluationResult", "Metric", "evaluate_run", "read_run_json", "write_eval"]

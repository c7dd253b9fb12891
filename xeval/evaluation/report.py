"""Aggregating per-query values and writing ``RUNDIR/eval`` (the evaluation contract)::

    per_query.parquet|csv        setting, kind, query_lang, doc_lang, query_id, metric, value
    per_setting.parquet|csv|md   setting, kind, query_lang, doc_lang, metric, value,
                                 n_queries, n_missing   (value null: metric unavailable)
    summary.parquet|csv|md       kind, metric, value (macro-average over settings; null when
                                 a setting lacks it), n_settings, n_queries, n_missing
    matrix/<metric>.csv, matrix.md   query language × document language ("all" = multi)
    eval.json                    provenance: run.json fields, metrics and their sources
                                 (run / exact ranks / unavailable), tie rule, engine, notes

Per-query values have no Markdown form (hundreds of thousands of rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from xeval.benchmark.settings import Setting
from xeval.errors import XevalError
from xeval.metrics import Metric, get
from xeval.provenance import atomic_dir, write_json, write_text
from xeval.tables import KINDS, PER_QUERY, PER_SETTING, SUMMARY, TIE_RULE, read_json

_WHERE = ["setting", "kind", "query_lang", "doc_lang"]


@dataclass
class SettingScores:
    """One setting's per-query values, the source of each metric and its missing queries."""

    per_query: pl.DataFrame
    sources: dict[str, str]  # metric -> "run" | "exact" | "unavailable"
    n_missing: int


@dataclass
class EvaluationResult:
    """The frames of one evaluation (as written to ``RUNDIR/eval``).

    ``sources``: kind -> metric -> {"run" | "exact" | "unavailable": number of settings}.
    """

    rundir: Path
    metrics: list[str]
    per_query: pl.DataFrame
    per_setting: pl.DataFrame
    summary_table: pl.DataFrame
    matrices: dict[str, pl.DataFrame]
    sources: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    n_settings: int = 0
    n_missing: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def eval_dir(self) -> Path:
        return self.rundir / "eval"

    def value(self, kind: str, metric: str) -> float | None:
        """Macro-average of ``metric`` over the settings of ``kind`` (None if absent)."""
        t = self.summary_table
        row = t.filter((pl.col("kind") == kind) & (pl.col("metric") == metric))
        return row["value"][0] if row.height else None

    def _with_source(self, source: str) -> list[str]:
        return [
            m for m in self.metrics if any(source in by.get(m, {}) for by in self.sources.values())
        ]

    def exact_metrics(self) -> list[str]:
        """Metrics computed from exact ranks over the whole corpus in at least one setting."""
        return self._with_source("exact")

    def unavailable_metrics(self) -> list[str]:
        """Metrics left null in at least one setting (no exact ranks)."""
        return self._with_source("unavailable")

    def console_table(self) -> str:
        """Mono / cross / multi macro-averages, one column per metric, aligned for a terminal."""
        return text_table(self.summary_table, self.metrics)

    def summary(self) -> str:
        """The console table, where each metric's ranks came from, notes, and the eval dir."""
        lines = [self.console_table(), ""]
        exact, unavailable = self.exact_metrics(), self.unavailable_metrics()
        if exact:
            lines.append(f"from exact ranks over each setting's corpus: {', '.join(exact)}")
        if unavailable:
            lines.append(
                f"unavailable (no exact ranks; the run stops at its cut-off): "
                f"{', '.join(unavailable)}"
            )
        lines += [f"note: {n}" for n in self.notes]
        engine = self.info.get("engine", "polars")
        lines.append(
            f"{self.n_settings} settings scored ({engine} engine; ties: {TIE_RULE}); "
            f"eval: {self.eval_dir}"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"EvaluationResult({str(self.rundir)!r}, {self.n_settings} settings, "
            f"metrics={self.metrics}, {self.per_query.height} per-query values)"
        )


# ---- aggregation ---------------------------------------------------------------------------
def aggregate(
    rundir: Path,
    settings: list[Setting],
    metrics: list[Metric],
    scores: dict[str, SettingScores],
    languages: list[str],
) -> EvaluationResult:
    """Per-setting means, macro-averages per kind, matrices and notes from per-setting scores."""
    names = [m.name for m in metrics]
    frames = [sc.per_query for sc in scores.values()]
    per_query = pl.concat(frames) if frames else PER_QUERY.empty()
    src = pl.DataFrame(
        [(s.name, s.kind, m, v) for s in settings for m, v in scores[s.name].sources.items()],
        schema={"setting": pl.String, "kind": pl.String, "metric": pl.String, "source": pl.String},
        orient="row",
    )
    missing = {k: sc.n_missing for k, sc in scores.items()}
    per_setting = _per_setting(per_query, settings, names, src, missing)
    summary = _summary(per_setting, names)
    present = set(summary["metric"])
    result = EvaluationResult(
        rundir=rundir,
        metrics=[n for n in names if n in present],
        per_query=per_query,
        per_setting=per_setting,
        summary_table=summary,
        matrices={
            m: _matrix(per_setting, m, languages)
            for m in names
            if per_setting.filter((pl.col("metric") == m) & pl.col("value").is_not_null()).height
        },
        sources=_sources(src),
        n_settings=len(settings),
        n_missing=sum(missing.values()),
    )
    result.notes = _notes(result, missing)
    return result


def _sources(src: pl.DataFrame) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for kind, metric, source, n in src.group_by("kind", "metric", "source").len().iter_rows():
        out.setdefault(kind, {}).setdefault(metric, {})[source] = n
    return out


def _notes(result: EvaluationResult, missing: dict[str, int]) -> list[str]:
    notes = []
    if result.n_missing:
        worst = sorted(((v, k) for k, v in missing.items() if v), reverse=True)[:3]
        notes.append(
            f"{result.n_missing} (setting, query) pairs are missing from the runs and score 0 "
            f"on run-based metrics (most in: {', '.join(f'{k} ({v})' for v, k in worst)})"
        )
    lost = result.unavailable_metrics()
    if lost:
        notes.append(
            f"{', '.join(lost)} need ranks below the run's cut-off and the run has no exact "
            "ranks (ranks/<setting>.parquet): reported as unavailable, not computed on the "
            "truncated run"
        )
    return notes


def _order(col: str, order: list[str] | tuple[str, ...]) -> pl.Expr:
    return pl.col(col).replace_strict({v: i for i, v in enumerate(order)}, default=len(order))


def _per_setting(
    per_query: pl.DataFrame,
    settings: list[Setting],
    names: list[str],
    src: pl.DataFrame,
    missing: dict[str, int],
) -> pl.DataFrame:
    agg = per_query.group_by(*_WHERE, "metric").agg(
        value=pl.col("value").mean(), n_queries=pl.len().cast(pl.Int64)
    )
    where = pl.DataFrame(
        [(s.name, s.kind, s.query_lang, s.doc_lang) for s in settings],
        schema=dict.fromkeys(_WHERE, pl.String),
        orient="row",
    )
    rows = where.join(src.drop("kind"), on="setting").join(
        agg.drop("kind", "query_lang", "doc_lang"), on=["setting", "metric"], how="left"
    )
    return (
        rows.with_columns(
            pl.col("n_queries").fill_null(0),
            n_missing=pl.when(pl.col("source") == "run")
            .then(pl.col("setting").replace_strict(missing, default=0))
            .otherwise(0)
            .cast(pl.Int64),
        )
        .sort(_order("setting", [s.name for s in settings]), _order("metric", names))
        .select(*_WHERE, "metric", "value", "n_queries", "n_missing")
    )


def _summary(per_setting: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    value = pl.col("value")
    return (
        per_setting.group_by("kind", "metric")
        .agg(
            value=pl.when(value.null_count() == 0).then(value.mean()).otherwise(None),
            n_settings=pl.len().cast(pl.Int64),
            n_queries=pl.col("n_queries").sum(),
            n_missing=pl.col("n_missing").sum(),
        )
        .sort(_order("kind", KINDS), _order("metric", names))
    )


def _matrix(per_setting: pl.DataFrame, metric: str, languages: list[str]) -> pl.DataFrame:
    """Rows: query language; columns: document languages then ``all`` (multi)."""
    sub = per_setting.filter(pl.col("metric") == metric)
    cols = [c for c in [*languages, "all"] if c in set(sub["doc_lang"])]
    rows = sorted(set(sub["query_lang"]))
    wide = sub.pivot(on="doc_lang", index="query_lang", values="value")
    base = pl.DataFrame({"query_lang": rows})
    return base.join(wide, on="query_lang", how="left").select("query_lang", *cols)


# ---- text tables ---------------------------------------------------------------------------
def _wide_summary(summary: pl.DataFrame, metrics: list[str]) -> list[list[str]]:
    rows = []
    for kind in KINDS:
        sub = summary.filter(pl.col("kind") == kind)
        if not sub.height:
            continue
        vals = dict(zip(sub["metric"], sub["value"], strict=True))
        n = int(sub["n_settings"].max())  # type: ignore[arg-type]
        rows.append([kind, str(n), *(get(m).fmt(vals.get(m)) for m in metrics)])
    return rows


def text_table(summary: pl.DataFrame, metrics: list[str]) -> str:
    """The summary as an aligned terminal table (``—``: not available)."""
    header = ["kind", "settings", *metrics]
    rows = _wide_summary(summary, metrics)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


# ---- writing -------------------------------------------------------------------------------
def check_replace(eval_dir: Path, names: list[str], replace: bool) -> None:
    """Refuse to replace an ``eval/`` that holds metrics this evaluation would drop."""
    if replace or not eval_dir.exists():
        return
    try:
        old = read_json(eval_dir / "eval.json")["metrics"]
    except (XevalError, KeyError, TypeError):
        old = None
    lost = [m for m in old if m not in names] if isinstance(old, list) else None
    if lost is None or lost:
        what = f"metrics {lost} that this evaluation lacks" if lost else "an unreadable eval.json"
        raise XevalError(
            f"{eval_dir} holds {what}; pass --replace to replace it, or evaluate those metrics too",
            file=eval_dir,
        )


def write_eval(result: EvaluationResult, bench: Any) -> Path:
    """Write ``RUNDIR/eval`` atomically (the old one is replaced only when all is written).

    ``bench``: the benchmark or its name (for titles).
    """
    names = result.metrics
    model = (result.info.get("run", {}).get("model") or {}).get("name", "?")
    title = f"{model} on {getattr(bench, 'name', bench)}"
    with atomic_dir(result.eval_dir, overwrite=True) as tmp:
        for spec, df in (
            (PER_QUERY, result.per_query),
            (PER_SETTING, result.per_setting),
            (SUMMARY, result.summary_table),
        ):
            spec.write(df, tmp / f"{spec.name}.parquet")
            df.write_csv(tmp / f"{spec.name}.csv")
        write_text(tmp / "summary.md", _summary_md(result, title))
        write_text(tmp / "per_setting.md", _per_setting_md(result.per_setting, names, title))
        (tmp / "matrix").mkdir()
        write_text(tmp / "matrix.md", _matrices_md(result, tmp / "matrix", title))
        write_json(tmp / "eval.json", result.info)
    return result.eval_dir


def _summary_md(result: EvaluationResult, title: str) -> str:
    names = result.metrics
    lower = [m for m in names if get(m).lower_is_better]
    md = [
        f"# Evaluation: {title}",
        "",
        "Macro-averages over the settings of each kind"
        + (f" ({', '.join(lower)}: lower is better)." if lower else "."),
        "",
        _md_table(["kind", "settings", *names], _wide_summary(result.summary_table, names)),
    ]
    if result.exact_metrics():
        md += [f"From exact ranks over each setting's corpus: {', '.join(result.exact_metrics())}."]
        md += [""]
    if result.notes:
        md += ["Notes:", "", *[f"- {n}" for n in result.notes], ""]
    md += [f"Tie rule: {TIE_RULE}. Engine: {result.info.get('engine')}.", ""]
    return "\n".join(md)


def _matrices_md(result: EvaluationResult, folder: Path, title: str) -> str:
    sections = [
        f"# Query language × document language: {title}",
        "",
        "Rows: query language; columns: document language (all = multilingual).",
        "",
    ]
    for m, mat in result.matrices.items():
        mat.write_csv(folder / f"{m}.csv")
        rows = [[r[0], *(get(m).fmt(v) for v in r[1:])] for r in mat.iter_rows()]
        sections += [f"## {m}", "", _md_table(list(mat.columns), rows)]
    return "\n".join(sections)


def _per_setting_md(per_setting: pl.DataFrame, names: list[str], title: str) -> str:
    header = ["setting", "kind", "query", "docs", "n_queries", "n_missing", *names]
    rows = []
    for (name,), sub in per_setting.group_by("setting", maintain_order=True):
        vals = dict(zip(sub["metric"], sub["value"], strict=True))
        r = sub.sort("n_missing", "n_queries", descending=True).row(0, named=True)
        rows.append(
            [
                str(name),
                r["kind"],
                r["query_lang"],
                r["doc_lang"],
                str(r["n_queries"]),
                str(r["n_missing"]),
                *(get(m).fmt(vals.get(m)) for m in names),
            ]
        )
    return f"# Per setting: {title}\n\n" + _md_table(header, rows)

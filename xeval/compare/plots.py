"""Figures of a comparison (matplotlib, no pyplot state): PNG and SVG for papers.

- one heatmap per system and metric: query language (rows) x document language
  (columns; ``all`` = the multilingual pooled corpus);
- one difference heatmap per compared pair (B − A), diverging colours centred on 0, cells
  marked ``*`` where the per-setting test is significant (``--by pair`` only);
- one bar chart per metric: macro-average per setting group (also with ``--by pair``), one bar per
  system, error bars = std over seed replicas; for a metric of the multilingual settings
  only (``LB``) a bar chart per query language replaces the one-column heatmaps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from xeval.compare.core import LOWER_IS_BETTER, Comparison
from xeval.provenance import atomic_path
from xeval.tables import KINDS


@dataclass(frozen=True)
class FigureFile:
    """A written figure: its files and what it shows."""

    stem: str
    title: str
    kind: str  # "heatmap" | "difference" | "bars"
    png: Path
    svg: Path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def language_matrix(
    setting_scores: pl.DataFrame, system: str, metric: str
) -> tuple[list[str], list[str], np.ndarray]:
    """Rows = query languages, columns = document languages (+ ``all``); NaN where absent."""
    sub = setting_scores.filter((pl.col("system") == system) & (pl.col("metric") == metric))
    qlangs = sorted(set(sub["query_lang"]))
    dlangs = sorted(set(sub["doc_lang"]) - {"all"})
    if "all" in set(sub["doc_lang"]):
        dlangs.append("all")
    mat = np.full((len(qlangs), len(dlangs)), np.nan)
    qi = {q: i for i, q in enumerate(qlangs)}
    di = {d: j for j, d in enumerate(dlangs)}
    for q, d, v in sub.select("query_lang", "doc_lang", "mean").iter_rows():
        mat[qi[q], di[d]] = v
    return qlangs, dlangs, mat


def heatmap(
    rows: list[str],
    cols: list[str],
    mat: np.ndarray,
    title: str,
    *,
    diverging: bool = False,
    marks: np.ndarray | None = None,
    lower_is_better: bool = False,
    fmt: str = "{:.2f}",
) -> Figure:
    """An annotated heatmap; ``diverging`` centres the colour scale on zero."""
    size = max(3.5, 0.55 * len(cols) + 2.2), max(3.0, 0.45 * len(rows) + 1.6)
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    finite = mat[np.isfinite(mat)]
    if diverging:
        lim = float(np.max(np.abs(finite))) if finite.size else 1.0
        lim = lim or 1.0
        cmap = "RdBu_r" if lower_is_better else "RdBu"
        im = ax.imshow(mat, cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
    else:
        cmap = "viridis_r" if lower_is_better else "viridis"
        im = ax.imshow(mat, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("document language")
    ax.set_ylabel("query language")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.85)
    if len(rows) * len(cols) <= 400:
        font = 8 if len(cols) <= 8 else 6
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        for i in range(len(rows)):
            for j in range(len(cols)):
                v = mat[i, j]
                if not np.isfinite(v):
                    continue
                text = fmt.format(v) + ("*" if marks is not None and marks[i, j] else "")
                if diverging:
                    dark = abs(v) > 0.6 * max(abs(lo), abs(hi), 1e-12)
                else:
                    frac = (v - lo) / (hi - lo) if hi > lo else 0.5
                    dark = frac < 0.55 if not lower_is_better else frac > 0.45
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=font,
                    color="white" if dark else "black",
                )
    return fig


def bars(
    labels: list[str],
    series: dict[str, tuple[list[float], list[float]]],
    title: str,
    ylabel: str,
) -> Figure:
    """Grouped bars: one group per label, one bar per system (value, error bar)."""
    names = list(series)
    width = 0.8 / max(1, len(names))
    fig = Figure(
        figsize=(max(5.0, 0.3 * len(labels) * len(names) + 2), 3.4 + 0.2 * ((len(names) + 2) // 3)),
        layout="constrained",
    )
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    for k, name in enumerate(names):
        means, errs = series[name]
        err = [e if e is not None and np.isfinite(e) else 0.0 for e in errs]
        ax.bar(
            x + (k - (len(names) - 1) / 2) * width,
            means,
            width,
            yerr=err,
            capsize=2 if any(err) else 0,
            label=name if len(name) <= 40 else name[:39] + "…",
        )
    ax.set_xticks(x, labels, rotation=0 if len(labels) <= 12 else 90)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.legend(fontsize=7, loc="outside lower center", ncols=min(len(names), 3))
    ax.grid(axis="y", alpha=0.3)
    return fig


def group_bars(comp: Comparison, metric: str) -> Figure | None:
    """Bars per setting group (macro-average), one per system; error bars = std over seeds."""
    sc = comp.group_scores.filter(pl.col("metric") == metric)
    units = [k for k in KINDS if k in set(sc["unit"])]
    units += sorted(set(sc["unit"]) - set(units))
    if not units:
        return None
    idx = {(r["unit"], r["system"]): r for r in sc.iter_rows(named=True)}
    series = {}
    for s in comp.systems:
        rows = [idx.get((u, s.name)) for u in units]
        series[s.name] = (
            [r["mean"] if r else np.nan for r in rows],
            [r["std"] if r else None for r in rows],
        )
    return bars(units, series, f"{metric} per setting group (macro-average)", _ylabel(metric))


def language_bars(comp: Comparison, metric: str) -> Figure | None:
    """Bars per query language of the multilingual settings (used for LB)."""
    sub = comp.setting_scores.filter((pl.col("metric") == metric) & (pl.col("kind") == "multi"))
    if sub.is_empty():
        return None
    langs = sorted(set(sub["query_lang"]))
    idx = {(r["query_lang"], r["system"]): r for r in sub.iter_rows(named=True)}
    series = {}
    for s in comp.systems:
        rows = [idx.get((q, s.name)) for q in langs]
        series[s.name] = (
            [r["mean"] if r else np.nan for r in rows],
            [r["std"] if r else None for r in rows],
        )
    return bars(langs, series, f"{metric} per query language (multilingual)", _ylabel(metric))


def _ylabel(metric: str) -> str:
    return metric + (" (lower is better)" if metric in LOWER_IS_BETTER else "")


def _save(fig: Figure, out: Path, stem: str, title: str, kind: str) -> FigureFile:
    png, svg = out / f"{stem}.png", out / f"{stem}.svg"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    with atomic_path(svg) as tmp:
        fig.savefig(tmp, format="svg", metadata={"Date": None})
    return FigureFile(stem, title, kind, png, svg)


def write_figures(comp: Comparison, out: Path) -> list[FigureFile]:
    """Every figure of the comparison, as PNG and SVG under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    figs: list[FigureFile] = []
    ss = comp.setting_scores
    for metric in comp.options.metrics:
        lib = metric in LOWER_IS_BETTER
        fmt = "{:.0f}" if lib else "{:.2f}"
        fig = group_bars(comp, metric)
        if fig is not None:
            figs.append(
                _save(fig, out, f"bars-{_slug(metric)}", f"{metric} per setting group", "bars")
            )
        if all(language_matrix(ss, s.name, metric)[1] in ([], ["all"]) for s in comp.systems):
            # multilingual-only metric (LB): one bar chart per query language, no heatmaps
            fig = language_bars(comp, metric)
            if fig is not None:
                figs.append(
                    _save(
                        fig,
                        out,
                        f"bars-{_slug(metric)}-by-language",
                        f"{metric} per query language",
                        "bars",
                    )
                )
        mats = {}
        for s in comp.systems:
            rows, cols, mat = language_matrix(ss, s.name, metric)
            if not rows or cols == ["all"]:
                continue
            mats[s.name] = (rows, cols, mat)
            title = f"{s.name}: {metric}"
            fig = heatmap(rows, cols, mat, title, lower_is_better=lib, fmt=fmt)
            figs.append(
                _save(fig, out, f"heatmap-{_slug(metric)}-{_slug(s.name)}", title, "heatmap")
            )
        pairs = (
            comp.results.filter(pl.col("metric") == metric)
            .select("system_a", "system_b")
            .unique(maintain_order=True)
        )
        for a, b in pairs.iter_rows():
            if a not in mats or b not in mats:
                continue
            rows, cols, ma = mats[a]
            _, _, mb = mats[b]
            marks = _setting_marks(comp, metric, a, b, rows, cols)
            title = f"{metric}: {b} − {a}"
            fig = heatmap(
                rows,
                cols,
                mb - ma,
                title,
                diverging=True,
                marks=marks,
                lower_is_better=lib,
                fmt="{:+.0f}" if lib else "{:+.3f}",
            )
            figs.append(
                _save(
                    fig, out, f"diff-{_slug(metric)}-{_slug(b)}-vs-{_slug(a)}", title, "difference"
                )
            )
    return figs


def _setting_marks(
    comp: Comparison, metric: str, a: str, b: str, rows: list[str], cols: list[str]
) -> np.ndarray | None:
    if comp.options.by != "pair":
        return None
    res = comp.results.filter(
        (pl.col("metric") == metric)
        & (pl.col("system_a") == a)
        & (pl.col("system_b") == b)
        & pl.col("significant")
    )
    marks = np.zeros((len(rows), len(cols)), dtype=bool)
    for q, d in res.select("query_lang", "doc_lang").iter_rows():
        if q in rows and d in cols:
            marks[rows.index(q), cols.index(d)] = True
    return marks

"""Figures of a comparison (matplotlib, no pyplot state): PNG and SVG for papers.

Sized for the HTML report (at most 7.5 in wide, shown at up to 760 px, so fonts stay at
their printed size) and for a paper column:

- one heatmap per system and metric: query language (rows) x document language
  (columns); the pooled multilingual ``all`` column sits apart on the right; every system's
  heatmap of a metric uses the same colour scale, with a labelled colour bar; values are
  written in the cells up to 12 languages (beyond, the colour alone; 31 stay legible);
- one difference heatmap per compared pair (B − A), diverging colours centred on 0 and one
  symmetric scale for every pair of the metric; significant settings are marked (``*``
  after the value, or a dot when cells are too small): a paired t-test per setting on the
  comparison's pairing unit, corrected across the map's settings (with ``--by pair`` the
  comparison's own tests);
- one bar chart per metric: mean per setting group, one bar per system, error bars = 95 %
  confidence interval over the pairing units; for a multilingual-only metric (``LB``) a bar
  chart per query language replaces the one-column heatmaps (error bars: std over seeds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from xeval.compare.core import PLURAL, Comparison, setting_tests
from xeval.compare.metrics import lower_is_better, valid_range
from xeval.provenance import atomic_path
from xeval.tables import KINDS

MAX_WIDTH_IN = 7.5  # the HTML shows figures at up to 760 px (7.9 in at 96 px/in)
ANNOTATE_MAX = 12  # languages up to which values are written in the cells


@dataclass(frozen=True)
class FigureFile:
    """A written figure: its files and what it shows."""

    stem: str
    title: str
    kind: str  # "heatmap" | "difference" | "bars"
    png: Path
    svg: Path


@dataclass(frozen=True)
class Scale:
    """One colour scale shared by several heatmaps."""

    vmin: float
    vmax: float
    cmap: str
    label: str
    fmt: str = "{:.2f}"


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


def shared_scale(mats: list[np.ndarray], metric: str, *, diverging: bool = False) -> Scale:
    """A colour scale covering every matrix: the data range, or symmetric about 0."""
    finite = np.concatenate([m[np.isfinite(m)] for m in mats]) if mats else np.array([])
    lib = lower_is_better(metric)
    rank = valid_range(metric)[1] == float("inf")  # a rank distance, not a share
    if diverging:
        lim = float(np.max(np.abs(finite))) if finite.size else 1.0
        better = "lower" if lib else "higher"
        return Scale(
            -(lim or 1.0),
            lim or 1.0,
            "RdBu_r" if lib else "RdBu",
            f"Δ {metric} (B − A; blue: B {better})",
            "{:+.0f}" if rank else "{:+.3f}",
        )
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    label = metric + (" (lower is better)" if lib else "")
    return Scale(lo, hi, "viridis_r" if lib else "viridis", label, "{:.0f}" if rank else "{:.2f}")


def heatmap(
    rows: list[str],
    cols: list[str],
    mat: np.ndarray,
    title: str,
    scale: Scale,
    marks: np.ndarray | None = None,
) -> Figure:
    """An annotated heatmap with the ``all`` column (if any) set apart on the right."""
    pooled = bool(cols) and cols[-1] == "all"
    n_main = len(cols) - pooled
    width = min(MAX_WIDTH_IN, max(4.2, 1.9 + 0.23 * len(cols)))
    height = min(9.0, max(3.2, 1.3 + 0.2 * len(rows)))
    fig = Figure(figsize=(width, height), layout="constrained")
    ratios = [max(n_main, 1), 1] if pooled and n_main else [1]
    axes = fig.subplots(1, len(ratios), width_ratios=ratios, sharey=True, squeeze=False)[0]
    spans = [(0, n_main), (n_main, len(cols))] if len(ratios) == 2 else [(0, len(cols))]
    small = len(cols) > ANNOTATE_MAX or len(rows) > ANNOTATE_MAX
    font = 6.5 if small else 8
    for ax, (c0, c1) in zip(axes, spans, strict=True):
        im = ax.imshow(
            mat[:, c0:c1], cmap=scale.cmap, vmin=scale.vmin, vmax=scale.vmax, aspect="auto"
        )
        ax.set_xticks(range(c1 - c0), cols[c0:c1], rotation=90 if small else 0, fontsize=font)
        ax.tick_params(length=2, pad=1)
        sub = None if marks is None else marks[:, c0:c1]
        _annotate(ax, mat[:, c0:c1], scale, sub, annotate=not small)
    axes[0].set_yticks(range(len(rows)), rows, fontsize=font)
    axes[0].set_ylabel("query language")
    axes[0].set_xlabel("document language")
    if len(axes) == 2:
        axes[1].set_title("pooled", fontsize=font)
    fig.suptitle(title, fontsize=9)
    bar = fig.colorbar(im, ax=list(axes), shrink=0.9, aspect=30, pad=0.02)
    bar.set_label(scale.label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return fig


def _annotate(
    ax, mat: np.ndarray, scale: Scale, marks: np.ndarray | None, *, annotate: bool
) -> None:
    """Values (and ``*``) in the cells, or only dots on marked cells when too small."""
    for i, j in zip(*np.nonzero(np.isfinite(mat)), strict=True):
        v = float(mat[i, j])
        marked = marks is not None and bool(marks[i, j])
        if "Rd" in scale.cmap:
            dark = abs(v) > 0.6 * scale.vmax
        else:
            frac = (v - scale.vmin) / (scale.vmax - scale.vmin)
            dark = (frac < 0.55) if not scale.cmap.endswith("_r") else (frac > 0.45)
        color = "white" if dark else "black"
        if annotate:
            text = scale.fmt.format(v) + ("*" if marked else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
        elif marked:
            ax.plot(j, i, marker="o", markersize=2.2, color=color, linestyle="none")


Series = dict[str, tuple[list[float], list[float], list[float]]]  # system: mean, low, high


def bars(labels: list[str], series: Series, title: str, ylabel: str) -> Figure:
    """Grouped bars: one group per label, one bar per system, error bars low..high."""
    names = list(series)
    width = 0.8 / max(1, len(names))
    ncols = 1 if max(map(len, names)) > 40 else min(len(names), 2)
    legend_rows = -(-len(names) // ncols)
    fig = Figure(
        figsize=(min(MAX_WIDTH_IN, max(5.5, 0.28 * len(labels) * len(names) + 1.8)),
                 3.0 + 0.2 * legend_rows),
        layout="constrained",
    )  # fmt: skip
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    for k, name in enumerate(names):
        means, lows, highs = (np.asarray(v, dtype=float) for v in series[name])
        err = np.vstack([means - lows, highs - means])
        err = np.where(np.isfinite(err), np.maximum(err, 0), 0.0)
        ax.bar(
            x + (k - (len(names) - 1) / 2) * width,
            means,
            width,
            yerr=err,
            capsize=2,
            error_kw={"elinewidth": 0.8},
            label=name if len(name) <= 80 else name[:79] + "…",
        )
    ax.set_xticks(x, labels, rotation=0 if len(labels) <= 12 else 90, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.legend(fontsize=7, loc="outside lower center", ncols=ncols, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig


def group_bars(comp: Comparison, metric: str) -> Figure | None:
    """Bars per setting group, one per system; error bars: 95 % CI over the pairing units."""
    sc = comp.group_scores.filter(pl.col("metric") == metric)
    units = [k for k in KINDS if k in set(sc["unit"])]
    units += sorted(set(sc["unit"]) - set(units))
    if not units:
        return None
    idx = {(r["unit"], r["system"]): r for r in sc.iter_rows(named=True)}
    series: Series = {}
    for s in comp.systems:
        rows = [idx.get((u, s.name)) or {} for u in units]
        series[s.name] = (
            [r.get("mean", np.nan) for r in rows],
            [r.get("ci_low", np.nan) for r in rows],
            [r.get("ci_high", np.nan) for r in rows],
        )
    title = f"{metric} per setting group\n(error bars: 95 % CI over {PLURAL[comp.unit]})"
    return bars(units, series, title, _ylabel(metric))


def language_bars(comp: Comparison, metric: str) -> Figure | None:
    """Bars per query language of the multilingual settings (used for LB); error bars:
    95 % CI over the pairing units of that language."""
    from xeval.compare.core import paired_values
    from xeval.compare.stats import mean_difference_ci

    sub = comp.setting_scores.filter((pl.col("metric") == metric) & (pl.col("kind") == "multi"))
    if sub.is_empty():
        return None
    langs = sorted(set(sub["query_lang"]))
    series: Series = {}
    for s in comp.systems:
        pq = s.per_query.filter((pl.col("metric") == metric) & (pl.col("kind") == "multi"))
        cis = []
        for q in langs:
            vals = paired_values(pq.filter(pl.col("query_lang") == q), comp.unit, comp.units)
            v = vals["value"].to_numpy()
            cis.append(mean_difference_ci(np.zeros_like(v), v) if v.size else (np.nan,) * 3)
        series[s.name] = ([c[0] for c in cis], [c[1] for c in cis], [c[2] for c in cis])
    title = (
        f"{metric} per query language, multilingual\n(error bars: 95 % CI over {PLURAL[comp.unit]})"
    )
    return bars(langs, series, title, _ylabel(metric))


def _ylabel(metric: str) -> str:
    return metric + (" (lower is better)" if lower_is_better(metric) else "")


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
    for metric in comp.options.metrics:
        fig = group_bars(comp, metric)
        if fig is not None:
            figs.append(
                _save(fig, out, f"bars-{_slug(metric)}", f"{metric} per setting group", "bars")
            )
        mats = _matrices(comp, metric)
        if not mats:  # multilingual-only metric (LB): bars per query language instead
            fig = language_bars(comp, metric)
            if fig is not None:
                stem = f"bars-{_slug(metric)}-by-language"
                figs.append(_save(fig, out, stem, f"{metric} per query language", "bars"))
            continue
        figs += _heatmaps(comp, metric, mats, out)
        figs += _difference_maps(comp, metric, mats, out)
    return figs


Matrices = dict[str, tuple[list[str], list[str], np.ndarray]]


def _matrices(comp: Comparison, metric: str) -> Matrices:
    """System -> its language matrix, for systems with more than the pooled column."""
    mats = {}
    for s in comp.systems:
        rows, cols, mat = language_matrix(comp.setting_scores, s.name, metric)
        if rows and cols != ["all"]:
            mats[s.name] = (rows, cols, mat)
    return mats


def _heatmaps(comp: Comparison, metric: str, mats: Matrices, out: Path) -> list[FigureFile]:
    scale = shared_scale([m for _, _, m in mats.values()], metric)
    figs = []
    for name, (rows, cols, mat) in mats.items():
        title = f"{name}: {metric}"
        fig = heatmap(rows, cols, mat, title, scale)
        figs.append(_save(fig, out, f"heatmap-{_slug(metric)}-{_slug(name)}", title, "heatmap"))
    return figs


def _difference_maps(comp: Comparison, metric: str, mats: Matrices, out: Path) -> list[FigureFile]:
    pairs = (
        comp.results.filter(pl.col("metric") == metric)
        .select("system_a", "system_b")
        .unique(maintain_order=True)
    )
    diffs = {}
    for a, b in pairs.iter_rows():
        if a in mats and b in mats and mats[a][:2] == mats[b][:2]:
            diffs[(a, b)] = mats[b][2] - mats[a][2]
    scale = shared_scale(list(diffs.values()), metric, diverging=True)
    figs = []
    for (a, b), diff in diffs.items():
        rows, cols, _ = mats[a]
        marks = _setting_marks(comp, metric, a, b, rows, cols)
        title = f"{metric}: {b} − {a}"
        note = f"{title}\n(* / •: significant, paired t per setting, {comp.options.correction})"
        fig = heatmap(rows, cols, diff, note, scale, marks)
        stem = f"diff-{_slug(metric)}-{_slug(b)}-vs-{_slug(a)}"
        figs.append(_save(fig, out, stem, title, "difference"))
    return figs


def _setting_marks(
    comp: Comparison, metric: str, a: str, b: str, rows: list[str], cols: list[str]
) -> np.ndarray:
    res = setting_tests(comp, metric, a, b).filter(pl.col("significant"))
    marks = np.zeros((len(rows), len(cols)), dtype=bool)
    for q, d in res.select("query_lang", "doc_lang").iter_rows():
        if q in rows and d in cols:
            marks[rows.index(q), cols.index(d)] = True
    return marks

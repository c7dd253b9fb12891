"""Report figures (matplotlib, written atomically as PNG): bars per benchmark, the alpha
curve, the dev curve."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from xeval.provenance import atomic_path
from xeval.study import analysis as an

BASELINE_GROUPS = ("base", "bm25")  # the untrained systems when a caller names none


def save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def bars_figure(
    head: pl.DataFrame,
    bench: str,
    groups: list[str],
    path: Path,
    per_seed: pl.DataFrame | None = None,
    baselines: Collection[str] = BASELINE_GROUPS,
    sources: Sequence[str] = (),
) -> Path | None:
    """MRR@10 (mono, cross) and MAP (multi) per system, error bars = seed SD, and a dot per
    seed where a system has several (``per_seed``: :func:`xeval.study.report.per_system`);
    ``baselines``: the untrained systems (grey); ``sources``: the training sources of the
    whole report, in colour order, so a source keeps its colour from figure to figure."""
    from matplotlib.figure import Figure

    sel = head.filter(pl.col("benchmark") == bench)
    if sel.height == 0:
        return None
    fig = Figure(figsize=(max(9.0, 0.8 * len(groups) + 3), 3.2))
    axes = fig.subplots(1, 3, sharey=False)
    colors = source_colors(groups, baselines, sources)
    for ax, kind in zip(axes, an.KINDS, strict=True):
        metric = an.DECIDING[kind]
        vals = [
            sel.filter(
                (pl.col("kind") == kind) & (pl.col("group") == g) & (pl.col("metric") == metric)
            )
            for g in groups
        ]
        means = [v["mean"][0] if v.height else 0.0 for v in vals]
        sds = [(v["sd"][0] or 0.0) if v.height else 0.0 for v in vals]
        ax.bar(range(len(groups)), means, yerr=sds, color=[colors[g] for g in groups], capsize=3)
        if per_seed is not None:
            seed_dots(
                ax,
                per_seed.filter((pl.col("benchmark") == bench) & (pl.col("kind") == kind)),
                groups,
            )
        ax.set_xticks(range(len(groups)), groups, rotation=45, ha="right", fontsize=7)
        ax.set_title(f"{kind}: {metric}", fontsize=9)
        lo = min((m for m in means if m), default=0.0)
        ax.set_ylim(max(0.0, lo - 0.1), min(1.0, max(means) + 0.05) if means else 1.0)
    fig.suptitle(f"{bench}: mean over seeds ± seed SD (dots: each seed)", fontsize=10, y=1.03)
    sources = dict.fromkeys(training_source(g, baselines) for g in groups)
    if len(sources) > 2:  # more than the baselines and one training source: say which is which
        from matplotlib.patches import Patch

        first = {s: next(g for g in groups if training_source(g, baselines) == s) for s in sources}
        handles = [Patch(color=colors[first[s]]) for s in sources]
        fig.legend(handles, list(sources), loc="upper right", fontsize=7, title="trained on",
                   title_fontsize=7, bbox_to_anchor=(1.0, 1.08), ncols=len(sources))  # fmt: skip
    return save(fig, path)


PALETTE = ("#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd")


def training_source(group: str, baselines: Collection[str] = BASELINE_GROUPS) -> str:
    """``legal`` for ``legal-hybrid-a0.5``; ``untrained`` for the baselines."""
    return "untrained" if group in baselines else group.split("-", 1)[0]


def source_colors(
    groups: list[str], baselines: Collection[str] = BASELINE_GROUPS, sources: Sequence[str] = ()
) -> dict[str, str]:
    """One colour per training source (grey for the baselines), in the order of ``sources``
    and then of first appearance in ``groups``."""
    mine = (training_source(g, baselines) for g in groups if g not in baselines)
    trained = dict.fromkeys([*sources, *mine])
    pick = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(trained)}
    return {g: pick.get(training_source(g, baselines), "#8c8c8c") for g in groups}


def seed_dots(ax: Any, per_seed: pl.DataFrame, groups: list[str]) -> None:
    """One dot per seed of each system that has more than one."""
    sub = an.with_groups(per_seed.with_columns(seed=pl.col("system").str.extract(r"-s(\d+)$")))
    for x, g in enumerate(groups):
        vals = sub.filter(pl.col("group") == g)["value"].to_list()
        if len(vals) > 1:
            offs = [(i - (len(vals) - 1) / 2) * 0.12 for i in range(len(vals))]
            ax.scatter(
                [x + o for o in offs],
                vals,
                s=14,
                color="#dd8452",
                edgecolors="black",
                linewidths=0.4,
                zorder=3,
            )


def alpha_figure(points: pl.DataFrame, source: str, path: Path) -> Path | None:
    """Score against alpha (0 = X-Y, 1 = X-X) per benchmark, one panel per kind."""
    from matplotlib.figure import Figure

    if points.height == 0 or points["alpha"].n_unique() < 2:
        return None
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, kind in zip(axes, an.KINDS, strict=True):
        sub = points.filter(pl.col("kind") == kind)
        for bench in sub["benchmark"].unique().sort():
            s = sub.filter(pl.col("benchmark") == bench).sort("alpha")
            ax.plot(s["alpha"], s["value"], marker="o", label=bench)
        ax.set_title(f"{kind}: {an.DECIDING[kind]}", fontsize=9)
        ax.set_xlabel("alpha (share of monolingual batches)", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=7)
    fig.suptitle(f"alpha curve, {source} (one seed)", fontsize=10)
    return save(fig, path)


def dev_figure(dev: pl.DataFrame, source: str, path: Path, used: int | None = None) -> Path | None:
    """The dev curve, the rule's step and (when it differs) the steps the plan trains."""
    from matplotlib.figure import Figure

    cols = [c for c in dev.columns if c.startswith("MRR@10/")]
    if dev.height == 0 or not cols:
        return None
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax = fig.subplots()
    for c in cols:
        ax.plot(dev["step"], dev[c], marker="o", markersize=4, label=c)
    d = dev.sort("step")
    ax.plot(d["step"], d.select(pl.mean_horizontal(cols)).to_series(), color="0.4",
            linestyle="--", label="mean (the rule's score)")  # fmt: skip
    marks = [(an.suggest_steps(dev), "rule", "tab:red", "-")]
    if used and used != marks[0][0]:
        marks.append((used, "plan", "black", ":"))
    for i, (step, what, color, style) in enumerate(marks):
        if step is None:
            continue
        ax.axvline(step, color=color, linewidth=1, linestyle=style)
        ax.annotate(f"{what}: {step} steps", (step, 0.03), xycoords=("data", "axes fraction"),
                    xytext=(4, 12 * i), textcoords="offset points", color=color, fontsize=8,
                    bbox={"fc": "white", "ec": "none", "alpha": 0.8})  # fmt: skip
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("MRR@10 on held-out units")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    ax.set_title(f"dev curve, {source}", fontsize=10)
    return save(fig, path)

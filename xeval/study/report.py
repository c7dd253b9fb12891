"""``xeval study report``: Markdown + self-contained HTML with figures, from the store alone.

Sections: what is stored and what is missing; the verdict per (training source, domain)
with its rule; per benchmark the headline table (mean over seeds ± seed SD); the
seed-aware unit-level tests (Holm across the whole report, t intervals); seen vs unseen training
languages; the alpha curve; the dev curve; the overlap guard's figures.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from xeval.provenance import atomic_path, provenance, write_text
from xeval.study import analysis as an
from xeval.study.cells import plan_cells
from xeval.study.plan import Plan
from xeval.study.stages import METRICS
from xeval.study.store import Store, default_store

Block = tuple  # ("h2"|"h3"|"p", text) | ("table", header, rows) | ("img", path, caption)


@dataclass
class ReportResult:
    markdown: Path
    html: Path
    figures: list[Path]
    done: int
    total: int
    verdicts: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"report from {self.done} of {self.total} cells: {self.markdown}, {self.html}"]
        lines += [f"  verdict {k}: {v}" for k, v in self.verdicts.items()]
        return "\n".join(lines)


def _f(x: Any, metric: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.1f}" if metric == "LB" else f"{x:.3f}"


# ---- rendering -------------------------------------------------------------------------------
def to_markdown(blocks: list[Block], root: Path) -> str:
    out = []
    for b in blocks:
        if b[0] in ("h1", "h2", "h3"):
            out.append("#" * int(b[0][1]) + " " + b[1])
        elif b[0] == "p":
            out.append(b[1])
        elif b[0] == "table":
            rows = [b[1], ["---"] * len(b[1]), *b[2]]
            out.append("\n".join("| " + " | ".join(map(str, r)) + " |" for r in rows))
        elif b[0] == "img":
            out.append(f"![{b[2]}]({b[1].relative_to(root)})")
    return "\n\n".join(out) + "\n"


def to_html(blocks: list[Block], title: str) -> str:
    body = []
    for b in blocks:
        if b[0] in ("h1", "h2", "h3"):
            body.append(f"<{b[0]}>{html.escape(b[1])}</{b[0]}>")
        elif b[0] == "p":
            body.append(f"<p>{html.escape(b[1]).replace('**', '')}</p>")
        elif b[0] == "table":
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in b[1])
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                for r in b[2]
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b[0] == "img":
            data = base64.b64encode(b[1].read_bytes()).decode()
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b[2])}">'
                f"<figcaption>{html.escape(b[2])}</figcaption></figure>"
            )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:90%;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "img{max-width:100%}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )


# ---- figures ---------------------------------------------------------------------------------
def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def bars_figure(
    head: pl.DataFrame,
    bench: str,
    groups: list[str],
    path: Path,
    per_seed: pl.DataFrame | None = None,
) -> Path | None:
    """MRR@10 (mono, cross) and MAP (multi) per system, error bars = seed SD, and a dot per
    seed where a system has several (``per_seed``: :func:`_per_system`)."""
    from matplotlib.figure import Figure

    sel = head.filter(pl.col("benchmark") == bench)
    if sel.height == 0:
        return None
    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 3, sharey=False)
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
        ax.bar(range(len(groups)), means, yerr=sds, color="#4c72b0", capsize=3)
        if per_seed is not None:
            _seed_dots(
                ax,
                per_seed.filter((pl.col("benchmark") == bench) & (pl.col("kind") == kind)),
                groups,
            )
        ax.set_xticks(range(len(groups)), groups, rotation=45, ha="right", fontsize=7)
        ax.set_title(f"{kind}: {metric}", fontsize=9)
        lo = min((m for m in means if m), default=0.0)
        ax.set_ylim(max(0.0, lo - 0.1), min(1.0, max(means) + 0.05) if means else 1.0)
    fig.suptitle(f"{bench}: mean over seeds ± seed SD (dots: each seed)", fontsize=10, y=1.03)
    return _save(fig, path)


def _seed_dots(ax: Any, per_seed: pl.DataFrame, groups: list[str]) -> None:
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
    return _save(fig, path)


def dev_figure(dev: pl.DataFrame, source: str, path: Path) -> Path | None:
    from matplotlib.figure import Figure

    cols = [c for c in dev.columns if c.startswith("MRR@10/")]
    if dev.height == 0 or not cols:
        return None
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    for c in cols:
        ax.plot(dev["step"], dev[c], marker="o", markersize=4, label=c)
    d = dev.sort("step")
    ax.plot(d["step"], d.select(pl.mean_horizontal(cols)).to_series(), color="0.4",
            linestyle="--", label="mean (the rule's score)")  # fmt: skip
    chosen = suggest_steps(dev)
    if chosen is not None:
        ax.axvline(chosen, color="tab:red", linewidth=1)
        ax.annotate(f"rule: {chosen} steps", (chosen, 1), xycoords=("data", "axes fraction"),
                    xytext=(4, -12), textcoords="offset points", color="tab:red", fontsize=8)  # fmt: skip
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("MRR@10 on held-out units")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"dev curve, {source}", fontsize=10)
    return _save(fig, path)


# ---- sections --------------------------------------------------------------------------------
def suggest_steps(dev: pl.DataFrame, tol: float = 0.005) -> int | None:
    """The first evaluated step after which the mean dev MRR@10 never gains more than tol."""
    cols = [c for c in dev.columns if c.startswith("MRR@10/")]
    if dev.height == 0 or not cols:
        return None
    d = dev.sort("step").with_columns(score=pl.mean_horizontal(cols))
    steps, score = d["step"].to_list(), d["score"].to_list()
    for i, s in enumerate(steps):
        if max(score[i:]) <= score[i] + tol:
            return int(s)
    return int(steps[-1])


def suggestion_text(dev: pl.DataFrame, cap: int = 0) -> str:
    """:func:`suggest_steps`, held under the plan's ``steps_cap`` (0 = none), in words."""
    s = suggest_steps(dev)
    if s is not None and cap and s > cap:
        return f"{cap} (the plateau rule says {s}; the plan caps it at {cap})"
    return str(s)


def devcurve_summary(plan: Plan, store: Store) -> str:
    lines = []
    for rec in store.records("devcurve"):
        dev = rec.table("dev")
        if dev is None:
            continue
        text = suggestion_text(dev, plan.training.steps_cap)
        lines.append(f"dev curve {rec.id}: {dev.height} points; suggested steps: {text}")
        lines += [
            "  step "
            + f"{r['step']:>5}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in r.items() if k != "step")
            for r in dev.iter_rows(named=True)
        ]
    for src in plan.sources:
        steps, why = plan.steps(src.name)
        lines.append(f"the plan says steps = {steps} for {src.name} ({why})")
    return "\n".join(lines)


def _groups(plan: Plan, source: str) -> dict[str, str]:
    """Role -> group name for a source's comparisons (hybrid = the main hybrid strategy)."""
    roles = {"base": "base"}
    for st in plan.strategies:
        roles[st.label if st.name != "hybrid" else "hybrid"] = f"{source}-{st.label}"
    return roles


def _verdict_cells(
    plan: Plan, store: Store, source: str, groups: list[str], benches: list[str]
) -> tuple[int, int]:
    """(missing, planned) eval cells behind a verdict: every seed of hybrid, X-X and X-Y on
    every benchmark of the domain. A verdict is given only from the whole planned set."""
    wanted = [
        c
        for c in plan_cells(plan)
        if c.kind == "eval"
        and c.system is not None
        and c.system.source == source
        and c.benchmark in benches
        and an.group_of(c.system.name, c.system.seed) in groups
    ]
    return sum(not store.done(c) for c in wanted), len(wanted)


def trained_sources(plan: Plan) -> list[tuple[Plan, Any, list[str]]]:
    """(plan, source, benchmarks of this plan it is evaluated on): own sources first, then
    those of the ``compare_with`` plans (general-domain vs in-domain training side by side)."""
    from xeval.study.plan import load_plan

    mine = [b.name for b in plan.benchmarks]
    out = [(plan, s, [b.name for b in plan.benchmarks_of(s)]) for s in plan.sources]
    for rel in plan.compare_with:
        other = load_plan(plan.path.parent / rel)
        for s in other.sources:
            theirs = {b.name for b in other.benchmarks_of(s)}
            out.append((other, s, [b for b in mine if b in theirs]))
    return out


def _comparison_pairs(plan: Plan) -> list[tuple[str, str, str]]:
    """(benchmark, a, b): within each source, then each own hybrid vs the other plans'."""
    wanted = [
        ("xx", "hybrid"),
        ("xy", "hybrid"),
        ("base", "hybrid"),
        ("base", "xx"),
        ("base", "xy"),
    ]
    pairs = []
    sources = trained_sources(plan)
    for p, src, benches in sources:
        g = _groups(p, src.name)
        pairs += [(b, g[x], g[y]) for b in benches for x, y in wanted if x in g and y in g]
    for p, src, benches in sources[: len(plan.sources)]:
        mine = _groups(p, src.name).get("hybrid")
        for op, osrc, obenches in sources[len(plan.sources) :]:
            theirs = _groups(op, osrc.name).get("hybrid")
            if mine and theirs:
                pairs += [(b, theirs, mine) for b in benches if b in obenches]
    return pairs


def imported_scores(plan: Plan, own: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Fine-tunes of the ``compare_with`` plans on this plan's benchmarks (same build only)."""
    from xeval.study.plan import load_plan

    frames, notes = [], []
    mine = {b.name for b in plan.benchmarks}
    fps = dict(own.select("benchmark", "fingerprint").unique().iter_rows()) if own.height else {}
    for rel in plan.compare_with:
        other = load_plan(plan.path.parent / rel)
        df = Store(default_store(other)).scores()
        if df.height == 0:
            notes.append(f"Plan {other.name} ({rel}) has no stored evaluation yet.")
            continue
        df = df.filter(pl.col("seed").is_not_null() & pl.col("benchmark").is_in(sorted(mine)))
        for bench, fp in df.select("benchmark", "fingerprint").unique().iter_rows():
            if bench in fps and fps[bench] != fp:
                notes.append(
                    f"{bench}: plan {other.name} evaluated another build ({fp}); left out."
                )
                df = df.filter(pl.col("benchmark") != bench)
        notes.append(f"Set beside this plan: the fine-tunes of plan {other.name} ({rel}).")
        frames.append(df)
    return (pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()), notes


def _headline_blocks(head: pl.DataFrame, bench: str) -> list[Block]:
    sel = head.filter(pl.col("benchmark") == bench)
    rows = []
    for (kind, group), part in sel.group_by("kind", "group", maintain_order=True):
        vals = {r["metric"]: r for r in part.iter_rows(named=True)}
        cells = []
        for m in METRICS:
            r = vals.get(m)
            if r is None:
                cells.append("—")
            else:
                sd = f" ± {_f(r['sd'], m)}" if r["n_seeds"] > 1 else ""
                cells.append(_f(r["mean"], m) + sd)
        n = max(r["n_seeds"] for r in vals.values())
        rows.append([kind, group, n, *cells])
    order = {k: i for i, k in enumerate(an.KINDS)}
    rows.sort(key=lambda r: (order.get(r[0], 9), r[1]))
    return [("table", ["kind", "system", "seeds", *METRICS], rows)]


TEST_HEADER = [
    "kind", "metric", "difference", "units", "mean diff", "95 % CI", "p", "p (Holm)", "seeds",
    "seed var",
]  # fmt: skip


def _test_rows(tests: list[an.Test], bench: str | None = None) -> list[list[Any]]:
    """Rows of :data:`TEST_HEADER` for ``bench`` (all benchmarks, named first, if None)."""
    rows = []
    for t in tests:
        if bench is not None and t.benchmark != bench:
            continue
        star = "*" if t.p_holm < 0.05 else ""
        rows.append([
            *([] if bench is not None else [t.benchmark]), t.kind, t.metric, f"{t.b} − {t.a}", t.n_units, _f(t.diff, t.metric) + star,
            f"[{_f(t.ci_low, t.metric)}, {_f(t.ci_high, t.metric)}]", f"{t.p:.2g}", f"{t.p_holm:.2g}",
            f"{t.n_seeds[1]} v {t.n_seeds[0]}", f"{t.seed_share:.0%}",
        ])  # fmt: skip
    return rows


def _alpha_points(plan: Plan, head_seed: pl.DataFrame, source: str) -> pl.DataFrame:
    seed = plan.alpha_curve.seeds[0] if plan.alpha_curve.seeds else plan.training.seeds[0]
    frames = []
    for label, alpha in _alpha_labels(plan):
        name = f"{source}-{label}-s{seed}"
        sub = head_seed.filter(pl.col("system") == name)
        frames.append(sub.with_columns(alpha=pl.lit(alpha)))
    return pl.concat(frames) if frames else pl.DataFrame()


def _alpha_labels(plan: Plan) -> list[tuple[str, float]]:
    out = [("xy", 0.0), ("xx", 1.0)]
    alphas = {st.alpha for st in plan.strategies if st.name == "hybrid"} | set(
        plan.alpha_curve.alphas
    )
    return out + [(f"hybrid-a{a:g}", a) for a in sorted(alphas)]


def _per_system(scores: pl.DataFrame) -> pl.DataFrame:
    """benchmark, kind, group, system, value of the deciding metric (one seed = one system)."""
    frames = []
    for kind, metric in an.DECIDING.items():
        frames.append(
            scores.filter(pl.col("kind") == kind)
            .group_by("benchmark", "kind", "group", "system", "query_lang")
            .agg(pl.col(metric).mean().alias("value"))
            .group_by("benchmark", "kind", "group", "system")
            .agg(pl.col("value").mean())
        )
    return pl.concat(frames)


def _seen_blocks(plan: Plan, store: Store, scores: pl.DataFrame) -> list[Block]:
    blocks: list[Block] = []
    for src in plan.sources:
        langs: set[str] = set()
        for rec in store.records("train"):
            if rec.meta.get("source") == src.name:
                langs |= set(rec.meta.get("languages") or [])
        if not langs:
            continue
        names = [b.name for b in plan.benchmarks_of(src)]
        su = an.seen_unseen(scores.filter(pl.col("benchmark").is_in(names)), langs)
        if su.height == 0:
            continue
        groups = sorted(su["group"].unique().to_list())
        index = ["benchmark", "kind", "languages", "n_langs"]
        wide = su.pivot(on="group", index=index, values="MRR@10").sort(index)
        rows = [
            [*(r[c] for c in index), *(_f(r.get(g)) for g in groups)]
            for r in wide.iter_rows(named=True)
        ]
        blocks += [
            ("h3", f"Seen vs unseen training languages ({src.name}: {', '.join(sorted(langs))})"),
            (
                "p",
                "MRR@10 over the query languages of each kind (mean over seeds); n = "
                "query languages.",
            ),
            ("table", ["benchmark", "kind", "query languages", "n", *groups], rows),
        ]
    return blocks


def _overlap_blocks(store: Store) -> list[Block]:
    """One row per benchmark and distinct figures, with the fine-tunes that share them."""
    shared: dict[tuple[str, str], list[str]] = {}
    for rec in store.records("train"):
        for ov in rec.meta.get("overlap") or []:
            if isinstance(ov, dict):
                key = (str(ov.get("benchmark", "?")), _overlap_text(ov))
                shared.setdefault(key, []).append(str(rec.meta.get("system")))
    if not shared:
        return []
    rows = [[bench, text, f"{len(s)}: " + ", ".join(sorted(s))]
            for (bench, text), s in sorted(shared.items())]  # fmt: skip
    return [("h2", "Overlap guard (training pairs vs each evaluated benchmark)"),
            ("table", ["benchmark", "figures", "fine-tunes"], rows)]  # fmt: skip


def _overlap_text(ov: dict[str, Any]) -> str:
    keys = [k for k, v in ov.items() if isinstance(v, (int, float)) and k != "benchmark"]
    return ", ".join(f"{k} {ov[k]}" for k in keys[:6])


def build_report(plan: Plan, store_root: str | Path, out: str | Path) -> ReportResult:
    """Write ``out/report.md``, ``out/report.html`` and ``out/figures/*.png``."""
    store, out = Store(store_root), Path(out)
    cells = plan_cells(plan)
    missing = [c.id for c in cells if not store.done(c)]
    done = len(cells) - len(missing)
    scores = store.scores()
    imported, notes = imported_scores(plan, scores)
    if imported.height:
        scores = pl.concat([scores, imported], how="diagonal_relaxed")
    blocks: list[Block] = [
        ("h1", f"Study {plan.name}"),
        ("p", plan.description or ""),
        ("p", f"Base model {plan.base_model}; {done} of {len(cells)} cells stored. Steps: "
              + "; ".join(f"{s.name} {plan.steps(s.name)[0]} ({plan.steps(s.name)[1]})" for s in plan.sources)
              + f"; batch {plan.training.batch_size}, "
              f"max length {plan.training.max_length}, lr {plan.training.lr}, frozen word embeddings: "
              f"{plan.training.freeze_embeddings}, precision {plan.training.precision}."),
    ]  # fmt: skip
    if missing:
        blocks.append(("p", f"Missing cells ({len(missing)}): " + ", ".join(missing[:40])
                       + (" …" if len(missing) > 40 else "")))  # fmt: skip
    blocks += [("p", n) for n in notes]
    figures: list[Path] = []
    verdicts: dict[str, str] = {}
    if scores.height:
        scores = an.with_groups(scores)
        figures, verdicts = _main_sections(plan, store, scores, out, blocks)
    else:
        blocks.append(("p", "No evaluation cell is stored yet: nothing to report."))
    blocks += _dev_sections(store, out, figures)
    blocks += _overlap_blocks(store)
    blocks.append(("p", f"Built {provenance()['created']} by `{provenance()['command']}` "
                        "from the store alone."))  # fmt: skip
    md, page = out / "report.md", out / "report.html"
    write_text(md, to_markdown(blocks, out))
    write_text(page, to_html(blocks, f"Study {plan.name}"))
    return ReportResult(md, page, figures, done, len(cells), verdicts)


def _main_sections(
    plan: Plan, store: Store, scores: pl.DataFrame, out: Path, blocks: list[Block]
) -> tuple[list[Path], dict[str, str]]:
    head = an.headline(scores)
    tests = an.run_tests(an.unit_scores(scores), _comparison_pairs(plan))
    figures: list[Path] = []
    verdicts: dict[str, str] = {}
    blocks += [("h2", "Verdicts"), ("p", an.VERDICT_RULE)]
    rows, deciding = [], []
    domains = {b.name: b.domain for b in plan.benchmarks}
    for p, src, benches_all in trained_sources(plan):
        g = _groups(p, src.name)
        rivals = [g[r] for r in ("xx", "xy") if r in g]
        p_store = store if p is plan else Store(default_store(p))
        for domain in dict.fromkeys(domains[b] for b in benches_all):
            benches = [b for b in benches_all if domains[b] == domain]
            v, shown = "—", "—"
            if "hybrid" in g:
                missing, total = _verdict_cells(
                    p, p_store, src.name, [g["hybrid"], *rivals], benches
                )
                v = "incomplete" if missing else an.verdict(tests, g["hybrid"], rivals, benches)
                shown = f"incomplete: {missing} of {total} cells missing" if missing else v
                deciding += an.deciding_tests(tests, g["hybrid"], rivals, benches)
            side = "in-domain" if src.domain == domain else "zero-shot"
            verdicts[f"trained on {src.name} ({src.domain}) → {domain}"] = v
            name = src.name + ("" if p is plan else f" (plan {p.name})")
            rows.append([name, src.domain, domain, side, ", ".join(benches), shown])
    hdr = ["training source", "its domain", "evaluated domain", "training", "benchmarks", "verdict"]
    blocks.append(("table", hdr, rows))
    if deciding:
        blocks += [("h3", "The tests behind the verdicts"),
                   ("table", ["benchmark", *TEST_HEADER], _test_rows(deciding))]  # fmt: skip
    blocks.append(("p", "Tests: seed-aware t on question units (a unit's score is the mean over "
                        "its query languages; a system's unit score the mean over its seeds; the "
                        "standard error adds the between-unit variance of the paired differences "
                        "to each system's between-seed variance of its mean, Welch-Satterthwaite "
                        "degrees of freedom), Holm across all "
                        f"{len(tests)} tests of this report; effect = mean difference with its "
                        "95 % t interval; seeds = seeds of the two systems (as in the "
                        "difference); seed var = share of the difference's variance that comes "
                        "from the seeds; * = Holm p < 0.05. "
                        "LB: lower is better, so a negative difference favours the second system."))  # fmt: skip
    per_sys = _per_system(scores)
    for bench in plan.benchmarks:
        blocks.append(("h2", f"{bench.name} ({bench.domain})"))
        blocks += _headline_blocks(head, bench.name)
        groups = sorted(head.filter(pl.col("benchmark") == bench.name)["group"].unique().to_list())
        f = bars_figure(
            head, bench.name, groups, out / "figures" / f"bars-{bench.name}.png", per_sys
        )
        if f:
            figures.append(f)
            blocks.append(("img", f, f"{bench.name}: deciding metric per kind"))
        rows = _test_rows(tests, bench.name)
        if rows:
            blocks.append(("table", TEST_HEADER, rows))
    blocks.append(("h2", "Seen vs unseen languages"))
    blocks += _seen_blocks(plan, store, scores)
    blocks.append(("h2", "Alpha curve"))
    for src in plan.sources:
        pts = _alpha_points(plan, per_sys, src.name)
        f = alpha_figure(pts, src.name, out / "figures" / f"alpha-{src.name}.png")
        if f:
            figures.append(f)
            blocks.append(("img", f, f"alpha curve ({src.name})"))
        if pts.height:
            blocks += _alpha_table(pts, per_sys, _groups(plan, src.name))
    return figures, verdicts


def _alpha_table(pts: pl.DataFrame, per_sys: pl.DataFrame, groups: dict[str, str]) -> list[Block]:
    """One row per benchmark and kind, one column per alpha, and the seed SD beside it.

    The curve is one seed; the SD of the deciding metric over the seeds of the three main
    strategies (pooled: the mean of their variances) says how far apart two points must be
    before the difference is more than a change of seed.
    """
    alphas = sorted(pts["alpha"].unique().to_list())
    wide = pts.pivot("alpha", index=["benchmark", "kind"], values="value", sort_columns=True)
    sd = (
        per_sys.filter(
            pl.col("group").is_in([groups[k] for k in ("xx", "xy", "hybrid") if k in groups])
        )
        .group_by("benchmark", "kind", "group")
        .agg(pl.col("value").var().alias("var"), pl.len().alias("n"))
        .filter(pl.col("n") >= 2)
        .group_by("benchmark", "kind")
        .agg(pl.col("var").mean().sqrt().alias("sd"))
    )
    wide = wide.join(sd, on=["benchmark", "kind"], how="left").sort("benchmark", "kind")
    labels = {0.0: "0 (X-Y)", 1.0: "1 (X-X)"}
    head = ["benchmark", "kind", *(labels.get(a, f"{a:g}") for a in alphas), "seed SD"]
    rows = [[r["benchmark"], r["kind"], *(_f(r[str(a)]) for a in alphas), _f(r["sd"])]
            for r in wide.iter_rows(named=True)]  # fmt: skip
    note = ("Deciding metric (MRR@10 mono and cross, MAP multi) at one seed per alpha; seed SD "
            "= the SD of the same metric between seeds of X-X, X-Y and hybrid (pooled). Two "
            "one-seed points differ by more than a change of seed only when they lie more than "
            "about 2.8 seed SDs apart (1.96 × √2).")  # fmt: skip
    return [("table", head, rows), ("p", note)]


def _dev_sections(store: Store, out: Path, figures: list[Path]) -> list[Block]:
    blocks: list[Block] = []
    for rec in store.records("devcurve"):
        dev = rec.table("dev")
        if dev is None:
            continue
        src = rec.meta.get("source") or rec.id
        blocks += [("h2", f"Dev curve ({src})"),
                   ("p", f"MRR@10 on held-out units; suggested steps (first step after which the "
                         f"mean never gains > 0.005): {suggest_steps(dev)}.")]  # fmt: skip
        f = dev_figure(dev, src, out / "figures" / f"dev-{src}.png")
        if f:
            figures.append(f)
            blocks.append(("img", f, f"dev curve ({src})"))
    return blocks

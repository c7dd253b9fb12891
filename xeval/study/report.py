"""``xeval study report``: Markdown + self-contained HTML with figures, from the store alone.

Sections: what is stored and what is missing; the verdict per (training source, domain)
with its rule; per benchmark the headline table (mean over seeds ± seed SD); the
seed-aware unit-level tests (Holm across the whole report, t intervals); seen vs unseen training
languages; the alpha curve; the dev curve; the overlap guard's figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from xeval.provenance import provenance, write_text
from xeval.study import analysis as an
from xeval.study.analysis import suggest_steps, suggestion_text
from xeval.study.cells import plan_cells
from xeval.study.consistency import consistency_lines
from xeval.study.figures import alpha_figure, bars_figure, dev_figure, training_source
from xeval.study.plan import Plan
from xeval.study.render import Block, fmt, to_html, to_markdown
from xeval.study.stages import METRICS
from xeval.study.store import Store, default_store


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
                sd = f" ± {fmt(r['sd'], m)}" if r["n_seeds"] > 1 else ""
                cells.append(fmt(r["mean"], m) + sd)
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
            *([] if bench is not None else [t.benchmark]), t.kind, t.metric, f"{t.b} − {t.a}", t.n_units, fmt(t.diff, t.metric) + star,
            f"[{fmt(t.ci_low, t.metric)}, {fmt(t.ci_high, t.metric)}]", f"{t.p:.2g}", f"{t.p_holm:.2g}",
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


def per_system(scores: pl.DataFrame) -> pl.DataFrame:
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
            [*(r[c] for c in index), *(fmt(r.get(g)) for g in groups)]
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


def _consistency_blocks(store: Store) -> list[Block]:
    """One build per benchmark, one set of pairs per source, the stored model evaluated."""
    lines = consistency_lines(store)
    return [("h2", "Consistency checks"), *(("p", x) for x in lines)] if lines else []


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
    blocks += _dev_sections(plan, store, out, figures)
    blocks += _overlap_blocks(store)
    blocks += _consistency_blocks(store)
    blocks.append(("p", f"Built {provenance()['created']} by `{provenance()['command']}` "
                        "from the store alone."))  # fmt: skip
    md, page = out / "report.md", out / "report.html"
    write_text(md, to_markdown(blocks, out))
    write_text(page, to_html(blocks, f"Study {plan.name}"))
    return ReportResult(md, page, figures, done, len(cells), verdicts)


TESTS_NOTE = (
    "Tests: seed-aware t on question units (a unit's score is the mean over its query "
    "languages; a system's unit score the mean over its seeds; the standard error adds the "
    "between-unit variance of the paired differences to each system's between-seed variance "
    "of its mean, Welch-Satterthwaite degrees of freedom), Holm across all {n} tests of this "
    "report; effect = mean difference with its 95 % t interval; seeds = seeds of the two "
    "systems (as in the difference); seed var = share of the difference's variance that "
    "comes from the seeds; * = Holm p < 0.05. LB: lower is better, so a negative difference "
    "favours the second system."
)


PARTIAL_NOTE = (
    "**Seeds still missing.** A fine-tune with one stored seed so far has no estimate of its "
    "seed-to-seed spread, so its seed term is left out: its tests read as unit-only tests and "
    "their p-values and intervals are too optimistic until the other seeds are stored. "
    "Verdicts wait for every seed (incomplete)."
)


def _main_sections(
    plan: Plan, store: Store, scores: pl.DataFrame, out: Path, blocks: list[Block]
) -> tuple[list[Path], dict[str, str]]:
    """Verdicts, one section per benchmark, seen vs unseen languages, the alpha curve."""
    head = an.headline(scores)
    tests = an.run_tests(an.unit_scores(scores), _comparison_pairs(plan))
    per_sys = per_system(scores)
    figures: list[Path] = []
    verdict_blocks, verdicts = _verdict_blocks(plan, store, tests)
    blocks += verdict_blocks
    blocks += _side_by_side_blocks(plan, head, tests)
    blocks += _benchmark_blocks(plan, head, tests, per_sys, out, figures)
    blocks += [("h2", "Seen vs unseen languages"), *_seen_blocks(plan, store, scores)]
    blocks += _alpha_blocks(plan, per_sys, out, figures)
    return figures, verdicts


def _verdict_blocks(
    plan: Plan, store: Store, tests: list[an.Test]
) -> tuple[list[Block], dict[str, str]]:
    """The verdict table (one row per training source and evaluated domain) and its tests."""
    verdicts: dict[str, str] = {}
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
    blocks: list[Block] = [("h2", "Verdicts"), ("p", an.VERDICT_RULE), ("table", hdr, rows)]
    if deciding:
        blocks += [("h3", "The tests behind the verdicts"),
                   ("table", ["benchmark", *TEST_HEADER], _test_rows(deciding))]  # fmt: skip
    blocks.append(("p", TESTS_NOTE.format(n=len(tests))))
    if "incomplete" in verdicts.values():
        blocks.append(("p", PARTIAL_NOTE))
    return blocks, verdicts


SIDE_NOTE = (
    "Deciding metric per benchmark and kind (mean over seeds); each training source's hybrid "
    "with its X-X / X-Y rivals after it. Last column: this plan's hybrid minus the other "
    "plan's hybrid (seed-aware t on question units, 95 % CI, Holm p over every test of the "
    "report); * = Holm p < 0.05. — = not stored yet."
)


def _side_by_side_blocks(plan: Plan, head: pl.DataFrame, tests: list[an.Test]) -> list[Block]:
    """Own training sources against the ``compare_with`` plans' on the benchmarks they share."""
    sources = trained_sources(plan)
    own, other = sources[: len(plan.sources)], sources[len(plan.sources) :]
    if not other:
        return []
    blocks: list[Block] = [("h2", "General-domain vs in-domain training")]
    for p, src, benches in own:
        g = _groups(p, src.name)
        rivals = [(op, osrc) for op, osrc, ob in other if set(ob) & set(benches)]
        hdr = ["benchmark", "kind", "metric", "base"]
        hdr += [f"{o.name}: hybrid (X-X / X-Y)" for _, o in rivals]
        hdr += [f"{src.name}: hybrid (X-X / X-Y)"]
        hdr += [f"{src.name} − {o.name} hybrid" for _, o in rivals]
        rows = []
        for b in benches:
            for kind in an.KINDS:
                m = an.DECIDING[kind]
                cells = [b, kind, m, _mean(head, b, kind, "base", m)]
                cells += [_trio(head, b, kind, _groups(op, o.name), m) for op, o in rivals]
                cells.append(_trio(head, b, kind, g, m))
                for op, o in rivals:
                    theirs = _groups(op, o.name).get("hybrid")
                    cells.append(_diff_cell(tests, b, kind, m, theirs, g.get("hybrid")))
                rows.append(cells)
        blocks += [("h3", f"trained on {src.name} ({src.domain})"), ("table", hdr, rows)]
    blocks.append(("p", SIDE_NOTE))
    return blocks


def _mean(head: pl.DataFrame, bench: str, kind: str, group: str | None, metric: str) -> str:
    sel = head.filter(
        (pl.col("benchmark") == bench)
        & (pl.col("kind") == kind)
        & (pl.col("group") == group)
        & (pl.col("metric") == metric)
    )
    return fmt(sel["mean"][0], metric) if sel.height else "—"


def _trio(head: pl.DataFrame, bench: str, kind: str, g: dict[str, str], metric: str) -> str:
    h, xx, xy = (_mean(head, bench, kind, g.get(r), metric) for r in ("hybrid", "xx", "xy"))
    return "—" if h == xx == xy == "—" else f"{h} ({xx} / {xy})"


def _diff_cell(
    tests: list[an.Test], bench: str, kind: str, metric: str, a: str | None, b: str | None
) -> str:
    for t in tests:
        if (t.benchmark, t.kind, t.metric, t.a, t.b) == (bench, kind, metric, a, b):
            star = "*" if t.p_holm < 0.05 else ""
            ci = f"[{fmt(t.ci_low, metric)}, {fmt(t.ci_high, metric)}]"
            return f"{fmt(t.diff, metric)}{star} {ci}, Holm p {t.p_holm:.2g}"
    return "—"


def _benchmark_blocks(
    plan: Plan,
    head: pl.DataFrame,
    tests: list[an.Test],
    per_sys: pl.DataFrame,
    out: Path,
    figures: list[Path],
) -> list[Block]:
    """Per benchmark: the headline tables, the bar figure and every test on it."""
    blocks: list[Block] = []
    trained = sorted(set(head["group"].to_list()) - set(plan.baselines))
    sources = list(dict.fromkeys(training_source(g, plan.baselines) for g in trained))
    for bench in plan.benchmarks:
        blocks.append(("h2", f"{bench.name} ({bench.domain})"))
        blocks += _headline_blocks(head, bench.name)
        groups = sorted(head.filter(pl.col("benchmark") == bench.name)["group"].unique().to_list())
        path = out / "figures" / f"bars-{bench.name}.png"
        if f := bars_figure(head, bench.name, groups, path, per_sys, plan.baselines, sources):
            figures.append(f)
            blocks.append(("img", f, f"{bench.name}: deciding metric per kind"))
        if rows := _test_rows(tests, bench.name):
            blocks.append(("table", TEST_HEADER, rows))
    return blocks


def _alpha_blocks(plan: Plan, per_sys: pl.DataFrame, out: Path, figures: list[Path]) -> list[Block]:
    """The alpha curve of each training source: figure and table."""
    blocks: list[Block] = [("h2", "Alpha curve")]
    for src in plan.sources:
        pts = _alpha_points(plan, per_sys, src.name)
        if f := alpha_figure(pts, src.name, out / "figures" / f"alpha-{src.name}.png"):
            figures.append(f)
            blocks.append(("img", f, f"alpha curve ({src.name})"))
        if pts.height:
            blocks += _alpha_table(pts, per_sys, _groups(plan, src.name))
    return blocks


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
    rows = [[r["benchmark"], r["kind"], *(fmt(r[str(a)]) for a in alphas), fmt(r["sd"])]
            for r in wide.iter_rows(named=True)]  # fmt: skip
    note = ("Deciding metric (MRR@10 mono and cross, MAP multi) at one seed per alpha; seed SD "
            "= the SD of the same metric between seeds of X-X, X-Y and hybrid (pooled). Two "
            "one-seed points differ by more than a change of seed only when they lie more than "
            "about 2.8 seed SDs apart (1.96 × √2).")  # fmt: skip
    return [("table", head, rows), ("p", note)]


def _steps_text(steps: list[int]) -> str:
    return f"{steps[0]}-{steps[-1]}" if len(steps) > 2 else ", ".join(map(str, steps))


def _dev_sections(plan: Plan, store: Store, out: Path, figures: list[Path]) -> list[Block]:
    blocks: list[Block] = []
    for rec in store.records("devcurve"):
        dev = rec.table("dev")
        if dev is None:
            continue
        src = rec.meta.get("source") or rec.id
        blocks += [("h2", f"Dev curve ({src})"),
                   ("p", f"MRR@10 on held-out units; suggested steps (first step after which the "
                         f"mean never gains > 0.005): {suggest_steps(dev)}.")]  # fmt: skip
        if restored := rec.meta.get("dev_restored"):
            blocks.append(("p", f"Steps {_steps_text(restored['steps'])} were restored from "
                                f"{restored['from']}: {restored['why']}."))  # fmt: skip
        used = plan.steps(src)[0] if src in {s.name for s in plan.sources} else None
        f = dev_figure(dev, src, out / "figures" / f"dev-{src}.png", used)
        if f:
            figures.append(f)
            blocks.append(("img", f, f"dev curve ({src})"))
    return blocks

"""Tables of a comparison: console text, Markdown, LaTeX (with significance marks), CSV, Parquet.

Significance marks follow ranx's convention: systems get letters a, b, c, ...; a score
carries the letters of the systems it is *significantly better than* (corrected p-value
<= alpha) in that unit and metric.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from xeval.compare.core import PAIRING, PLURAL, Comparison
from xeval.compare.metrics import fmt
from xeval.provenance import atomic_path, write_text

_SUP = dict(zip("abcdefghijklmnoprstuvwxyz", "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ", strict=True))
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def letters(comp: Comparison) -> dict[str, str]:
    """System name -> its letter (a, b, ... in system order; aa, ab, ... past z)."""
    out = {}
    for i, s in enumerate(comp.systems):
        out[s.name] = _LETTERS[i] if i < 26 else _LETTERS[i // 26 - 1] + _LETTERS[i % 26]
    return out


def beats(comp: Comparison) -> dict[tuple[str, str, str], list[str]]:
    """(metric, unit, system) -> letters of the systems it is significantly better than."""
    let = letters(comp)
    out: dict[tuple[str, str, str], list[str]] = {}
    for r in comp.results.filter(pl.col("significant")).iter_rows(named=True):
        if r["better"] == "B":
            winner, loser = r["system_b"], r["system_a"]
        elif r["better"] == "A":
            winner, loser = r["system_a"], r["system_b"]
        else:
            continue
        out.setdefault((r["metric"], r["unit"], winner), []).append(let[loser])
    return {k: sorted(v) for k, v in out.items()}


def fmt_value(metric: str, value: float | None) -> str:
    return fmt(metric, value)


def fmt_p(p: float | None) -> str:
    """One p-value format everywhere: three decimals, ``<0.001`` below (exact values are in
    comparisons.csv / .parquet)."""
    if p is None or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_ci(metric: str, low: float | None, high: float | None) -> str:
    return f"[{fmt(metric, low, sign=True)}, {fmt(metric, high, sign=True)}]"


def _sup(marks: Sequence[str]) -> str:
    text = "".join(marks)
    if all(c in _SUP for c in text):
        return "".join(_SUP[c] for c in text)
    return f"^{{{text}}}" if text else ""


def score_cell(metric: str, mean: float, std: float | None, n_runs: int) -> str:
    cell = fmt_value(metric, mean)
    if n_runs > 1 and std is not None and not math.isnan(std):
        cell += f" ± {fmt_value(metric, std)}"
    return cell


def scores_grid(
    comp: Comparison, metric: str
) -> tuple[list[str], list[list[tuple[str, list[str]]]]]:
    """Units (rows) x systems (columns): (cell text, marks) for one metric."""
    sc = comp.scores.filter(pl.col("metric") == metric)
    units = list(dict.fromkeys(comp.results.filter(pl.col("metric") == metric)["unit"]))
    mark = beats(comp)
    index = {(r["unit"], r["system"]): r for r in sc.iter_rows(named=True)}
    grid = []
    for unit in units:
        row = []
        for s in comp.systems:
            r = index.get((unit, s.name))
            if r is None:
                row.append(("–", []))
                continue
            row.append(
                (
                    score_cell(metric, r["mean"], r["std"], r["n_runs"]),
                    mark.get((metric, unit, s.name), []),
                )
            )
        grid.append(row)
    return units, grid


def unit_header(comp: Comparison) -> str:
    return "setting group" if comp.options.by == "group" else "setting"


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(x: str) -> str:
        return str(x).replace("|", "\\|")

    lines = [
        "| " + " | ".join(map(esc, headers)) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int = 0) -> str:
    """A plain fixed-width table for the console; with ``width``, the widest column is
    clipped (``…``) until the table fits."""
    cols = [[str(h), *(str(r[i]) for r in rows)] for i, h in enumerate(headers)]
    widths = [max(map(len, c)) for c in cols]
    while width and sum(widths) + 2 * (len(widths) - 1) > width and max(widths) > 8:
        widths[widths.index(max(widths))] -= 1

    def clip(x: str, w: int) -> str:
        return x if len(x) <= w else x[: w - 1] + "…"

    fmt_ = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt_.format(*(clip(str(h), w) for h, w in zip(headers, widths, strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append(fmt_.format(*(clip(str(x), w) for x, w in zip(r, widths, strict=True))))
    return "\n".join(line.rstrip() for line in lines)


def _verdict(r: dict, names: dict[str, str] | None = None) -> str:
    if not r["significant"] or r["better"] == "=":
        return "n.s."
    winner = r["system_b"] if r["better"] == "B" else r["system_a"]
    return f"{(names or {}).get(winner, winner)} better"


def comparison_rows(
    comp: Comparison, names: dict[str, str] | None = None
) -> tuple[list[str], list[list[str]]]:
    """The comparisons as strings, one row per test; ``names`` shortens system names."""
    nm = names or {}
    headers = [
        "metric",
        unit_header(comp),
        "A",
        "B",
        "mean A",
        "mean B",
        "Δ B−A",
        "95% CI (t)",
        "95% CI (boot)",
        "seed sd",
        "W/T/L",
        "n",
        "p",
        f"p ({comp.options.correction})",
        "result",
    ]
    rows = []
    for r in comp.results.iter_rows(named=True):
        m = r["metric"]
        sd = fmt(m, r["seed_sd"]) + ("!" if r["below_seed_sd"] else "")
        rows.append(
            [
                m,
                r["unit"],
                nm.get(r["system_a"], r["system_a"]),
                nm.get(r["system_b"], r["system_b"]),
                fmt(m, r["mean_a"]),
                fmt(m, r["mean_b"]),
                fmt(m, r["delta"], sign=True),
                fmt_ci(m, r["ci_low"], r["ci_high"]),
                fmt_ci(m, r["boot_low"], r["boot_high"]),
                sd,
                f"{r['wins']}/{r['ties']}/{r['losses']}",
                str(r["n"]),
                fmt_p(r["p_value"]),
                fmt_p(r["p_adjusted"]),
                _verdict(r, nm),
            ]
        )
    return headers, rows


def describe(comp: Comparison) -> str:
    """What was tested and how: test, pairing unit and n, correction, significant count."""
    o = comp.options
    n = comp.results.height
    sig = int(comp.results["significant"].sum())
    ns = sorted(set(comp.results["n"]))
    n_text = str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    base = f"baseline {o.baseline}" if o.baseline else "all pairs"
    return (
        f"{o.test} test per {PAIRING[comp.unit]}, n = {n_text} {PLURAL[comp.unit]}; {base}, by "
        f"{o.by}; {n} comparisons, p-values corrected with {o.correction} across all of "
        f"them; α = {o.alpha}: {sig} significant. W/T/L = {PLURAL[comp.unit]} where B beats / ties "
        "/ loses to A; seed sd = std over seed replicas (! when larger than |Δ|)"
        + (
            "; paired t with seed replicas is seed-aware (unit and seed variance, its t "
            "interval too)"
            if o.test == "paired-t" and any(s.n_runs > 1 for s in comp.systems)
            else ""
        )
        + (
            "; with seed replicas the bootstrap resamples units and seeds"
            if any(s.n_runs > 1 for s in comp.systems)
            else ""
        )
        + ("; LB: lower is better." if "LB" in o.metrics else ".")
    )


#: console columns kept (by header index): no t interval, W/T/L or uncorrected p
_CONSOLE = (0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 13, 14)


def console(comp: Comparison, width: int = 120) -> str:
    """The corrected comparison table as printed by ``xeval compare``: the bootstrap
    interval, the corrected p; systems by name when that fits ``width`` columns, else by letter
    (legend above), and cells clipped (``…``) if still too wide."""
    let = letters(comp)
    for names in ({}, let):
        headers, rows = comparison_rows(comp, names)
        headers = [headers[i] for i in _CONSOLE]
        headers[1] = "group" if comp.options.by == "group" else headers[1]
        rows = [[r[i] for i in _CONSOLE] for r in rows]
        text = text_table(headers, rows)
        if max(map(len, text.splitlines())) <= width:
            break
    text = text_table(headers, rows, width)
    parts = [textwrap.fill(describe(comp), width)]
    if names:
        parts += ["", "systems:", *(f"  ({let[s.name]}) {s.name}" for s in comp.systems)]
    parts += ["", text]
    if comp.warnings:
        parts += ["", *(textwrap.fill(f"warning: {w}", width) for w in comp.warnings)]
    return "\n".join(parts)


def markdown(comp: Comparison) -> str:
    """Scores with significance marks, then every comparison."""
    let = letters(comp)
    o = comp.options
    parts = ["# xeval compare", "", describe(comp), ""]
    parts.append(
        "Systems: "
        + "; ".join(f"**{let[s.name]}** = {s.name} ({_runs_note(s)})" for s in comp.systems)
    )
    parts.append("")
    for metric in o.metrics:
        units, grid = scores_grid(comp, metric)
        if not units:
            continue
        headers = [unit_header(comp), *(f"{let[s.name]}: {s.name}" for s in comp.systems)]
        rows = [[u, *(c + _sup(mk) for c, mk in row)] for u, row in zip(units, grid, strict=True)]
        parts += [f"## {metric}", "", _md_table(headers, rows), ""]
    parts.append(
        f"Superscripts: significantly better than that system ({o.test}, {o.correction}-"
        f"corrected p ≤ {o.alpha}). Scores are macro-averages over the settings of a "
        f"{unit_header(comp)}; ± is the std over seed replicas; tests pair "
        f"{PLURAL[comp.unit]}."
    )
    headers, rows = comparison_rows(comp)
    parts += ["", "## Comparisons", "", _md_table(headers, rows), ""]
    lb = lb_table(comp)
    if lb is not None:
        parts += [
            "## Language bias (max rank distance, multilingual settings; lower is better)",
            "",
            _md_table(lb.columns, [[_fmt_cell(v) for v in r] for r in lb.rows()]),
            "",
        ]
    return "\n".join(parts)


def _fmt_cell(v: object) -> str:
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def _runs_note(s) -> str:
    def seeds(r) -> str:
        ms = r.model_seed
        return f"seed {r.seed}" + (f", model seed {ms}" if ms is not None else "")

    if s.n_runs == 1:
        return s.runs[0].path.name
    runs = ", ".join(f"{r.path.name} ({seeds(r)})" for r in s.runs)
    return f"{s.n_runs} seed runs: {runs}"


def lb_table(comp: Comparison) -> pl.DataFrame | None:
    """Language bias per query language (rows) and system (columns), plus the macro mean."""
    lb = comp.setting_scores.filter((pl.col("metric") == "LB") & (pl.col("kind") == "multi"))
    if lb.is_empty():
        return None
    wide = lb.pivot(on="system", index="query_lang", values="mean").sort("query_lang")
    cols = [s.name for s in comp.systems if s.name in wide.columns]
    wide = wide.select("query_lang", *cols)
    macro = wide.select(pl.lit("macro mean").alias("query_lang"), *(pl.col(c).mean() for c in cols))
    return pl.concat([wide, macro]).rename({"query_lang": "query language"})


def _tex(text: str) -> str:
    rep = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "±": r"$\pm$",
        "Δ": r"$\Delta$",
        "−": "-",
        "≤": r"$\leq$",
        "α": r"$\alpha$",
    }
    return "".join(rep.get(c, c) for c in str(text))


def latex(comp: Comparison) -> str:
    """booktabs tables: scores with superscript marks per metric, then the comparisons."""
    let = letters(comp)
    o = comp.options
    out = ["% xeval compare: " + _tex(describe(comp)), "% needs \\usepackage{booktabs}", ""]
    for metric in o.metrics:
        units, grid = scores_grid(comp, metric)
        if not units:
            continue
        out += [
            r"\begin{table}[t]",
            r"\centering",
            r"\begin{tabular}{l" + "r" * len(comp.systems) + "}",
            r"\toprule",
            " & ".join(
                [
                    _tex(unit_header(comp)),
                    *(f"({let[s.name]}) {_tex(s.name)}" for s in comp.systems),
                ]
            )
            + r" \\",
            r"\midrule",
        ]
        for u, row in zip(units, grid, strict=True):
            cells = [_tex(c) + (f"$^{{\\mathrm{{{''.join(mk)}}}}}$" if mk else "") for c, mk in row]
            out.append(" & ".join([_tex(u), *cells]) + r" \\")
        out += [
            r"\bottomrule",
            r"\end{tabular}",
            rf"\caption{{{_tex(metric)}: superscripts mark systems this one is significantly "
            rf"better than ({_tex(o.test)}, {_tex(o.correction)}-corrected $p \leq {o.alpha}$).}}",
            r"\end{table}",
            "",
        ]
    headers, rows = comparison_rows(comp)
    out += [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{llll" + "r" * (len(headers) - 5) + "l}",
        r"\toprule",
        " & ".join(_tex(h) for h in headers) + r" \\",
        r"\midrule",
    ]
    for row, r in zip(rows, comp.results.iter_rows(named=True), strict=True):
        cells = [_tex(c) for c in row]
        if r["significant"]:
            cells[13] = rf"\textbf{{{cells[13]}}}"
        out.append(" & ".join(cells) + r" \\")
    out += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{Paired comparisons; bold: significant after {_tex(o.correction)} "
        rf"correction at $\alpha = {o.alpha}$.}}",
        r"\end{table}",
        "",
    ]
    return "\n".join(out)


def write_tables(comp: Comparison, out: Path) -> list[Path]:
    """comparisons.{csv,parquet}, scores.{csv,parquet}, settings.{csv,parquet}, report.{md,tex}."""
    written = []
    frames = {"comparisons": comp.results, "scores": comp.scores, "settings": comp.setting_scores}
    for stem, df in frames.items():
        for ext in ("csv", "parquet"):
            path = out / f"{stem}.{ext}"
            with atomic_path(path) as tmp:
                df.write_csv(tmp) if ext == "csv" else df.write_parquet(tmp)
            written.append(path)
    write_text(out / "report.md", markdown(comp))
    write_text(out / "report.tex", latex(comp))
    return [*written, out / "report.md", out / "report.tex"]

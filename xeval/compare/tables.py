"""Tables of a comparison: console text, Markdown, LaTeX (with significance marks), CSV, Parquet.

Significance marks follow ranx's convention: systems get letters a, b, c, ...; a score
carries the letters of the systems it is *significantly better than* (corrected p-value
<= alpha) in that unit and metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from xeval.compare.core import Comparison
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
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.1f}" if metric == "LB" else f"{value:.4f}"


def fmt_p(p: float) -> str:
    if p < 1e-4:
        return f"{p:.1e}"
    return f"{p:.4f}"


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


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain fixed-width table for the console."""
    widths = [
        max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
        for i, h in enumerate(headers)
    ]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(lines)


def _verdict(r: dict) -> str:
    if not r["significant"] or r["better"] == "=":
        return "n.s."
    return f"{r['system_b'] if r['better'] == 'B' else r['system_a']} better"


def comparison_rows(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """The comparisons as strings: one row per test."""
    headers = [
        "metric",
        "unit",
        "A",
        "B",
        "mean A",
        "mean B",
        "Δ B−A [95% CI]",
        "W/T/L",
        "n",
        "p",
        f"p ({comp.options.correction})",
        "result",
    ]
    rows = []
    for r in comp.results.iter_rows(named=True):
        m = r["metric"]
        ci = (
            f"{r['delta']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
            if m != "LB"
            else f"{r['delta']:+.1f} [{r['ci_low']:+.1f}, {r['ci_high']:+.1f}]"
        )
        rows.append(
            [
                m,
                r["unit"],
                r["system_a"],
                r["system_b"],
                fmt_value(m, r["mean_a"]),
                fmt_value(m, r["mean_b"]),
                ci,
                f"{r['wins']}/{r['ties']}/{r['losses']}",
                str(r["n"]),
                fmt_p(r["p_value"]),
                fmt_p(r["p_adjusted"]),
                _verdict(r),
            ]
        )
    return headers, rows


def describe(comp: Comparison) -> str:
    """One sentence on what was tested and how."""
    o = comp.options
    n = comp.results.height
    sig = int(comp.results["significant"].sum())
    pairing = "per (setting, query) cell" if o.unit == "observation" else "per query id"
    base = f"baseline {o.baseline}" if o.baseline else "all pairs"
    return (
        f"{o.test} test ({pairing}), {base}, by {o.by}; {n} comparisons, p-values corrected "
        f"with {o.correction} across all of them; α = {o.alpha}: {sig} significant. "
        "W/T/L = queries where B beats / ties / loses to A"
        + ("; LB: lower is better." if "LB" in o.metrics else ".")
    )


def console(comp: Comparison) -> str:
    """The corrected comparison table as printed by ``xeval compare``."""
    headers, rows = comparison_rows(comp)
    return describe(comp) + "\n\n" + text_table(headers, rows)


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
        f"corrected p ≤ {o.alpha}). Scores are macro-averages over settings; ± is the std "
        "over seed replicas."
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
            cells[10] = rf"\textbf{{{cells[10]}}}"
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

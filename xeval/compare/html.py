"""One self-contained HTML report per comparison.

Everything is inside the file: figures as base64 SVG data URIs, tables, the language-bias
table and the provenance (``run.json``) of every run. A small inline script marks the
page once loaded (``<body data-xeval-rendered="ok">``, or ``broken-images`` when a figure
failed to decode), which a headless browser test reads back with ``--dump-dom``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from xeval.compare import tables
from xeval.compare.core import PAIRING, PLURAL, Comparison
from xeval.compare.plots import FigureFile
from xeval.provenance import write_text

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2rem}h3{font-size:1.05rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
td.l{text-align:left}tr.sig td{background:#eef7ee}tr.sig td.verdict{font-weight:600}
sup{color:#1a6b1a;font-weight:600}.note{color:#555;font-size:.9rem}
.figs{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;border:1px solid #eee;padding:.4rem}
figure img{max-width:min(100%,760px);height:auto;display:block}figcaption{font-size:.8rem;color:#555}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.75rem;max-height:24rem}
.scroll{overflow-x:auto}.warn{background:#fff4e0;border:1px solid #e0b060;padding:.4rem .8rem}code{background:#f3f3f3;padding:0 .2rem}
"""

_SCRIPT = """
(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message)); });
  window.addEventListener('load', function () {
    var imgs = Array.prototype.slice.call(document.images);
    var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
    var body = document.body;
    body.setAttribute('data-xeval-images', String(imgs.length));
    body.setAttribute('data-xeval-broken', String(broken.length));
    body.setAttribute('data-xeval-tables', String(document.querySelectorAll('table').length));
    body.setAttribute('data-xeval-rendered',
      errors.length ? 'script-errors' : (broken.length ? 'broken-images' : 'ok'));
    var s = document.getElementById('render-status');
    if (s) { s.textContent = imgs.length + ' figures, ' + broken.length + ' broken'; }
  });
})();
"""


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    row_class: Sequence[str] | None = None,
    raw: bool = False,
) -> str:
    """An HTML table; cells are escaped unless ``raw``."""

    def cell(x: str) -> str:
        return str(x) if raw else escape(str(x))

    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = []
    for k, r in enumerate(rows):
        cls = f' class="{row_class[k]}"' if row_class and row_class[k] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>'
        + "".join(body)
        + "</tbody></table></div>"
    )


def _img(fig: FigureFile) -> str:
    data = base64.b64encode(fig.svg.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{escape(fig.title)}" src="data:image/svg+xml;base64,{data}">'
        f"<figcaption>{escape(fig.title)} — <code>figures/{escape(fig.svg.name)}</code>, "
        f"<code>.png</code></figcaption></figure>"
    )


def _scores_section(comp: Comparison) -> str:
    let = tables.letters(comp)
    o = comp.options
    out = []
    for metric in o.metrics:
        units, grid = tables.scores_grid(comp, metric)
        if not units:
            continue
        headers = [tables.unit_header(comp), *(f"({let[s.name]}) {s.name}" for s in comp.systems)]
        rows = [
            [escape(u), *(escape(c) + (f"<sup>{''.join(mk)}</sup>" if mk else "") for c, mk in row)]
            for u, row in zip(units, grid, strict=True)
        ]
        out.append(f"<h3>{escape(metric)}</h3>" + _fold(_table(headers, rows, raw=True), len(rows)))
    out.append(
        f'<p class="note">Superscripts: significantly better than the system with that letter '
        f"({escape(o.test)}, {escape(o.correction)}-corrected p ≤ {o.alpha}). Scores are "
        f"macro-averages over the settings of a {tables.unit_header(comp)}; ± is the standard "
        f"deviation over seed replicas; the tests pair {PLURAL[comp.unit]}.</p>"
    )
    return "\n".join(out)


def _comparisons_section(comp: Comparison) -> str:
    headers, rows = tables.comparison_rows(comp)
    cls = ["sig" if s else "" for s in comp.results["significant"]]
    html_rows = [
        [escape(c) for c in r[:-1]] + [f'<span class="verdict">{escape(r[-1])}</span>']
        for r in rows
    ]
    return _fold(_table(headers, html_rows, cls, raw=True), len(rows))


def _fold(table: str, n_rows: int, limit: int = 30) -> str:
    """Long tables start folded (a click opens them); short ones are shown."""
    if n_rows <= limit:
        return table
    return f"<details><summary>{n_rows} rows (click to show)</summary>{table}</details>"


def _lb_section(comp: Comparison) -> str:
    lb = tables.lb_table(comp)
    if lb is None:
        return '<p class="note">No language-bias (LB) values in these runs.</p>'
    rows = [[tables._fmt_cell(v) for v in r] for r in lb.rows()]
    return (
        _table(lb.columns, rows) + '<p class="note">Mean over the queries of each query '
        "language of (rank of the worst-ranked relevant item − rank of the best-ranked one) "
        "over the pooled multilingual corpus; lower is better.</p>"
    )


def _provenance_section(comp: Comparison) -> str:
    let = tables.letters(comp)
    out = []
    headers = [
        "system",
        "run folder",
        "seed",
        "model",
        "model fingerprint",
        "benchmark",
        "benchmark fingerprint",
        "backend",
        "k",
        "prompts",
        "created",
        "command",
    ]
    rows = []
    for s in comp.systems:
        for r in s.runs:
            m, b = r.meta.get("model") or {}, r.meta.get("benchmark") or {}
            rows.append(
                [
                    f"({let[s.name]}) {s.name}",
                    str(r.path),
                    str(r.seed),
                    str(m.get("path") or m.get("name")),
                    str(m.get("fingerprint", ""))[:16],
                    str(b.get("name")),
                    str(b.get("fingerprint", ""))[:16],
                    str(r.meta.get("backend")),
                    str(r.meta.get("k")),
                    json.dumps(r.meta.get("prompts"), ensure_ascii=False),
                    str(r.meta.get("created", "")),
                    str(r.meta.get("command", "")),
                ]
            )
    out.append(_table(headers, rows))
    for s in comp.systems:
        for r in s.runs:
            out.append(
                f"<details><summary>run.json of {escape(str(r.path))}</summary><pre>"
                + escape(json.dumps(r.meta, indent=2, ensure_ascii=False, default=str))
                + "</pre></details>"
            )
    return "\n".join(out)


def _warnings(comp: Comparison) -> str:
    if not comp.warnings:
        return ""
    items = "".join(f"<li>{escape(w)}</li>" for w in comp.warnings)
    return f'<div class="warn"><b>Warnings</b><ul>{items}</ul></div>'


def render(comp: Comparison, figures: Sequence[FigureFile], meta: dict[str, Any]) -> str:
    """The report as one HTML string."""
    let = tables.letters(comp)
    o = comp.options
    title = f"xeval compare: {', '.join(s.name for s in comp.systems)}"
    systems = "".join(
        f"<li><b>({let[s.name]})</b> {escape(s.name)} — {escape(tables._runs_note(s))}</li>"
        for s in comp.systems
    )
    figs = {k: [f for f in figures if f.kind == k] for k in ("bars", "heatmap", "difference")}
    fig_html = "".join(
        f"<h3>{escape(h)}</h3><div class='figs'>{''.join(_img(f) for f in figs[k])}</div>"
        for k, h in (
            ("bars", "Scores per setting group"),
            ("heatmap", "Query × document language"),
            ("difference", "Differences between systems (B − A)"),
        )
        if figs[k]
    )
    opts = escape(
        json.dumps(
            {k: v for k, v in meta.get("options", {}).items()}, ensure_ascii=False, default=str
        )
    )
    pairing = f"{PAIRING[comp.unit]}; n = {comp.n_units} {PLURAL[comp.unit]}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{_CSS}</style></head>
<body data-xeval-rendered="pending">
<h1>{escape(title)}</h1>
<p>{escape(tables.describe(comp))}</p>
<p class="note">Pairing unit: {escape(pairing)}. Effect size: mean difference B − A
with a t-based and a paired bootstrap (BCa, {o.bootstrap} resamples, seed {o.seed}; with
seed replicas a two-level percentile bootstrap over units and seeds) 95 % confidence
interval; seed sd: std of a system's score over its seed replicas. Created {escape(str(meta.get("created", "")))} by
<code>{escape(str(meta.get("command", "")))}</code>. Render check: <span id="render-status">
not run</span>.</p>
{_warnings(comp)}
<h2>Systems</h2><ul>{systems}</ul>
<h2>Scores</h2>{_scores_section(comp)}
<h2>Comparisons</h2>{_comparisons_section(comp)}
<h2>Figures</h2>{fig_html or '<p class="note">No figures.</p>'}
<h2>Language bias</h2>{_lb_section(comp)}
<h2>Provenance</h2>{_provenance_section(comp)}
<details><summary>options and versions</summary><pre>{opts}
{escape(json.dumps(meta.get("versions", {}), indent=2))}</pre></details>
<script>{_SCRIPT}</script>
</body></html>
"""


def write_html(
    comp: Comparison, figures: Sequence[FigureFile], path: Path, meta: dict[str, Any]
) -> Path:
    """Write the report atomically."""
    write_text(path, render(comp, figures, meta))
    return path

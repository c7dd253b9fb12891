"""Report rendering: a list of blocks to Markdown and to self-contained HTML."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

Block = tuple  # ("h1"|"h2"|"h3"|"p", text) | ("table", header, rows) | ("img", path, caption)


def fmt(x: Any, metric: str = "") -> str:
    """A score to 3 decimals (LB to 1); missing values as a dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.1f}" if metric == "LB" else f"{x:.3f}"


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

"""Cut a text to a length at a paragraph, sentence or word boundary."""

from __future__ import annotations

import re

_SENT_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")


def bound_length(text: str, max_chars: int, min_chars: int = 0) -> str:
    """Cut ``text`` to at most ``max_chars``: whole paragraphs, else sentences, else words.

    Returns "" when nothing of at least ``min_chars`` fits (the caller drops the unit).
    """
    text = text.strip()
    if len(text) <= max_chars:
        return text if len(text) >= min_chars else ""
    paras = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    out = ""
    for p in paras:
        cand = f"{out}\n\n{p}" if out else p
        if len(cand) > max_chars:
            break
        out = cand
    if not out:  # the first paragraph alone is too long: cut at a sentence, then a word
        first = paras[0]
        for piece in _SENT_END.split(first):
            cand = f"{out} {piece}".strip() if out and not _is_cjk_end(out) else out + piece
            if len(cand) > max_chars:
                break
            out = cand
        if not out:
            cut = first[:max_chars]
            sp = cut.rfind(" ")
            out = cut[:sp] if sp > max_chars // 2 else cut
    out = out.strip()
    return out if len(out) >= min_chars else ""


def _is_cjk_end(s: str) -> bool:
    return bool(s) and s[-1] in "。！？"

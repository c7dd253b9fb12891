"""Technical training pairs from the Python documentation the ``python-faq`` benchmark
does not use.

The Python documentation **outside** ``faq/`` (the benchmark's files are never read into
pairs): a section heading -> the paragraph(s) that follow it, aligned across languages by
the English ``msgid`` of the heading and of every paragraph. Units sharing any English or
translated string with the FAQ are dropped as well, so no text of the benchmark reaches
training. One row per unit and ordered language pair (X, Y) where the unit exists in
both, X == Y included.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from xeval.benchmark.builders._po import (
    PY_DOCS_LANGS,
    PoEntry,
    available_languages,
    iter_po_files,
    rst_inline_to_text,
)
from xeval.benchmark.builders.python_faq import SOURCE
from xeval.errors import XevalError
from xeval.text import bound_length, dedup_key, keep_translation
from xeval.training.pairs import (
    PairOption,
    hash_sample,
    pairs_from_units,
    register_pairs,
    select_languages,
)

PYTHON_DOCS_LANGS = ("en", *PY_DOCS_LANGS)
MAX_PARAGRAPHS = 3


def drop_shared_text(
    units: dict[str, dict[str, tuple[str, str]]], banned: set[str]
) -> tuple[dict[str, dict[str, tuple[str, str]]], int]:
    """Drop every unit any of whose query or passage paragraphs is in ``banned`` (normalised)."""
    out = {}
    for unit, by_lang in units.items():
        texts = [t for q, p in by_lang.values() for t in (q, *p.split("\n\n"))]
        if any(dedup_key(t) in banned for t in texts):
            continue
        out[unit] = by_lang
    return out, len(units) - len(out)


def drop_repeated_text(
    units: dict[str, dict[str, tuple[str, str]]],
) -> tuple[dict[str, dict[str, tuple[str, str]]], int]:
    """Keep the units none of whose headings or passages (any language, normalised) occurs
    in another unit.

    A heading such as "Examples" (114 sections of the English docs) does not identify its
    section: as a query it has many right answers while its pair marks one, and a unit held
    out for the dev curve would share its text with training pairs. The justice-canada
    benchmark keeps unique headings for the same reason.
    """
    owners: dict[str, set[str]] = defaultdict(set)
    for unit, by_lang in units.items():
        for q, p in by_lang.values():
            owners[dedup_key(q)].add(unit)
            owners[dedup_key(p)].add(unit)
    shared = {u for us in owners.values() if len(us) > 1 for u in us}
    return {u: v for u, v in units.items() if u not in shared}, len(shared)


def is_doc_heading(e: PoEntry, nxt: PoEntry | None) -> bool:
    """A section title: one short line, no closing punctuation, a paragraph after it.

    The .po files do not mark titles; this rule keeps one-line entries of 3-80
    characters that start with a letter or a module role (``:mod:`os` --- ...``), do not
    end like a sentence or a list item, and whose next entry is at least two source lines
    further (title, underline, blank line) and is prose (>= 60 characters ending with
    sentence punctuation). Table cells and list items rarely pass all of these.
    """
    s = e.msgid.strip()
    if not (3 <= len(s) <= 80) or "\n" in s or nxt is None:
        return False
    if not (s[0].isupper() or s.startswith(":mod:")):
        return False
    if s.endswith((".", ",", ";", ":", "!", "?")) or s.count("`") % 2:
        return False
    if e.line and nxt.line and nxt.line - e.line < 2:
        return False
    return _is_prose(nxt.msgid)


def _is_prose(s: str) -> bool:
    s = s.strip()
    return len(s) >= 60 and s.endswith((".", ":", "!", "?", ")")) and " " in s


def _doc_units(
    entries: tuple[PoEntry, ...], relpath: str, max_chars: int
) -> list[tuple[str, PoEntry, list[PoEntry]]]:
    """(unit id, heading, passage paragraphs) for each heading of one file."""
    out = []
    n = len(entries)
    for i, e in enumerate(entries):
        nxt = entries[i + 1] if i + 1 < n else None
        if not is_doc_heading(e, nxt):
            continue
        paras: list[PoEntry] = []
        total = 0
        for j in range(i + 1, min(n, i + 1 + MAX_PARAGRAPHS)):
            p = entries[j]
            if not _is_prose(p.msgid) or is_doc_heading(p, entries[j + 1] if j + 1 < n else None):
                break
            size = len(rst_inline_to_text(p.msgid))
            if paras and total + size > max_chars:
                break
            paras.append(p)
            total += size
        key = "\x1f".join([e.msgid, *(p.msgid for p in paras)])
        out.append((f"{relpath}#{hashlib.sha1(key.encode()).hexdigest()[:12]}", e, paras))
    return out


@register_pairs(
    "python-docs",
    description="Python documentation outside faq/: section heading -> following "
    "paragraph(s), aligned by the English msgid; headings and passages unique across units",
    source=SOURCE,
    source_help="folder with python-docs-LANG-COMMIT.tar.xz (or the unpacked trees)",
    options=[
        PairOption("languages", str, None, "Comma-separated languages (default: all)."),
        PairOption("max_passage_chars", int, 1000, "Longest passage, in characters."),
    ],
)
def python_docs_pairs(
    source: Path,
    max_units: int | None = None,
    languages: str | Sequence[str] | None = None,
    max_passage_chars: int = 1000,
) -> pl.DataFrame:
    """Heading -> following paragraph(s) of the Python docs outside the FAQ, every language pair.

    A unit exists in a translation only when the heading and every paragraph are
    translated (not fuzzy) and pass the quality filters; English exists for every unit.
    Units that share a heading or passage with another unit, or any text with the FAQ,
    are dropped (:func:`drop_repeated_text`, :func:`drop_shared_text`).
    """
    langs = select_languages(languages, PYTHON_DOCS_LANGS, "python-docs pairs")
    src = source
    present = available_languages(src)
    read_langs = [x for x in present if x in langs] or [x for x in present if x in PY_DOCS_LANGS]
    if languages is not None and not set(langs) - {"en"} <= set(present):
        missing = sorted(set(langs) - {"en"} - set(present))
        raise XevalError(f"python-docs source has no language(s) {missing}", file=src)
    if not read_langs:
        raise XevalError("no python-docs translations in the source", file=src)
    faq_text: set[str] = set()
    units: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    cap = int(max_passage_chars * 1.5)
    for po in iter_po_files(src, read_langs, lambda rel: True):
        if po.relpath.startswith("faq/"):
            faq_text.update(dedup_key(rst_inline_to_text(e.msgid)) for e in po.entries)
            faq_text.update(dedup_key(rst_inline_to_text(e.msgstr)) for e in po.entries if e.msgstr)
            continue
        for unit, head, paras in _doc_units(po.entries, po.relpath, max_passage_chars):
            if not paras:
                continue
            en_q = rst_inline_to_text(head.msgid)
            en_p = bound_length("\n\n".join(rst_inline_to_text(p.msgid) for p in paras), cap)
            if "en" in langs and en_p:
                units[unit]["en"] = (en_q, en_p)
            if po.lang not in langs or not head.translated or not all(p.translated for p in paras):
                continue
            q = rst_inline_to_text(head.msgstr)
            p = bound_length("\n\n".join(rst_inline_to_text(x.msgstr) for x in paras), cap)
            if keep_translation(q, po.lang, en_q)[0] and keep_translation(p, po.lang, en_p)[0]:
                units[unit][po.lang] = (q, p)
    kept, _ = drop_shared_text(dict(units), faq_text)
    kept, _ = drop_repeated_text(kept)
    keep = hash_sample(kept, max_units)
    return pairs_from_units({u: kept[u] for u in keep}, "python-docs")

"""Shared helpers of the legal builders: archive-or-folder sources, XML text, aligned units.

A legal source is either the publisher's ``.tar.xz`` (read as a stream, never unpacked
to disk), a folder holding that archive, or the unpacked tree. :func:`read_members`
returns the wanted members' bytes either way, and turns a missing, truncated or corrupt
archive into an :class:`~xeval.errors.XevalError` that names the file and member.
"""

from __future__ import annotations

import lzma
import random
import re
import tarfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import polars as pl

from xeval.errors import XevalError
from xeval.text import dedup_key, in_expected_script
from xeval.training.pairs import pairs_from_units


# ---- sources ------------------------------------------------------------------------------
def find_archive(folder: Path, glob: str) -> Path | None:
    """The single archive matching ``glob`` in ``folder`` (None if there is none)."""
    hits = sorted(folder.glob(glob))
    if len(hits) > 1:
        raise XevalError(f"several archives match {glob!r}: {[h.name for h in hits]}", file=folder)
    return hits[0] if hits else None


def read_members(
    source: Path, archive_glob: str, want: Callable[[str], bool], *, what: str
) -> dict[str, bytes]:
    """Bytes of every member/file whose archive-relative name satisfies ``want``.

    ``source`` is an archive, a folder holding one archive matching ``archive_glob``, or
    the unpacked tree (names are then relative to ``source``). ``what`` names the source
    in errors. Nothing matching is an error too (wrong folder).
    """
    source = Path(source)
    if not source.exists():
        raise XevalError(f"{what} source does not exist", file=source)
    if source.is_dir():
        archive = find_archive(source, archive_glob)
        if archive is None:
            out = {
                str(p.relative_to(source)).replace("\\", "/"): p.read_bytes()
                for p in sorted(source.rglob("*"))
                if p.is_file() and want(str(p.relative_to(source)).replace("\\", "/"))
            }
            if not out:
                raise XevalError(
                    f"no {what} files here: expected an archive matching {archive_glob!r} "
                    "or the unpacked tree",
                    file=source,
                )
            return out
        source = archive
    out = _read_tar(source, want)
    if not out:
        raise XevalError(f"archive holds no {what} files", file=source)
    return out


def _read_tar(path: Path, want: Callable[[str], bool]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    member = None
    try:
        with tarfile.open(path, "r|*") as tar:  # streaming: one pass, no seeking
            for member in tar:
                if member.isfile() and want(member.name):
                    f = tar.extractfile(member)
                    if f is None:
                        continue
                    data = f.read()
                    if len(data) != member.size:
                        raise EOFError(f"member cut short ({len(data)} of {member.size} bytes)")
                    out[member.name] = data
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as exc:
        where = f"member {member.name!r}" if member is not None else "start of archive"
        raise XevalError(
            f"truncated or corrupt archive near {where} ({type(exc).__name__}: {exc})", file=path
        ) from None
    return out


def parse_xml(data: bytes, name: str) -> ET.Element:
    """Parse an XML member; a malformed one names the member."""
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise XevalError(f"malformed XML ({exc})", file=name) from None


# ---- text -------------------------------------------------------------------------------
_WS = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:)\]])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[])\s+")


def clean(text: str) -> str:
    """Collapse whitespace and the spaces block boundaries leave before punctuation."""
    text = _WS.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _SPACE_AFTER_OPEN.sub(r"\1", text)


def local(tag: str) -> str:
    """Tag name without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def element_text(
    elem: ET.Element,
    *,
    skip: Iterable[str] = (),
    inline: Iterable[str] = (),
    drop_parenthesised: Iterable[str] = (),
) -> str:
    """Text of ``elem``: tags in ``skip`` are left out (their tails kept), elements not in
    ``inline`` are separated by spaces, and tags in ``drop_parenthesised`` are removed
    together with the brackets around them (``term (terme)`` -> ``term``)."""
    skip_s, inline_s, paren_s = set(skip), set(inline), set(drop_parenthesised)
    parts: list[str] = []

    def walk(e: ET.Element) -> None:
        if e.text:
            parts.append(e.text)
        for ch in e:
            tag = local(ch.tag) if isinstance(ch.tag, str) else ""
            if tag in paren_s:
                parts.append("\x00")
            elif tag not in skip_s and isinstance(ch.tag, str):
                sep = "" if tag in inline_s else " "
                parts.append(sep)
                walk(ch)
                parts.append(sep)
            if ch.tail:
                parts.append(ch.tail)

    walk(elem)
    text = "".join(parts)
    if paren_s:
        text = re.sub(r"\s*\(\s*\x00\s*\)", "", text).replace("\x00", "")
    return clean(text)


def length_ok(text: str, lo: int, hi: int) -> bool:
    return lo <= len(text) <= hi


# ---- aligned units ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """One provision in every language: ``doc`` (Act, statute) + ``key`` (its label there)."""

    doc: str
    key: str
    heading: dict[str, str | None]
    text: dict[str, str]

    @property
    def unit_id(self) -> str:
        return f"{self.doc}/{self.key}"


def quality_filter(
    units: Iterable[Unit], langs: Sequence[str], min_chars: int, max_chars: int
) -> tuple[list[Unit], Counter[str]]:
    """Drop units whose text is identical to the pivot language's (``langs[0]``), out of
    ``[min_chars, max_chars]``, not mostly in the language's script, or a later duplicate of
    a kept unit's text in any language; count the drops by reason."""
    kept: list[Unit] = []
    dropped: Counter[str] = Counter()
    seen: dict[str, set[str]] = {lang: set() for lang in langs}
    pivot = langs[0]
    for u in units:
        keys = {lang: dedup_key(u.text[lang]) for lang in langs}
        if any(keys[lang] == keys[pivot] for lang in langs[1:]):
            dropped[f"identical to {pivot}"] += 1
        elif not all(length_ok(u.text[lang], min_chars, max_chars) for lang in langs):
            dropped["length out of bounds"] += 1
        elif not all(in_expected_script(u.text[lang], lang) for lang in langs):
            dropped["wrong script"] += 1
        elif any(keys[lang] in seen[lang] for lang in langs):
            dropped["duplicate text"] += 1
        else:
            kept.append(u)
            for lang in langs:
                seen[lang].add(keys[lang])
    return kept, dropped


def query_units(
    units: Sequence[Unit], langs: Sequence[str], head_min: int, head_max: int
) -> tuple[dict[str, list[Unit]], Counter[str]]:
    """Per language, the units whose heading can be a query (the *restricting* policy).

    A heading qualifies when the unit has one in every language, each within
    ``[head_min, head_max]`` characters and *unique* among ``units`` in every language
    (case- and punctuation-insensitive), so "Definitions" and the like give no query.
    A non-pivot heading identical to the pivot's (a cognate such as "Application") gives
    no query in that language; the pivot query stays.
    """
    counts = {
        lang: Counter(dedup_key(u.heading[lang] or "") for u in units if u.heading[lang])
        for lang in langs
    }
    out: dict[str, list[Unit]] = {lang: [] for lang in langs}
    why: Counter[str] = Counter()
    pivot = langs[0]
    for u in units:
        heads = [u.heading[lang] for lang in langs]
        if not all(heads):
            why["no heading"] += 1
            continue
        keys = {lang: dedup_key(u.heading[lang] or "") for lang in langs}
        if any(counts[lang][keys[lang]] > 1 for lang in langs):
            why["heading not unique"] += 1
            continue
        if not all(length_ok(h or "", head_min, head_max) for h in heads):
            why["heading length out of bounds"] += 1
            continue
        out[pivot].append(u)
        for lang in langs[1:]:
            if keys[lang] == keys[pivot]:
                why[f"{lang} heading identical to {pivot} ({lang} query dropped)"] += 1
            else:
                out[lang].append(u)
    return out, why


def parallel_tables(
    units: Sequence[Unit],
    qunits: dict[str, list[Unit]],
    langs: Sequence[str],
) -> tuple[list[dict], list[dict], list[dict]]:
    """Corpus, query and pooled qrel rows: a unit's query is relevant to its text in every
    language (doc id ``LANG-UNIT``, query id ``LANG-q-UNIT``)."""
    docs = [
        {
            "doc_id": f"{lang}-{u.unit_id}",
            "lang": lang,
            "text": u.text[lang],
            "title": u.doc,
            "unit_id": u.unit_id,
        }
        for u in units
        for lang in langs
    ]
    queries = [
        {
            "query_id": f"{lang}-q-{u.unit_id}",
            "lang": lang,
            "text": u.heading[lang],
            "unit_id": u.unit_id,
        }
        for lang in langs
        for u in qunits[lang]
    ]
    qrels = [
        {"query_id": q["query_id"], "doc_id": f"{dl}-{q['unit_id']}", "relevance": 1}
        for q in queries
        for dl in langs
    ]
    return docs, queries, qrels


def unit_keys(units: Sequence[Unit], langs: Sequence[str]) -> set[str]:
    """De-duplication keys of every text and heading of ``units``."""
    keys = {dedup_key(u.text[lang]) for u in units for lang in langs}
    keys |= {
        dedup_key(u.heading[lang] or "") for u in units for lang in langs if u.heading.get(lang)
    }
    return keys


@dataclass(frozen=True)
class PairRules:
    """How a legal source turns its units into training pairs."""

    langs: Sequence[str]
    source: str
    head_bounds: tuple[int, int]
    max_units: int | None = None
    seed: int = 0


def legal_pairs(units: Sequence[Unit], exclude: set[str], rules: PairRules) -> pl.DataFrame:
    """Heading -> provision pairs of the ``units`` none of whose texts or headings is in
    ``exclude``, whose headings can be queries (:func:`query_units`), every language pair."""
    langs = rules.langs
    units = [
        u
        for u in units
        if not any(
            dedup_key(u.text[lang]) in exclude or dedup_key(u.heading.get(lang) or "") in exclude
            for lang in langs
        )
    ]
    chosen = query_units(units, langs, *rules.head_bounds)[0][langs[0]]
    if rules.max_units is not None and rules.max_units < len(chosen):
        picked = random.Random(rules.seed).sample(chosen, rules.max_units)
        chosen = sorted(picked, key=lambda u: u.unit_id)
    return pairs_from_units(
        {
            u.unit_id: {lang: (u.heading[lang] or "", u.text[lang]) for lang in langs}
            for u in chosen
        },
        rules.source,
    )


def counts_table(counts: dict[str, dict[str, int]]) -> str:
    """Markdown table of queries and documents per language."""
    rows = [f"| {lang} | {c['queries']} | {c['documents']} |" for lang, c in counts.items()]
    return "\n".join(["| lang | queries | documents |", "|---|---|---|", *rows])

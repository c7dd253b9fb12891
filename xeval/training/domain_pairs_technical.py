"""Technical-domain training pairs from what the technical benchmarks do not use.

Both functions return the pairs table of :mod:`xeval.training.pairs`::

    query, passage, query_lang, passage_lang, unit_id, source

one row per unit and ordered language pair (X, Y) where the unit exists in both,
X == Y included.

- :func:`python_docs_pairs`: the Python documentation **outside** ``faq/`` (the
  ``python-faq`` benchmark's files are never read into pairs): a section heading ->
  the paragraph(s) that follow it, aligned across languages by the English ``msgid`` of
  the heading and of every paragraph. Units sharing any English string with the FAQ are
  dropped as well, so no text of the benchmark reaches training.
- :func:`ddtp_pairs`: Debian package descriptions (DDTP ``Translation-*.lz4``): synopsis
  (package name masked) -> long description, aligned by ``Package`` + ``Description-md5``.
  Man pages are not package descriptions, so nothing here is in the ``manpages``
  benchmark; descriptions that quote a benchmark passage would be dropped by the
  same text check (:func:`drop_shared_text`).
"""

from __future__ import annotations

import hashlib
import lzma
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from xeval.benchmark.builders._po import (
    PY_DOCS_LANGS,
    PoEntry,
    available_languages,
    iter_po_files,
    rst_inline_to_text,
)
from xeval.benchmark.builders._quality import bound_length, keep_translation, normalise
from xeval.errors import XevalError
from xeval.sources import SourceSpec, resolve_source
from xeval.tables import PAIRS

PYTHON_DOCS_LANGS = ("en", *PY_DOCS_LANGS)
DDTP_LANGS = (
    "en", "de", "es", "fi", "fr", "it", "ja", "ko", "nl", "pl", "pt_BR", "ru", "sv", "zh_CN",
)  # fmt: skip
DDTP_SOURCE = SourceSpec(
    relpath="ddtp",
    licence="Debian DDTP contributions (package descriptions: the packages' licences)",
    upstream="Debian 12 (bookworm) main/i18n/Translation-*.lz4",
    required=("Translation-en.lz4",),
)
PYTHON_DOCS_SOURCE = SourceSpec(
    relpath="python-docs",
    licence="translations CC0 1.0; English text PSF License",
    upstream="github.com/python/python-docs-{es,fr,ja,ko,pt-br,zh-cn}",
)
MASK = "___"
MAX_PARAGRAPHS = 3


# ---- shared ---------------------------------------------------------------------------------
def _langs(
    languages: str | Sequence[str] | None, known: tuple[str, ...], what: str
) -> tuple[str, ...]:
    if languages is None:
        return known
    if isinstance(languages, str):
        languages = [x.strip() for x in languages.split(",") if x.strip()]
    bad = sorted(set(languages) - set(known))
    if bad:
        raise XevalError(f"{what} has no language(s) {bad}; choose from {list(known)}")
    return tuple(x for x in known if x in set(languages))


def _pick_units(units: Iterable[str], max_units: int | None) -> set[str]:
    """All units, or ``max_units`` of them chosen by a hash of the id (stable, seed-free)."""
    units = sorted(units)
    if max_units is None or max_units >= len(units):
        return set(units)
    return set(sorted(units, key=lambda u: hashlib.sha1(u.encode()).hexdigest())[:max_units])


def pairs_from_units(units: dict[str, dict[str, tuple[str, str]]], source: str) -> pl.DataFrame:
    """``{unit: {lang: (query, passage)}}`` -> one row per unit and ordered language pair."""
    rows: dict[str, list[str]] = {c: [] for c in PAIRS.columns}
    for unit in sorted(units):
        by_lang = units[unit]
        for x in sorted(by_lang):
            for y in sorted(by_lang):
                rows["query"].append(by_lang[x][0])
                rows["passage"].append(by_lang[y][1])
                rows["query_lang"].append(x)
                rows["passage_lang"].append(y)
                rows["unit_id"].append(unit)
                rows["source"].append(source)
    return pl.DataFrame(rows, schema=PAIRS.columns)


def drop_shared_text(
    units: dict[str, dict[str, tuple[str, str]]], banned: set[str]
) -> tuple[dict[str, dict[str, tuple[str, str]]], int]:
    """Drop every unit any of whose query or passage paragraphs is in ``banned`` (normalised)."""
    out = {}
    for unit, by_lang in units.items():
        texts = [t for q, p in by_lang.values() for t in (q, *p.split("\n\n"))]
        if any(normalise(t) in banned for t in texts):
            continue
        out[unit] = by_lang
    return out, len(units) - len(out)


# ---- Python docs ---------------------------------------------------------------------------
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


def python_docs_pairs(
    source: str | Path | None = None,
    languages: str | Sequence[str] | None = None,
    max_units: int | None = None,
    max_passage_chars: int = 1000,
) -> pl.DataFrame:
    """Heading -> following paragraph(s) of the Python docs outside the FAQ, every language pair.

    A unit exists in a translation only when the heading and every paragraph are
    translated (not fuzzy) and pass the quality filters; English exists for every unit.
    """
    langs = _langs(languages, PYTHON_DOCS_LANGS, "python-docs pairs")
    src = resolve_source(PYTHON_DOCS_SOURCE, source)
    if src.is_dir() and (src / "python-docs").is_dir():
        src = src / "python-docs"
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
            faq_text.update(normalise(rst_inline_to_text(e.msgid)) for e in po.entries)
            faq_text.update(normalise(rst_inline_to_text(e.msgstr)) for e in po.entries if e.msgstr)
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
    keep = _pick_units(kept, max_units)
    return pairs_from_units({u: kept[u] for u in keep}, "python-docs")


# ---- DDTP ------------------------------------------------------------------------------------
def read_ddtp(path: Path, lang: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(package, md5): (synopsis, long description)}`` of one ``Translation-LANG.lz4``."""
    import lz4.frame

    try:
        raw = lz4.frame.decompress(path.read_bytes())
    except FileNotFoundError:
        raise XevalError("missing DDTP file", file=path) from None
    except (RuntimeError, ValueError, OSError, lzma.LZMAError) as exc:
        raise XevalError(f"corrupt or truncated lz4 frame ({exc})", file=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XevalError(f"not UTF-8 ({exc})", file=path) from None
    out: dict[tuple[str, str], tuple[str, str]] = {}
    field = f"Description-{lang}"
    for n, stanza in enumerate(text.split("\n\n")):
        if not stanza.strip():
            continue
        pkg = md5 = None
        desc: list[str] = []
        in_desc = False
        for line in stanza.split("\n"):
            if line.startswith(" ") and in_desc:
                desc.append(line[1:])
                continue
            in_desc = False
            name, _, value = line.partition(":")
            if name == "Package":
                pkg = value.strip()
            elif name == "Description-md5":
                md5 = value.strip()
            elif name == field:
                in_desc = True
                desc = [value.strip()]
        if not (pkg and md5 and desc):
            raise XevalError(
                f"stanza lacks Package, Description-md5 or {field}", file=path, record=n + 1
            )
        out[(pkg, md5)] = (desc[0], _long_description(desc[1:]))
    if not out:
        raise XevalError("no DDTP stanzas", file=path)
    return out


def _long_description(lines: list[str]) -> str:
    """deb822 long description -> paragraphs (``.`` lines separate paragraphs)."""
    paras: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == ".":
            paras.append([])
        else:
            paras[-1].append(line.strip())
    return "\n\n".join(" ".join(p) for p in paras if p)


def mask_package(synopsis: str, package: str) -> str:
    """Mask the package name (and its stem without lib/python3-/-dev...) in a synopsis."""
    base = re.sub(r"(-dev|-doc|-common|-data|-utils|-tools|-bin|\d+(\.\d+)*)$", "", package)
    core = re.sub(r"^(lib|python3?-|golang-|node-|ruby-|r-cran-|perl-)", "", base)
    stems = {package} | {s for s in (base, core) if len(s) >= 3}
    out = synopsis
    for s in sorted(stems, key=len, reverse=True):
        out = re.sub(rf"(?<![\w-]){re.escape(s)}(?![\w-])", MASK, out, flags=re.IGNORECASE)
    return out


def ddtp_pairs(
    source: str | Path | None = None,
    languages: str | Sequence[str] | None = None,
    max_units: int | None = None,
    max_passage_chars: int = 1000,
) -> pl.DataFrame:
    """Synopsis (name masked) -> long description for every language pair of each package.

    English units without a long description of at least 40 characters are skipped, and
    English synopses or long descriptions that repeat another package's are dropped
    (first package kept), so that a batch never holds two copies of one text.
    """
    langs = _langs(languages, DDTP_LANGS, "ddtp pairs")
    src = resolve_source(DDTP_SOURCE, source)
    if src.is_dir() and (src / "ddtp").is_dir():
        src = src / "ddtp"
    folder = src if src.is_dir() else src.parent
    english = read_ddtp(folder / "Translation-en.lz4", "en")
    units: dict[str, dict[str, tuple[str, str]]] = {}
    seen_q: set[str] = set()
    seen_p: set[str] = set()
    en_text: dict[str, tuple[str, str]] = {}
    for (pkg, md5), (syn, long) in sorted(english.items()):
        q = mask_package(syn, pkg)
        p = bound_length(long, max_passage_chars, min_chars=40)
        if not p or sum(ch.isalpha() for ch in q.replace(MASK, "")) < 3:
            continue
        kq, kp = normalise(q), normalise(p)
        if kq in seen_q or kp in seen_p:
            continue
        seen_q.add(kq)
        seen_p.add(kp)
        unit = f"{pkg}:{md5}"
        en_text[unit] = (q, p)
        units[unit] = {"en": (q, p)} if "en" in langs else {}
    cap = int(max_passage_chars * 1.5)
    for lang in langs:
        if lang == "en":
            continue
        for (pkg, md5), (syn, long) in read_ddtp(folder / f"Translation-{lang}.lz4", lang).items():
            unit = f"{pkg}:{md5}"
            if unit not in en_text:
                continue
            q = mask_package(syn, pkg)
            p = bound_length(long, cap, min_chars=20)
            eq, ep = en_text[unit]
            if keep_translation(q, lang, eq, min_chars=3)[0] and keep_translation(p, lang, ep)[0]:
                units[unit][lang] = (q, p)
    units = {u: v for u, v in units.items() if v}
    keep = _pick_units(units, max_units)
    return pairs_from_units({u: units[u] for u in keep}, "ddtp")

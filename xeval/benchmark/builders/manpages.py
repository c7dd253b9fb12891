"""Linux man pages in seven languages: masked NAME summary -> DESCRIPTION.

Source: the Debian 12 packages ``manpages``/``manpages-dev`` (English) and
``manpages-{de,fr,es,ru,pl,ja}[-dev]`` (``.deb``: ``ar`` archive -> ``data.tar.xz`` ->
gzip roff under ``usr/share/man/[LANG/]manN/``), read in memory, or the same trees
unpacked (any folder holding ``usr/share/man``).

A **unit** is a page (``name.section``) that has an English original. For each
language:

- **query**: the NAME line (the first ``.SH`` section, ``names \\- summary``): the
  summary with every page/function name of the line masked as ``___`` (the names give
  the answer away lexically);
- **passage**: the first prose paragraphs of DESCRIPTION (the ``.SH`` section called
  DESCRIPTION / BESCHREIBUNG / DESCRIPCIÓN / ОПИСАНИЕ / OPIS / 説明 ...; if a page uses
  another title, the section at the position DESCRIPTION has in the English page, when
  both pages have the same number of sections), code blocks and tables left out, at most
  ``max_passage_chars`` English characters (translations: as many paragraphs as the
  English passage, capped at 1.5x). Translated paragraphs still in English are dropped
  before the passage is assembled.
- Relevance: the page's passage in every language (pooled).

Quality filters: translated summary/passage identical to the English one, in the wrong
script or still English are dropped; ``.so`` alias pages and symlinks are skipped; a page
whose English passage repeats another page's is dropped. Pages whose English masked
summaries are identical ("copy memory area": memcpy, memmove, ...) keep their queries, and
each such query has every page of the group relevant.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from xeval.benchmark.builders._roff import (
    ManFile,
    Section,
    is_redirect,
    iter_deb_manpages,
    iter_folder_manpages,
    parse_page,
)
from xeval.benchmark.registry import BuilderOption, register
from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError
from xeval.sources import SourceSpec
from xeval.text import bound_length, dedup_key, dedupe, keep_translation, looks_english

NAME = "manpages"
TRANSLATIONS = ("de", "es", "fr", "ja", "pl", "ru")
MASK = "___"
DESCRIPTION_TITLES = frozenset(
    {
        "DESCRIPTION",  # en, fr
        "BESCHREIBUNG",  # de
        "DESCRIPCIÓN",  # es
        "DESCRIPCION",
        "ОПИСАНИЕ",  # ru
        "OPIS",  # pl
        "説明",  # ja
        "解説",
        "詳細",
        "DESCRIZIONE",
        "BESCHRIJVING",
        "DESCRIÇÃO",
    }
)
SOURCE = SourceSpec(
    relpath="manpages",
    licence="man-pages licences (English); GPL-3+ (manpages-l10n translations)",
    upstream="Debian 12 packages manpages, manpages-dev (6.03-2), manpages-{de,es,fr,pl,ru}"
    "[-dev] (4.18.1-1), manpages-ja[-dev] (0.5.0.0.20221215+dfsg-1)",
)
_DASH = re.compile(r"\s+[-–—]+\s+")
_LETTER = re.compile(r"[^\W\d_]")


def iter_pages(source: Path) -> Iterator[ManFile]:
    """Pages of every ``.deb`` in ``source`` (or ``source`` itself) and of unpacked trees."""
    source = Path(source)
    if not source.exists():
        raise XevalError("manpages source does not exist", file=source)
    if source.is_dir() and (source / "manpages").is_dir() and not list(source.glob("*.deb")):
        source = source / "manpages"
    if source.is_file():
        if not source.name.endswith(".deb"):
            raise XevalError("expected a .deb package or a folder of them", file=source)
        yield from iter_deb_manpages(source)
        return
    for deb in sorted(source.glob("*.deb")):
        yield from iter_deb_manpages(deb)
    yield from iter_folder_manpages(source)


def name_line(sections: list[Section]) -> tuple[list[str], str] | None:
    """(names, summary) of the first section, or None if it is not ``names - summary``."""
    if not sections:
        return None
    text = " ".join(sections[0].prose())
    parts = _DASH.split(text, maxsplit=1)
    if len(parts) != 2:
        return None
    names = [n.strip() for n in parts[0].split(",") if n.strip()]
    summary = parts[1].strip()
    return (names, summary) if names and summary else None


def mask_names(summary: str, names: list[str]) -> str:
    """Replace each name (whole word, longest first) with :data:`MASK`."""
    out = summary
    for n in sorted(set(names), key=len, reverse=True):
        base = re.sub(r"\(\d\w*\)$", "", n).strip()
        if len(base) < 2:
            continue
        out = re.sub(rf"(?<![\w.-]){re.escape(base)}(?![\w-])", MASK, out)
    return " ".join(out.split())


def description_index(sections: list[Section], english: list[Section] | None) -> int | None:
    """Index of the DESCRIPTION section (known titles, else the English position)."""
    for i, s in enumerate(sections):
        if s.heading.strip().strip('"').upper() in DESCRIPTION_TITLES:
            return i
    if english is not None and len(english) == len(sections):
        for i, s in enumerate(english):
            if s.heading.strip().upper() == "DESCRIPTION":
                return i
    return None


def is_prose(text: str) -> bool:
    """A paragraph with words: at least 20 letters, and letters are most of the text."""
    letters = len(_LETTER.findall(text))
    return letters >= 20 and letters >= 0.5 * (len(text) - text.count(" "))


def _parse_languages(languages: str | None) -> tuple[str, ...]:
    if not languages:
        return TRANSLATIONS
    langs = tuple(x.strip() for x in languages.split(",") if x.strip() and x.strip() != "en")
    bad = sorted(set(langs) - set(TRANSLATIONS))
    if bad:
        raise XevalError(f"manpages has no language(s) {bad}; choose from {list(TRANSLATIONS)}")
    return langs


def read_pages(source: Path, langs: tuple[str, ...]) -> dict[str, dict[str, list[Section]]]:
    """``{lang: {"name.section": sections}}`` of the pages with an English original.

    Alias pages (``.so``) are skipped; translated pages without an English original are
    never parsed.
    """
    raw: dict[str, dict[str, str]] = defaultdict(dict)
    wanted = {"en", *langs}
    for mf in iter_pages(source):
        if mf.lang not in wanted or is_redirect(mf.roff):
            continue
        raw[mf.lang].setdefault(f"{mf.name}.{mf.section}", mf.roff)
    english = raw.get("en", {})
    pages = {
        lang: {u: parse_page(r) for u, r in by_unit.items() if u in english}
        for lang, by_unit in raw.items()
    }
    if not pages.get("en"):
        raise XevalError(
            "no English man pages found (need manpages_*.deb / manpages-dev_*.deb or their "
            "unpacked usr/share/man/manN trees)",
            file=source,
        )
    missing = [x for x in langs if not pages.get(x)]
    if missing:
        raise XevalError(f"no man pages for language(s) {missing}", file=source)
    return dict(pages)


def _english_units(
    pages: dict[str, list[Section]], max_passage_chars: int, stats: Counter
) -> dict[str, dict]:
    """Per English page: names, masked summary (query), passage and its paragraph keys.

    Identical English passages (same text under two page names) keep the first page.
    """
    candidates: list[dict] = []
    for unit, secs in sorted(pages.items()):
        nl = name_line(secs)
        di = description_index(secs, None)
        if nl is None or di is None:
            stats["en:no-name-or-description"] += 1
            continue
        paras = [p for p in secs[di].prose() if is_prose(p)]
        passage = bound_length("\n\n".join(paras), max_passage_chars, min_chars=40)
        query = mask_names(nl[1], nl[0] + [unit.rsplit(".", 1)[0]])
        if not passage or sum(ch.isalpha() for ch in query) < 3:
            stats["en:empty-query-or-passage"] += 1
            continue
        candidates.append(
            {
                "unit": unit,
                "names": nl[0],
                "query": query,
                "passage": passage,
                "k": passage.count("\n\n") + 1,
                "secs": secs,
                "paras": {dedup_key(p) for p in secs[di].prose()},
            }
        )
    # identical English passages (same text under two page names): keep the first page
    kept, dropped = dedupe(candidates, lambda c: dedup_key(c["passage"]))
    if dropped:
        stats["en:duplicate-passage"] = dropped
    return {c["unit"]: c for c in kept}


def _translated_passage(secs: list[Section], di: int, lang: str, en: dict, stats: Counter) -> list:
    """The description paragraphs of a translated page that are not still English."""
    paras = []
    for p in secs[di].prose():
        if not is_prose(p):
            continue
        stats[f"{lang}:description-paragraphs"] += 1
        if dedup_key(p) in en["paras"] or looks_english(p, lang):
            stats[f"{lang}:paragraph-still-english"] += 1
            continue
        paras.append(p)
    return paras[: en["k"]]


def _translated_rows(
    unit: str, en: dict, secs: list[Section], lang: str, cap: int, stats: Counter
) -> tuple[list[dict], list[dict]]:
    """Query and document rows of one translated page (each only when it passes)."""
    stats[f"{lang}:pages"] += 1
    nl = name_line(secs)
    di = description_index(secs, en["secs"])
    if nl is None or di is None:
        stats[f"{lang}:no-name-or-description"] += 1
        return [], []
    if secs[di].heading.strip().strip('"').upper() not in DESCRIPTION_TITLES:
        stats[f"{lang}:description-by-position"] += 1
    queries, docs = [], []
    q = mask_names(nl[1], nl[0] + en["names"] + [unit.rsplit(".", 1)[0]])
    ok, why = keep_translation(q, lang, en["query"], min_chars=3)
    if ok:
        queries.append(_row("query", lang, unit, q))
    else:
        stats[f"{lang}:query-{why}"] += 1
    paras = _translated_passage(secs, di, lang, en, stats)
    p = bound_length("\n\n".join(paras), cap, min_chars=20)
    ok, why = keep_translation(p, lang, en["passage"])
    if ok:
        docs.append(_row("doc", lang, unit, p, title=q))
    else:
        stats[f"{lang}:passage-{why}"] += 1
    return queries, docs


def _summary_qrels(
    qtab: pl.DataFrame, corpus: pl.DataFrame, english: dict[str, dict], units: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Qrels: pages whose English masked summaries are the same ("copy memory area":
    memcpy, memmove, ...) answer the same query, so each such query has all their pages
    relevant. Also returns the summary groups shared by several pages."""
    groups = pl.DataFrame(
        {"unit_id": units, "qkey": [dedup_key(english[u]["query"]) for u in units]},
        schema={"unit_id": pl.String, "qkey": pl.String},
    )
    qrels = (
        qtab.select("query_id", "unit_id")
        .join(groups, on="unit_id")
        .join(groups.rename({"unit_id": "rel_unit"}), on="qkey")
        .join(corpus.select("doc_id", pl.col("unit_id").alias("rel_unit")), on="rel_unit")
        .select("query_id", "doc_id", pl.lit(1, pl.Int32).alias("relevance"))
    )
    return qrels, groups.group_by("qkey").len().filter(pl.col("len") > 1)


def build_manpages(
    source: Path,
    languages: str | None = None,
    max_passage_chars: int = 1000,
    size: int | None = None,
) -> Benchmark:
    """Build the manpages benchmark (rules in the module docstring)."""
    if max_passage_chars < 200:
        raise XevalError("--max_passage_chars must be at least 200")
    langs = _parse_languages(languages)
    pages = read_pages(source, langs)
    stats: Counter = Counter()
    english = _english_units(pages["en"], max_passage_chars, stats)
    units = sorted(english)
    if size:
        units = sorted(sorted(units, key=lambda u: hashlib.sha1(u.encode()).hexdigest())[:size])
    queries: list[dict] = []
    docs: list[dict] = []
    for unit in units:
        en = english[unit]
        queries.append(_row("query", "en", unit, en["query"]))
        docs.append(_row("doc", "en", unit, en["passage"], title=en["query"]))
        for lang in (x for x in langs if unit in pages[x]):
            q, d = _translated_rows(
                unit, en, pages[lang][unit], lang, int(max_passage_chars * 1.5), stats
            )
            queries += q
            docs += d
    corpus, qtab = pl.DataFrame(docs), pl.DataFrame(queries)
    qrels, shared = _summary_qrels(qtab, corpus, english, units)
    stats["en:pages-sharing-a-summary"] = int(shared["len"].sum() or 0)
    stats["en:shared-summaries"] = shared.height
    bench = Benchmark(NAME, corpus, qtab, qrels)
    bench.manifest = {
        "languages": ["en", *langs],
        "filters": dict(sorted(stats.items())),
        "max_passage_chars": max_passage_chars,
        "mask": MASK,
    }
    bench.card = _card(bench, stats, langs, max_passage_chars, size)
    return bench


def _row(kind: str, lang: str, unit: str, text: str, title: str | None = None) -> dict:
    key = "query_id" if kind == "query" else "doc_id"
    row = {key: f"{lang}/{unit}", "lang": lang, "text": text, "unit_id": unit}
    if title is not None:
        row["title"] = title
    return row


def _how_built(stats: Counter, langs: tuple[str, ...], max_chars: int) -> str:
    """The card's "How it was built" section, with the still-English paragraph counts."""
    eng = []
    for lang in langs:
        n = stats.get(f"{lang}:description-paragraphs", 0)
        d = stats.get(f"{lang}:paragraph-still-english", 0)
        if n:
            eng.append(f"{lang} {d}/{n} ({100 * d / n:.1f} %)")
    return f"""## How it was built

- **Units**: pages (`name.section`) with an English original in `manpages`/`manpages-dev`;
  `.so` alias pages and symlinked pages are skipped.
- **Queries**: the first `.SH` section (NAME, BEZEICHNUNG, NOM, ...) is `names - summary`;
  the query is the summary with every listed name and the page name replaced by `{MASK}`.
- **Passages**: DESCRIPTION (found by its title in each language, else by its position in
  the English page), roff reduced to text, code blocks/tables and non-prose paragraphs
  left out; first paragraphs up to {max_chars} English characters; a translation takes as
  many paragraphs as the English passage (capped at {int(max_chars * 1.5)} characters).
- **Relevance**: the same page's passage in every language (pooled qrels).
- **Quality filters**: translated paragraphs still in English (identical to an English
  paragraph of the page, or failing the function-word test) are dropped before the
  passage is built: {"; ".join(eng)}. Translated summaries/passages identical to English,
  in the wrong script or still English are dropped; a page whose English passage repeats
  another page's is dropped. Pages with the same English masked summary ("copy memory
  area": memcpy, memmove, ...) keep their queries; each such query has every page of
  the group relevant ({stats.get("en:shared-summaries", 0)} summaries shared by
  {stats.get("en:pages-sharing-a-summary", 0)} pages).

"""


def _card(
    bench: Benchmark, stats: Counter, langs: tuple[str, ...], max_chars: int, size: int | None
) -> str:
    rows = "\n".join(
        f"| {lang} | {c['queries']} | {c['documents']} | {c['qrels']} |"
        for lang, c in bench.counts().items()
    )
    drops = "\n".join(f"- `{k}`: {v}" for k, v in sorted(stats.items())) or "- none"
    sample = f"\nSub-sample: {size} pages (seeded by unit id hash).\n" if size else ""
    return f"""# manpages

Linux man pages (Debian 12 packages) in English and {", ".join(langs)}: the one-line NAME
summary, with the page's names masked, as the query; the start of DESCRIPTION as the
passage. Built by `xeval build-benchmark manpages`.
{sample}
{_how_built(stats, langs, max_chars)}## Counts

| lang | queries | documents | qrels |
|---|---|---|---|
{rows}

Filter counts:
{drops}

## Licence

English pages: the Linux man-pages licences (mostly "Linux-man-pages-copyleft", some GPL);
translations (manpages-l10n): GPL-3+; Japanese (JM project): per-page licences as in
the package. Redistribution of the derived benchmark keeps these terms.

## Caveats

- Lexical give-aways remain: DESCRIPTION usually names the function/command in its first
  sentence (`ldd prints ...`), while the masked query does not; identifiers, constants
  and header names stay in English in every language, which helps cross-lingual matching.
- Translations follow different upstream versions (manpages-l10n 4.18 for 6.03; the
  Japanese JM pages are older), so the content of a page can differ between languages.
- Summaries are short (a few words); many pages of one family (e.g. `pthread_*`) have
  similar summaries and passages.
"""


@register(
    NAME,
    domain="technical",
    description="Linux man pages: masked NAME summary -> DESCRIPTION, en + de es fr ja pl ru",
    licence="man-pages licences (English); GPL-3+ (translations)",
    source=SOURCE,
    source_help="manpages/ folder of the .deb packages, or unpacked usr/share/man trees",
    options=[
        BuilderOption(
            "languages", str, None, "comma-separated translations (default: de,es,fr,ja,pl,ru)"
        ),
        BuilderOption("max_passage_chars", int, 1000, "English characters per passage"),
        BuilderOption("size", int, None, "keep only this many pages (seeded sub-sample)"),
    ],
)
def build(
    source: Path,
    languages: str | None = None,
    max_passage_chars: int = 1000,
    size: int | None = None,
) -> Benchmark:
    return build_manpages(source, languages, max_passage_chars, size)

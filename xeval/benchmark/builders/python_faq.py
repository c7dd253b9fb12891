"""The Python FAQ in seven languages: real user questions -> their answers.

Source: ``faq/*.po`` of the python-docs translations (es fr ja ko pt_BR zh_CN; English =
``msgid``), read from the ``.tar.xz`` archives in memory or from unpacked folders.

**Question.** An entry of ``faq/*.po`` whose English ``msgid`` is one line of at most 120
characters and either ends with ``?`` or starts with an interrogative word (how, what,
why, is, are, can, ...) without ending in ``.``/``:``/``;``/``!``. The .po files carry no
markup for titles; in the FAQ every question is a section title, and this rule finds
176-177 titles per translation (es, ja, ko 176; fr, pt_BR, zh_CN 177) and no paragraph
(the four long paragraphs that end with ``?`` are over 120 characters; "How do you
remove multiple items from a list" and "How do I delete a file? (And other file
questions...)" are the two titles without a final ``?``). The English side has 177.

**Answer passage.** The entries after the question up to the next question, without the
category titles that stand just before it ("General Library Questions"); reST inline
markup is reduced to text. The passage is the first answer paragraphs that fit in
``max_passage_chars`` (by the English length; at least the first paragraph, cut at a
sentence if it alone is too long).

**Alignment.** A unit is ``faq file + normalised English question``. The English side is
the FAQ version most translations share (a unit is English when at least half of the
loaded translations have it), so a translation made from another English wording
(python-docs-ko follows 3.13) aligns only where its English source string matches after
markup normalisation. A translated question is a query when its entry is translated
(non-empty, not fuzzy). A translated passage is made of the *translated* paragraphs of
the window, in order, and exists only when the first paragraph is translated and the
translated paragraphs hold at least half of the window's English characters; untranslated
paragraphs are left out, never mixed in as English (the Japanese and Korean projects have
translated the first paragraphs of many answers but not the later ones).
Both then pass the quality filters of :mod:`xeval.text` (not identical to English, right
script, not still English).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from xeval.benchmark.builders._po import (
    PY_DOCS_LANGS,
    PoEntry,
    available_languages,
    iter_po_files,
    rst_inline_to_text,
)
from xeval.benchmark.registry import BuilderOption, register
from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError
from xeval.sources import SourceSpec
from xeval.text import bound_length, keep_translation, normalise

NAME = "python-faq"
LANGS = ("en", *PY_DOCS_LANGS)
MAX_QUESTION_CHARS = 120
MIN_TRANSLATED_SHARE = 0.5  # of the answer window's English characters
_INTERROGATIVE = frozenset(
    [
        "how",
        "what",
        "why",
        "is",
        "are",
        "can",
        "do",
        "does",
        "where",
        "when",
        "which",
        "who",
        "whom",
        "whose",
        "should",
        "will",
        "would",
        "could",
        "may",
        "must",
        "has",
        "have",
    ]
)
SOURCE = SourceSpec(
    relpath="python-docs",
    licence="translations CC0 1.0; English text PSF License",
    upstream="github.com/python/python-docs-{es,fr,ja,pt-br,zh-cn} (branch 3.11), "
    "python-docs-ko (branch 3.13); one python-docs-LANG-COMMIT.tar.xz per language",
)


def is_faq_file(rel: str) -> bool:
    """``faq/general.po`` etc. (``faq/index.po`` holds only the FAQ's title)."""
    return rel.startswith("faq/") and rel != "faq/index.po"


def is_question(msgid: str) -> bool:
    """The question rule of the module docstring."""
    s = msgid.strip()
    if not s or "\n" in s or len(s) > MAX_QUESTION_CHARS:
        return False
    if s.endswith("?"):
        return True
    first = s.split(maxsplit=1)[0].lower()
    return first in _INTERROGATIVE and not s.endswith((".", ":", ";", "!"))


def is_title(msgid: str) -> bool:
    """A category or page title: one short line, capitalised, no closing punctuation."""
    s = msgid.strip()
    return (
        0 < len(s) <= 80
        and "\n" not in s
        and s[0].isupper()
        and not s.endswith((".", ":", ";", ",", "!", "?", ")"))
        and not any(c in s for c in "`*<>")
    )


def question_key(msgid: str) -> str:
    """Markup-, quote- and case-insensitive form of an English question."""
    text = rst_inline_to_text(msgid)
    return normalise(text)


@dataclass
class FaqItem:
    """One question with its answer entries, in one language's file."""

    unit: str
    question: PoEntry
    answer: list[PoEntry]


@dataclass
class _Built:
    queries: list[dict] = field(default_factory=list)
    docs: list[dict] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)


def faq_items(entries: tuple[PoEntry, ...], stem: str) -> list[FaqItem]:
    """Split one FAQ file into questions and their answer entries."""
    qpos = [i for i, e in enumerate(entries) if is_question(e.msgid)]
    items: list[FaqItem] = []
    seen: set[str] = set()
    for n, i in enumerate(qpos):
        end = qpos[n + 1] if n + 1 < len(qpos) else len(entries)
        answer = list(entries[i + 1 : end])
        if n + 1 < len(qpos):
            while answer and is_title(answer[-1].msgid):
                answer.pop()
        key = question_key(entries[i].msgid)
        unit = f"{stem}/{_slug(key)}"
        if unit in seen or not answer:
            continue
        seen.add(unit)
        items.append(FaqItem(unit, entries[i], answer))
    return items


def _slug(key: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:60].rstrip("-")
    return f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:6]}"


def _window(answer: list[PoEntry], max_chars: int) -> list[PoEntry]:
    """The first answer paragraphs whose English fits in ``max_chars`` (at least one)."""
    out: list[PoEntry] = []
    total = 0
    for e in answer:
        n = len(rst_inline_to_text(e.msgid)) + 2
        if out and total + n > max_chars:
            break
        out.append(e)
        total += n
    return out


def _chars(entries: list[PoEntry]) -> int:
    return sum(len(rst_inline_to_text(e.msgid)) for e in entries)


def _join(texts: list[str], max_chars: int) -> str:
    return bound_length("\n\n".join(rst_inline_to_text(t) for t in texts), max_chars)


def _parse_languages(languages: str | None, source: Path) -> tuple[str, ...]:
    if not languages:
        langs = tuple(x for x in available_languages(_root(source)) if x in PY_DOCS_LANGS)
        if not langs:
            raise XevalError(
                "no python-docs translations found (expected python-docs-LANG-COMMIT.tar.xz "
                "archives or unpacked LANG/faq/*.po folders)",
                file=source,
            )
        return langs
    langs = tuple(x.strip() for x in languages.split(",") if x.strip() and x.strip() != "en")
    bad = sorted(set(langs) - set(PY_DOCS_LANGS))
    if bad:
        raise XevalError(f"python-faq has no language(s) {bad}; choose from {list(PY_DOCS_LANGS)}")
    return langs


def _root(source: Path) -> Path:
    source = Path(source)
    if not source.exists():
        raise XevalError("python-docs source does not exist", file=source)
    if source.is_dir() and (source / "python-docs").is_dir():
        return source / "python-docs"
    return source


def read_faq(source: Path, langs: tuple[str, ...]) -> dict[str, dict[str, FaqItem]]:
    """``{lang: {unit: FaqItem}}`` for every FAQ file of every language."""
    source = _root(source)
    out: dict[str, dict[str, FaqItem]] = defaultdict(dict)
    for po in iter_po_files(source, langs, is_faq_file):
        stem = Path(po.relpath).stem
        for item in faq_items(po.entries, stem):
            out[po.lang].setdefault(item.unit, item)
    empty = [x for x in langs if not out.get(x)]
    if empty:
        raise XevalError(f"no FAQ questions found for language(s) {empty}", file=source)
    return dict(out)


def build_faq(
    source: Path,
    languages: str | None = None,
    max_passage_chars: int = 1200,
    size: int | None = None,
) -> Benchmark:
    """Build the python-faq benchmark (see the module docstring for every rule)."""
    if max_passage_chars < 200:
        raise XevalError("--max_passage_chars must be at least 200")
    langs = _parse_languages(languages, source)
    per_lang = read_faq(source, langs)
    presence = Counter(u for items in per_lang.values() for u in items)
    need = math.ceil(len(langs) / 2)
    english_units = sorted(u for u, c in presence.items() if c >= need)
    if size:
        english_units = sorted(english_units, key=lambda u: hashlib.sha1(u.encode()).hexdigest())[
            :size
        ]
        english_units.sort()
    out = _Built()
    for unit in english_units:
        en_query, en_passage = _english_text(unit, per_lang, langs, max_passage_chars)
        if not en_passage:
            out.dropped["en:empty-answer"] += 1
            continue
        out.queries.append(_q("en", unit, en_query))
        out.docs.append(_d("en", unit, en_passage, en_query))
        for lang in (x for x in langs if unit in per_lang[x]):
            _add_translation(out, lang, per_lang[lang][unit], max_passage_chars)
    return _assemble(out, langs, max_passage_chars, size)


def _english_text(
    unit: str, per_lang: dict[str, dict[str, FaqItem]], langs: Sequence[str], max_chars: int
) -> tuple[str, str]:
    """English query and passage of ``unit``: the (question, answer window) wording most
    translations share."""
    variants: Counter = Counter()
    for lang in langs:
        item = per_lang[lang].get(unit)
        if item:
            win = _window(item.answer, max_chars)
            variants[(item.question.msgid, tuple(e.msgid for e in win))] += 1
    (q_en, win_en), _ = variants.most_common(1)[0]
    return rst_inline_to_text(q_en), _join(list(win_en), max_chars)


def _add_translation(out: _Built, lang: str, item: FaqItem, max_chars: int) -> None:
    """The translated query and passage of one FAQ item, each when it passes the filters."""
    cap = int(max_chars * 1.5)  # translations run longer than English in characters
    eq = rst_inline_to_text(item.question.msgid)
    title = eq
    if item.question.translated:
        q = rst_inline_to_text(item.question.msgstr)
        title = q
        ok, why = keep_translation(q, lang, eq)
        if ok:
            out.queries.append(_q(lang, item.unit, q))
        else:
            out.dropped[f"{lang}:query-{why}"] += 1
    else:
        out.dropped[f"{lang}:query-untranslated"] += 1
    win = _window(item.answer, max_chars)
    done = [e for e in win if e.translated]
    share = _chars(done) / max(1, _chars(win))
    if not win[0].translated or share < MIN_TRANSLATED_SHARE:
        out.dropped[f"{lang}:passage-untranslated"] += 1
        return
    if len(done) < len(win):
        out.dropped[f"{lang}:passage-kept-partly-translated"] += 1
    p = _join([e.msgstr for e in done], cap)
    ok, why = keep_translation(p, lang, _join([e.msgid for e in done], cap))
    if ok:
        out.docs.append(_d(lang, item.unit, p, title))
    else:
        out.dropped[f"{lang}:passage-{why}"] += 1


def _q(lang: str, unit: str, text: str) -> dict:
    return {"query_id": f"{lang}/{unit}", "lang": lang, "text": text, "unit_id": unit}


def _d(lang: str, unit: str, text: str, title: str) -> dict:
    return {"doc_id": f"{lang}/{unit}", "lang": lang, "text": text, "title": title, "unit_id": unit}


def _assemble(out: _Built, langs: tuple[str, ...], max_chars: int, size: int | None) -> Benchmark:
    queries = pl.DataFrame(out.queries)
    corpus = pl.DataFrame(out.docs)
    # questions whose English text repeats (e.g. "What is Python?" in general.po and
    # installed.po) are one information need: each such query has all their answers relevant
    en_key = queries.filter(pl.col("lang") == "en").select(
        "unit_id", pl.col("text").map_elements(question_key, return_dtype=pl.String).alias("qkey")
    )
    qrels = (
        queries.select("query_id", "unit_id")
        .join(en_key, on="unit_id")
        .join(en_key.rename({"unit_id": "rel_unit"}), on="qkey")
        .join(corpus.select("doc_id", pl.col("unit_id").alias("rel_unit")), on="rel_unit")
        .select("query_id", "doc_id", pl.lit(1, pl.Int32).alias("relevance"))
        .unique()
    )
    dup_groups = int(en_key.group_by("qkey").len().filter(pl.col("len") > 1).height)
    bench = Benchmark(NAME, corpus, queries, qrels)
    bench.manifest = {
        "languages": ["en", *langs],
        "filters": dict(sorted(out.dropped.items())),
        "repeated_questions": dup_groups,
        "max_passage_chars": max_chars,
    }
    bench.card = _card(bench, out.dropped, langs, max_chars, size, dup_groups)
    return bench


def _how_built(max_chars: int, dup_groups: int) -> str:
    """The card's "How it was built" section."""
    return f"""## How it was built

- **Queries**: the FAQ questions. In the .po files a question is an entry whose English
  `msgid` is one line of at most {MAX_QUESTION_CHARS} characters that ends with `?` (or starts with
  an interrogative word and has no closing `.`/`:`): the section titles of the FAQ pages.
- **Passages**: the answer, i.e. the paragraphs after the question up to the next question
  (category titles excluded), reST markup reduced to text, first paragraphs up to
  {max_chars} English characters (translations capped at {int(max_chars * 1.5)}).
- **Relevance**: the answer of the same unit (FAQ file + normalised English question) in
  every language; pooled across languages. {dup_groups} English question text(s) occur in
  two FAQ files (e.g. "What is Python?"): each such query has all those answers relevant.
- **Alignment**: by the English source string (`msgid`), markup-normalised. The English
  side is the FAQ version that most translations share (3.11; python-docs-ko follows 3.13).
- **Translations**: a question counts only if its entry is translated and not `#, fuzzy`.
  A translated passage is the translated (non-fuzzy) paragraphs of the window, kept only
  when the first paragraph is translated and they cover at least
  {int(MIN_TRANSLATED_SHARE * 100)} % of the window's English characters; untranslated paragraphs are
  left out, never mixed in as English (`passage-kept-partly-translated` below counts them).
- **Quality filters**: drop translations identical to the English text, in the wrong
  script, or still English (function-word test); passages are length-bounded.

"""


def _card(
    bench: Benchmark,
    dropped: Counter,
    langs: tuple[str, ...],
    max_chars: int,
    size: int | None,
    dup_groups: int,
) -> str:
    counts = bench.counts()
    rows = "\n".join(
        f"| {lang} | {c['queries']} | {c['documents']} | {c['qrels']} |"
        for lang, c in counts.items()
    )
    drops = "\n".join(f"- `{k}`: {v}" for k, v in sorted(dropped.items())) or "- none"
    sample = f"\nSub-sample: {size} English units (seeded by unit id hash).\n" if size else ""
    return f"""# python-faq

Real user questions of the Python FAQ (``faq/*.po`` of the python-docs translations) against
their answers, in English and {", ".join(langs)}. Built by `xeval build-benchmark python-faq`.
{sample}
{_how_built(max_chars, dup_groups)}## Counts

| lang | queries | documents | qrels |
|---|---|---|---|
{rows}

Dropped by the filters:
{drops}

## Licence

Translations: CC0 1.0 (python-docs-* projects). English FAQ text: PSF License.

## Caveats

- Lexical give-aways: a question often repeats the answer's key terms (function names,
  module names); identifiers stay in English in every language, so cross-lingual retrieval
  is easier than with purely natural-language text.
- The FAQ is small (176-177 questions per language): confidence intervals are wide.
- Different translation projects follow different English versions; a few questions exist
  only in some languages and a few answers differ slightly between languages.
"""


@register(
    NAME,
    domain="technical",
    description="Python FAQ: 177 real user questions -> answer paragraphs, en + es fr ja ko pt_BR zh_CN",
    licence="translations CC0 1.0; English PSF License",
    source=SOURCE,
    source_help="python-docs/ folder of python-docs-LANG-COMMIT.tar.xz archives, one archive, "
    "or unpacked LANG/faq/*.po trees",
    options=[
        BuilderOption(
            "languages",
            str,
            None,
            "comma-separated translations (default: every one in the source)",
        ),
        BuilderOption("max_passage_chars", int, 1200, "English characters per answer passage"),
        BuilderOption("size", int, None, "keep only this many questions (seeded sub-sample)"),
    ],
)
def build(
    source: Path,
    languages: str | None = None,
    max_passage_chars: int = 1200,
    size: int | None = None,
) -> Benchmark:
    return build_faq(source, languages, max_passage_chars, size)

"""Quality filters shared by the domain builders (technical and legal).

Generic, dependency-free checks on one text and its language:

- :func:`expected_script_ok`: is the text written in the script its language uses
  (Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai, Han, Kana, Hangul)?
- :func:`looks_english`: is a text that should be in language X still English?
  (function-word counts: English stop words against X's, for Latin-script X; for other
  scripts the script check already catches English);
- :func:`same_text`: identical to another text after whitespace / case normalisation;
- :func:`bound_length`: cut a text at a paragraph, sentence or word boundary;
- :func:`keep_translation`: the three checks a translated unit must pass, with the
  reason it failed (for the build report);
- :func:`dedupe_units`: drop units whose key text repeats another unit's.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

T = TypeVar("T")

# script of each language (ISO 639-1 plus the region variants the sources use)
_SCRIPTS: dict[str, frozenset[str]] = {
    "ar": frozenset({"ARABIC"}),
    "fa": frozenset({"ARABIC"}),
    "ur": frozenset({"ARABIC"}),
    "he": frozenset({"HEBREW"}),
    "el": frozenset({"GREEK"}),
    "ru": frozenset({"CYRILLIC"}),
    "uk": frozenset({"CYRILLIC"}),
    "bg": frozenset({"CYRILLIC"}),
    "sr": frozenset({"CYRILLIC", "LATIN"}),
    "mk": frozenset({"CYRILLIC"}),
    "be": frozenset({"CYRILLIC"}),
    "kk": frozenset({"CYRILLIC"}),
    "hi": frozenset({"DEVANAGARI"}),
    "mr": frozenset({"DEVANAGARI"}),
    "ne": frozenset({"DEVANAGARI"}),
    "th": frozenset({"THAI"}),
    "ja": frozenset({"CJK", "HIRAGANA", "KATAKANA"}),
    "zh": frozenset({"CJK"}),
    "ko": frozenset({"HANGUL"}),
}

# a short list of frequent function words per language (lower case)
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "the",
            "of",
            "and",
            "to",
            "in",
            "is",
            "that",
            "for",
            "it",
            "with",
            "as",
            "are",
            "be",
            "this",
            "on",
            "by",
            "or",
            "an",
            "not",
            "from",
            "at",
            "which",
            "can",
            "if",
            "you",
            "your",
            "will",
            "was",
            "when",
            "has",
            "have",
            "its",
            "these",
            "their",
            "been",
            "more",
            "than",
            "into",
            "may",
            "only",
            "also",
            "such",
            "other",
            "then",
            "there",
            "any",
            "all",
            "would",
            "should",
            "does",
            "do",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "nicht",
            "ein",
            "eine",
            "einer",
            "eines",
            "den",
            "dem",
            "des",
            "zu",
            "mit",
            "auf",
            "für",
            "von",
            "sie",
            "wird",
            "werden",
            "im",
            "sich",
            "auch",
            "oder",
            "wenn",
            "kann",
            "wie",
            "bei",
            "nur",
            "aus",
            "dass",
            "diese",
            "dieser",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "de",
            "des",
            "du",
            "et",
            "est",
            "un",
            "une",
            "pour",
            "dans",
            "que",
            "qui",
            "pas",
            "sur",
            "par",
            "avec",
            "ce",
            "cette",
            "sont",
            "il",
            "elle",
            "ou",
            "au",
            "aux",
            "ne",
            "se",
            "peut",
            "être",
            "si",
            "lorsque",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "de",
            "del",
            "y",
            "es",
            "un",
            "una",
            "para",
            "en",
            "que",
            "por",
            "con",
            "no",
            "se",
            "su",
            "al",
            "lo",
            "como",
            "más",
            "puede",
            "ser",
            "si",
            "o",
            "este",
            "esta",
            "cuando",
        ]
    ),
    "pt": frozenset(
        [
            "o",
            "a",
            "os",
            "as",
            "de",
            "do",
            "da",
            "dos",
            "das",
            "e",
            "é",
            "um",
            "uma",
            "para",
            "em",
            "que",
            "por",
            "com",
            "não",
            "se",
            "seu",
            "sua",
            "ao",
            "como",
            "mais",
            "pode",
            "ser",
            "se",
            "ou",
            "este",
            "esta",
            "quando",
        ]
    ),
    "it": frozenset(
        [
            "il",
            "lo",
            "la",
            "i",
            "gli",
            "le",
            "di",
            "del",
            "della",
            "e",
            "è",
            "un",
            "una",
            "per",
            "in",
            "che",
            "da",
            "con",
            "non",
            "si",
            "come",
            "più",
            "può",
            "essere",
            "se",
            "o",
            "questo",
            "questa",
            "quando",
        ]
    ),
    "nl": frozenset(
        [
            "de",
            "het",
            "een",
            "en",
            "van",
            "is",
            "dat",
            "in",
            "op",
            "te",
            "voor",
            "met",
            "niet",
            "die",
            "zijn",
            "er",
            "als",
            "ook",
            "aan",
            "bij",
            "of",
            "door",
            "kan",
            "wordt",
            "worden",
            "deze",
        ]
    ),
    "pl": frozenset(
        [
            "i",
            "w",
            "z",
            "na",
            "się",
            "nie",
            "do",
            "to",
            "jest",
            "że",
            "o",
            "a",
            "jak",
            "po",
            "przez",
            "dla",
            "lub",
            "jeśli",
            "może",
            "być",
            "oraz",
            "tego",
            "ten",
            "ta",
            "są",
            "od",
        ]
    ),
    "fi": frozenset(
        [
            "ja",
            "on",
            "ei",
            "se",
            "että",
            "tai",
            "kun",
            "jos",
            "voi",
            "ovat",
            "myös",
            "tämä",
            "sekä",
            "mukaan",
            "joka",
            "jonka",
            "tai",
            "olla",
            "sen",
            "niin",
        ]
    ),
    "sv": frozenset(
        [
            "och",
            "i",
            "att",
            "det",
            "som",
            "en",
            "på",
            "är",
            "av",
            "för",
            "med",
            "till",
            "den",
            "inte",
            "om",
            "har",
            "de",
            "ett",
            "kan",
            "eller",
            "från",
            "vid",
            "ska",
            "enligt",
        ]
    ),
    "da": frozenset(
        [
            "og",
            "i",
            "at",
            "det",
            "som",
            "en",
            "på",
            "er",
            "af",
            "for",
            "med",
            "til",
            "den",
            "ikke",
            "om",
            "har",
            "de",
            "et",
            "kan",
            "eller",
        ]
    ),
    "no": frozenset(
        [
            "og",
            "i",
            "at",
            "det",
            "som",
            "en",
            "på",
            "er",
            "av",
            "for",
            "med",
            "til",
            "den",
            "ikke",
            "om",
            "har",
            "de",
            "et",
            "kan",
            "eller",
        ]
    ),
    "cs": frozenset(
        [
            "a",
            "v",
            "se",
            "na",
            "je",
            "že",
            "s",
            "z",
            "do",
            "to",
            "jako",
            "pro",
            "o",
            "by",
            "nebo",
            "ve",
            "jsou",
        ]
    ),
    "ro": frozenset(
        [
            "și",
            "în",
            "de",
            "la",
            "a",
            "cu",
            "pe",
            "care",
            "este",
            "un",
            "o",
            "din",
            "sau",
            "nu",
            "se",
            "pentru",
        ]
    ),
}

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_WS = re.compile(r"\s+")


def base_lang(lang: str) -> str:
    """``pt_BR`` -> ``pt``, ``zh-Hans`` -> ``zh``, ``zh_CN`` -> ``zh``."""
    return re.split(r"[-_]", lang, maxsplit=1)[0].lower()


@functools.lru_cache(maxsize=1 << 16)
def char_script(ch: str) -> str | None:
    """The script of one letter (``LATIN``, ``CJK``, ``HANGUL``, ...), None for non-letters."""
    if ch < "\x80":
        return "LATIN" if ch.isalpha() else None
    if not ch.isalpha():
        return None
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return None
    first = name.split(" ", 1)[0]
    if first in ("CJK", "HIRAGANA", "KATAKANA", "HANGUL"):
        return first
    if "IDEOGRAPH" in name:
        return "CJK"
    return first  # LATIN, CYRILLIC, GREEK, ARABIC, HEBREW, DEVANAGARI, THAI, ...


def script_ratio(text: str, scripts: Iterable[str]) -> float:
    """Fraction of the letters of ``text`` that are in one of ``scripts`` (0 if no letters)."""
    wanted = set(scripts)
    total = hit = 0
    for ch in text:
        s = char_script(ch)
        if s is None:
            continue
        total += 1
        hit += s in wanted
    return hit / total if total else 0.0


def expected_scripts(lang: str) -> frozenset[str]:
    """Scripts language ``lang`` is written in (Latin unless listed)."""
    return _SCRIPTS.get(base_lang(lang), frozenset({"LATIN"}))


def expected_script_ok(text: str, lang: str, min_ratio: float = 0.3, min_native: int = 5) -> bool:
    """True when at least ``min_ratio`` of the letters are in ``lang``'s script.

    The bar is low on purpose: technical text in any language carries Latin identifiers
    (``malloc``, ``os.path``); a Japanese passage with 30 % Japanese letters is Japanese.
    For other scripts ``min_native`` letters in the script also pass, so that a short
    question around a long identifier ("Python Software Foundation とは何ですか？") passes.
    """
    scripts = expected_scripts(lang)
    if script_ratio(text, scripts) >= min_ratio:
        return True
    if scripts == frozenset({"LATIN"}):
        return False
    # short CJK/Cyrillic/... texts around long Latin identifiers: enough native letters
    return sum(char_script(ch) in scripts for ch in text) >= min_native


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def looks_english(text: str, lang: str = "", min_words: int = 4) -> bool:
    """True when ``text`` reads as English although it should be in ``lang``.

    English function words must make up >= 15 % of the words and outnumber the function
    words of ``lang`` (when a list for it exists). Non-Latin languages: English if most
    letters are Latin. Texts under ``min_words`` words are never judged English.
    """
    if lang and expected_scripts(lang) != frozenset({"LATIN"}):
        return script_ratio(text, {"LATIN"}) > 0.8 and len(words(text)) >= min_words
    ws = words(text)
    if len(ws) < min_words:
        return False
    en = sum(w in STOPWORDS["en"] for w in ws)
    other_list = STOPWORDS.get(base_lang(lang)) if lang else None
    other = sum(w in other_list for w in ws) if other_list else 0
    return en / len(ws) >= 0.15 and en > 2 * other


def normalise(text: str) -> str:
    """Case-folded, whitespace-collapsed form used for identity and deduplication."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def same_text(a: str, b: str) -> bool:
    """Identical after :func:`normalise`."""
    return normalise(a) == normalise(b)


def collapse_ws(text: str) -> str:
    """Collapse runs of spaces/tabs inside lines, keep paragraph breaks (blank lines)."""
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paras if p)


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


def keep_translation(
    text: str, lang: str, english: str | None, *, min_chars: int = 1
) -> tuple[bool, str]:
    """Whether a translated unit passes the filters, and the failing filter's name.

    Reasons: ``"empty"``, ``"too-short"``, ``"identical-to-english"``,
    ``"wrong-script"``, ``"still-english"``; ``"ok"`` when kept. English itself
    (``lang == "en"``) is only checked for emptiness and length.
    """
    if not text or not text.strip():
        return False, "empty"
    if len(text.strip()) < min_chars:
        return False, "too-short"
    if base_lang(lang) == "en":
        return True, "ok"
    if english is not None and same_text(text, english):
        return False, "identical-to-english"
    if not expected_script_ok(text, lang):
        return False, "wrong-script"
    if looks_english(text, lang):
        return False, "still-english"
    return True, "ok"


def dedupe_units(items: Iterable[T], key: Callable[[T], Hashable]) -> tuple[list[T], int]:
    """Keep the first item of every distinct ``key``; also returns how many were dropped."""
    seen: set[Hashable] = set()
    out: list[T] = []
    dropped = 0
    for it in items:
        k = key(it)
        if k in seen:
            dropped += 1
            continue
        seen.add(k)
        out.append(it)
    return out, dropped


def duplicated_keys(items: Iterable[T], key: Callable[[T], Hashable]) -> set[Hashable]:
    """Keys that occur more than once (to drop every member of an ambiguous group)."""
    seen: set[Hashable] = set()
    dup: set[Hashable] = set()
    for it in items:
        k = key(it)
        if k in seen:
            dup.add(k)
        seen.add(k)
    return dup

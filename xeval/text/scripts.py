"""Which script a text is written in, and which script its language expects.

One counting rule: a run of Latin letters (a word) counts once, every other letter once,
so a CJK sentence quoting an English term or a Japanese passage naming ``os.path.join``
is still CJK, and an English sentence in a CJK slot is not.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

LATIN = frozenset({"LATIN"})
# scripts of each language (base language code; Latin unless listed)
_EXPECTED: dict[str, frozenset[str]] = {
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
    "ko": frozenset({"HANGUL", "CJK"}),
}
_LATIN_WORD = re.compile(
    "[A-Za-z\u00aa\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
    "\u2c60-\u2c7f\ua720-\ua7ff\ufb00-\ufb06]+"
)
_LETTER = re.compile(r"[^\W\d_]")


def base_lang(lang: str) -> str:
    """``pt_BR`` -> ``pt``, ``zh-Hans`` -> ``zh``, ``zh_CN`` -> ``zh``."""
    return re.split(r"[-_]", lang.strip(), maxsplit=1)[0].lower()


def expected_scripts(lang: str) -> frozenset[str]:
    """Scripts language ``lang`` is written in (any region or script variant of it)."""
    return _EXPECTED.get(base_lang(lang), LATIN)


@functools.lru_cache(maxsize=1 << 16)
def char_script(ch: str) -> str | None:
    """The script of one letter (``LATIN``, ``CJK``, ``HANGUL``, ...), None for non-letters."""
    if not ch.isalpha():
        return None
    if ch < "\x80":
        return "LATIN"
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return None
    if "IDEOGRAPH" in name:
        return "CJK"
    first = name.split(" ", 1)[0]
    return "HANGUL" if first.startswith("HANGUL") else first


def _units(text: str) -> tuple[int, list[str | None]]:
    """Latin words, and the script of every other letter."""
    latin_words = len(_LATIN_WORD.findall(text))
    rest = _LATIN_WORD.sub(" ", text)
    return latin_words, [char_script(ch) for ch in _LETTER.findall(rest)]


def script_share(text: str, scripts: Iterable[str]) -> float:
    """Share of the letter units of ``text`` (Latin words once, other letters each) that
    are in one of ``scripts``; 0 when the text has no letters."""
    wanted = frozenset(scripts)
    latin_words, others = _units(text)
    total = latin_words + len(others)
    if total == 0:
        return 0.0
    hits = (latin_words if "LATIN" in wanted else 0) + sum(s in wanted for s in others)
    return hits / total


def in_expected_script(text: str, lang: str, min_share: float = 0.5) -> bool:
    """Whether at least ``min_share`` of ``text`` is in ``lang``'s script(s)."""
    return script_share(text, expected_scripts(lang)) >= min_share

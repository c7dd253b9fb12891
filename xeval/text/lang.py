"""Language checks: is a text still English, is a translation worth keeping, is a
user-given language code acceptable. Stop-word lists are data files
(``data/stopwords/<lang>.txt``), read on first use."""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

from xeval.errors import XevalError
from xeval.text.dedup import same_text
from xeval.text.scripts import LATIN, base_lang, expected_scripts, in_expected_script, script_share

_WORD = re.compile(r"[^\W\d_]+")
# one rule for user-given codes: lower case, subtags joined by "_", so no code holds "-"
# (setting names join languages with "-") or a path separator


@functools.cache
def stopwords(lang: str) -> frozenset[str]:
    """Frequent function words of ``lang`` (lower case); empty when there is no list."""
    name = f"{base_lang(lang)}.txt"
    path = resources.files("xeval.text") / "data" / "stopwords" / name
    if not path.is_file():
        return frozenset()
    return frozenset(w for w in path.read_text(encoding="utf-8").split() if w)


def words(text: str) -> list[str]:
    """Lower-cased words (runs of letters) of ``text``."""
    return [w.lower() for w in _WORD.findall(text)]


def looks_english(text: str, lang: str = "", min_words: int = 4) -> bool:
    """True when ``text`` reads as English although it should be in ``lang``.

    Latin-script ``lang``: English function words make up >= 15 % of the words and
    outnumber twice the function words of ``lang``. Other scripts: more than 80 % Latin.
    Texts under ``min_words`` words are never judged English.
    """
    ws = words(text)
    if len(ws) < min_words:
        return False
    if lang and expected_scripts(lang) != LATIN:
        return script_share(text, LATIN) > 0.8
    english = sum(w in stopwords("en") for w in ws)
    own = stopwords(lang) if lang else frozenset()
    return english / len(ws) >= 0.15 and english > 2 * sum(w in own for w in ws)


def keep_translation(
    text: str, lang: str, english: str | None, *, min_chars: int = 1
) -> tuple[bool, str]:
    """Whether a translated text passes the filters, and the failing filter's name.

    Reasons: ``"empty"``, ``"too-short"``, ``"identical-to-english"``,
    ``"wrong-script"``, ``"still-english"``; ``"ok"`` when kept. English itself is only
    checked for emptiness and length.
    """
    if not text or not text.strip():
        return False, "empty"
    if len(text.strip()) < min_chars:
        return False, "too-short"
    if base_lang(lang) == "en":
        return True, "ok"
    if english is not None and same_text(text, english):
        return False, "identical-to-english"
    if not in_expected_script(text, lang):
        return False, "wrong-script"
    if looks_english(text, lang):
        return False, "still-english"
    return True, "ok"


#: a language code after normalisation: subtags of letters and digits joined by ``_``
#: (``-`` is the separator of setting names, so ``pt-BR`` is written ``pt_BR``)
LANG_CODE = re.compile(r"[a-z]{2,3}(?:_[A-Za-z0-9]{2,8})*")
_RESERVED_LANGS = {"all"}  # the document language of multilingual settings


def normalise_lang(code: str) -> str:
    """Canonical form of a language code: trimmed, ``_`` between subtags, BCP 47 case.

    >>> [normalise_lang(c) for c in (" EN ", "pt-br", "zh_hant_tw")]
    ['en', 'pt_BR', 'zh_Hant_TW']
    """
    parts = code.strip().replace("-", "_").split("_")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 2 and part.isalpha():
            out.append(part.upper())  # region
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())  # script
        else:
            out.append(part.lower())
    return "_".join(out)


def check_lang(code: object, where: str | Path | None = None, record: object = None) -> str:
    """Normalise ``code`` and refuse what could make setting names or paths ambiguous."""
    if not isinstance(code, str):
        raise XevalError(f"language code must be a string, got {code!r}", file=where, record=record)
    norm = normalise_lang(code)
    if not LANG_CODE.fullmatch(norm) or norm in _RESERVED_LANGS:
        raise XevalError(
            f"invalid language code {code!r}: use letters and digits, subtags joined by "
            "'_' (e.g. en, pt_BR); 'all' is reserved",
            file=where,
            record=record,
        )
    return norm

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
_LANG_CODE = re.compile(r"[a-z]{2,3}(_[a-z0-9]{2,8})*")


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


def normalise_lang_code(code: object, *, file: str | Path, record: object) -> str:
    """A user-given language code in its one accepted form, else :class:`XevalError`.

    Rule: surrounding whitespace dropped, lower case, ``-`` written ``_``; then 2-3
    letters, optionally followed by ``_`` subtags of 2-8 letters or digits
    (``" pt-BR "`` -> ``"pt_br"``). No path separators, spaces or dashes remain.
    """
    if not isinstance(code, str):
        raise XevalError(f"language code must be a string, got {code!r}", file=file, record=record)
    norm = code.strip().lower().replace("-", "_")
    if not _LANG_CODE.fullmatch(norm):
        raise XevalError(
            f"bad language code {code!r}: expected 2-3 letters and optional _subtags "
            "(e.g. 'de', 'pt_br', 'zh_hans')",
            file=file,
            record=record,
        )
    return norm

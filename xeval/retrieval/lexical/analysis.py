"""Per-language text analysis for lexical retrieval (BM25).

Each benchmark language gets one :class:`Analyzer`, chosen by its base language code
(``pt_BR`` -> ``pt``, ``zh-Hant`` -> ``zh``):

- **words + Snowball stemming** (PyStemmer) where a Snowball stemmer exists for the
  language (en, de, fr, es, ru, fi, sv, ar, hi, el, ...), with bm25s's stop-word list where
  it has one (en, de, fr, es, it, pt, nl, da, no, sv, ru, tr);
- **subword pieces** for Chinese, Japanese, Korean, Thai (and Lao, Khmer, Burmese): text
  without spaces between words is cut with the multilingual model's own sentencepiece
  tokenizer (XLM-R ``tokenizer.json`` of multilingual-e5-small, read by the ``tokenizers``
  library). When that model is not installed, character bigrams (Lucene's CJKAnalyzer
  scheme) are used instead, with a warning and a note in the run's provenance;
- **words, no stemming** for every other language (vi, fy, lv, mi, sl, uk, ...).

Words are Unicode word characters *with combining marks* (``regex``'s ``\\w``), so Indic
vowel signs do not split words, after NFKC normalisation and case folding.
"""

from __future__ import annotations

import unicodedata
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import regex

#: base language code -> Snowball algorithm name (PyStemmer)
SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech",
    "da": "danish", "nl": "dutch", "en": "english", "eo": "esperanto", "et": "estonian",
    "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian", "lt": "lithuanian",
    "ne": "nepali", "no": "norwegian", "nb": "norwegian", "nn": "norwegian", "fa": "persian",
    "pl": "polish", "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
    "st": "sesotho", "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish",
    "yi": "yiddish",
}  # fmt: skip
#: base language code -> name of the stop-word list in ``bm25s.stopwords``
STOPWORDS = {
    "en": "STOPWORDS_EN", "de": "STOPWORDS_GERMAN", "fr": "STOPWORDS_FRENCH",
    "es": "STOPWORDS_SPANISH", "it": "STOPWORDS_ITALIAN", "pt": "STOPWORDS_PORTUGUESE",
    "nl": "STOPWORDS_DUTCH", "da": "STOPWORDS_DANISH", "no": "STOPWORDS_NORWEGIAN",
    "nb": "STOPWORDS_NORWEGIAN", "nn": "STOPWORDS_NORWEGIAN", "sv": "STOPWORDS_SWEDISH",
    "ru": "STOPWORDS_RUSSIAN", "tr": "STOPWORDS_TURKISH", "zh": "STOPWORDS_CHINESE",
    "ko": "STOPWORDS_KOREAN",
}  # fmt: skip
#: languages written without spaces between words: cut into subword pieces
SUBWORD_LANGS = frozenset({"zh", "ja", "ko", "th", "lo", "km", "my"})
SUBWORD_MODEL = "multilingual-e5-small"
WORD = regex.compile(r"\w+")
_SPIECE = "\u2581"  # sentencepiece's word-start mark


def base_language(lang: str) -> str:
    """``pt_BR`` -> ``pt``, ``zh-Hant`` -> ``zh``, ``EN`` -> ``en``."""
    return regex.split(r"[-_]", lang.strip().lower(), maxsplit=1)[0]


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=8)
def _stemmer(algorithm: str) -> Any:
    import Stemmer

    return Stemmer.Stemmer(algorithm)


@lru_cache(maxsize=32)
def _stopwords(name: str) -> frozenset[str]:
    import bm25s.stopwords

    return frozenset(normalize(w) for w in getattr(bm25s.stopwords, name))


@lru_cache(maxsize=4)
def _subword_tokenizer(path: str) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def default_tokenizer_path() -> Path:
    """``tokenizer.json`` of the installed multilingual-e5-small (may not exist)."""
    from xeval.models.store import models_dir

    return models_dir() / SUBWORD_MODEL / "tokenizer.json"


@dataclass(frozen=True)
class Analyzer:
    """Text -> index terms for one language. ``scheme``: ``snowball``, ``subword``,
    ``bigram`` (subword fallback) or ``words``."""

    lang: str
    scheme: str
    stemmer: str | None = None
    stopwords: str | None = None
    tokenizer: str | None = None  # tokenizer.json path for ``subword``
    _stop: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __call__(self, text: str) -> list[str]:
        text = normalize(text)
        if self.scheme == "subword":
            terms = _pieces(_subword_tokenizer(str(self.tokenizer)), text)
        elif self.scheme == "bigram":
            terms = _bigrams(text)
        else:
            terms = WORD.findall(text)
        if self._stop:
            terms = [t for t in terms if t not in self._stop]
        if self.stemmer:
            terms = _stemmer(self.stemmer).stemWords(terms)
        return terms

    def describe(self) -> dict[str, Any]:
        """What the run's provenance records for this language."""
        return {
            "scheme": self.scheme,
            "stemmer": f"snowball:{self.stemmer}" if self.stemmer else None,
            "stopwords": f"bm25s.stopwords.{self.stopwords}" if self.stopwords else None,
            "tokenizer": self.tokenizer,
        }


def _pieces(tok: Any, text: str) -> list[str]:
    pieces = (p.lstrip(_SPIECE) for p in tok.encode(text, add_special_tokens=False).tokens)
    return [p for p in pieces if p and WORD.search(p)]


def _bigrams(text: str) -> list[str]:
    out: list[str] = []
    for run in WORD.findall(text):
        if len(run) == 1:
            out.append(run)
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def make_analyzer(
    lang: str, *, tokenizer: str | Path | None = None, stopwords: bool = True
) -> Analyzer:
    """The analyzer for ``lang``; ``tokenizer`` is the subword ``tokenizer.json``
    (default: multilingual-e5-small's in the model store)."""
    base = base_language(lang)
    stop = STOPWORDS.get(base) if stopwords else None
    stop_set = _stopwords(stop) if stop else frozenset()
    if base in SUBWORD_LANGS:
        path = Path(tokenizer) if tokenizer is not None else default_tokenizer_path()
        if path.is_file():
            return Analyzer(lang, "subword", None, stop, str(path), stop_set)
        warnings.warn(
            f"BM25: no subword tokenizer at {path} (install it with `xeval models install "
            f"{SUBWORD_MODEL}`); {lang!r} text is cut into character bigrams instead",
            stacklevel=2,
        )
        return Analyzer(lang, "bigram", None, stop, None, stop_set)
    algorithm = SNOWBALL.get(base)
    scheme = "snowball" if algorithm else "words"
    return Analyzer(lang, scheme, algorithm, stop, None, stop_set)

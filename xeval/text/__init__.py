"""The text toolbox of builders, pair sources and the overlap guard: one answer per question.

- :mod:`.normalize`: the one normalisation (:func:`normalise`);
- :mod:`.dedup`: comparison / de-duplication keys (:func:`dedup_key`, :func:`dedupe`);
- :mod:`.scripts`: which script a text is written in, which one its language expects;
- :mod:`.lang`: language checks (still English? a kept translation?), stop-word lists
  (data files under ``data/stopwords``), and the rule for user-given language codes;
- :mod:`.length`: cut a text at a paragraph, sentence or word boundary.
"""

from __future__ import annotations

from xeval.text.dedup import dedup_key, dedupe, same_text
from xeval.text.lang import (
    check_lang,
    keep_translation,
    looks_english,
    normalise_lang,
    stopwords,
)
from xeval.text.length import bound_length
from xeval.text.normalize import normalise
from xeval.text.scripts import base_lang, expected_scripts, in_expected_script, script_share

__all__ = [
    "base_lang",
    "bound_length",
    "check_lang",
    "dedup_key",
    "dedupe",
    "expected_scripts",
    "in_expected_script",
    "keep_translation",
    "looks_english",
    "normalise",
    "normalise_lang",
    "same_text",
    "script_share",
    "stopwords",
]

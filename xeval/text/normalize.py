"""The one normalisation every comparison of texts goes through."""

from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")
# Unicode categories turned into spaces: punctuation, separators, controls. Symbols stay:
# "C++" and "C" are different questions, "x + y" and "x - y" different texts.
_BLANKED = frozenset("PZC")


def normalise(text: str) -> str:
    """NFKC, case-folded; punctuation and controls become spaces (symbols stay);
    whitespace collapsed and stripped. ``"  Hello,   WORLD!! "`` -> ``"hello world"``."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    blanked = "".join(" " if unicodedata.category(c)[0] in _BLANKED else c for c in folded)
    return _WS.sub(" ", blanked).strip()

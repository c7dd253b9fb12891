"""De-duplication keys: two texts are the same text when their keys are equal."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from xeval.text.normalize import normalise

T = TypeVar("T")


def dedup_key(text: str) -> str:
    """:func:`~xeval.text.normalize.normalise` without spaces, so that texts differing
    only in case, punctuation or spacing share a key: ``"Définitions — Loi!"`` ->
    ``"définitionsloi"``."""
    return normalise(text).replace(" ", "")


def same_text(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` share a :func:`dedup_key`."""
    return dedup_key(a) == dedup_key(b)


def dedupe(items: Iterable[T], key: Callable[[T], Hashable]) -> tuple[list[T], int]:
    """Keep the first item of every distinct ``key``; also returns how many were dropped."""
    seen: set[Hashable] = set()
    kept: list[T] = []
    dropped = 0
    for item in items:
        k = key(item)
        if k in seen:
            dropped += 1
        else:
            seen.add(k)
            kept.append(item)
    return kept, dropped

"""What compare asks of a metric — direction, valid range, number format — answered by
the metric registry (:func:`xeval.metrics.get`); no metric is known here by name."""

from __future__ import annotations

from xeval.metrics import get


def higher_is_better(metric: str) -> bool:
    """True unless the registry says lower is better (language bias)."""
    return not get(metric).lower_is_better


def lower_is_better(metric: str) -> bool:
    return get(metric).lower_is_better


def valid_range(metric: str) -> tuple[float, float]:
    """Closed range of a per-query value of ``metric``."""
    return get(metric).value_range


def fmt(metric: str, value: float | None, *, sign: bool = False) -> str:
    """A score (or, with ``sign``, a difference) in the metric's format; ``—`` when missing."""
    return get(metric).fmt(value, sign=sign)

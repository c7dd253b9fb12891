"""What compare needs to know about a metric: direction, valid range, number format.

The one place in ``xeval.compare`` that knows metrics by name; it is meant to be replaced
by the metric registry of ``xeval.metrics`` once that exists (same three questions).
"""

from __future__ import annotations

import math

#: metrics where a smaller value is better (language bias: a rank distance)
LOWER_IS_BETTER = frozenset({"LB"})
#: metrics counted in ranks (unbounded above, printed without decimals)
RANK_METRICS = frozenset({"LB"})


def higher_is_better(metric: str) -> bool:
    """True unless the metric is one where lower is better."""
    return metric not in LOWER_IS_BETTER


def valid_range(metric: str) -> tuple[float, float]:
    """Closed range of a per-query value: ranks are >= 0, every other metric is in [0, 1]."""
    return (0.0, math.inf) if metric in RANK_METRICS else (0.0, 1.0)


def decimals(metric: str) -> int:
    """Decimals to print a score of this metric with."""
    return 1 if metric in RANK_METRICS else 4


def fmt(metric: str, value: float | None, *, sign: bool = False) -> str:
    """A score (or, with ``sign``, a difference) in the metric's format; ``–`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:{'+' if sign else ''}.{decimals(metric)}f}"

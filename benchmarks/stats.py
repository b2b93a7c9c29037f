"""Percentiles of latency samples, as every benchmark reports them.

``p50`` is the median; ``p99`` is the nearest-rank percentile (of 200 samples, the 198th
smallest), so a reported p99 is always a latency that was actually observed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = ["percentile", "spread"]

PLACES = 2
"""Decimals kept in the reported milliseconds (the inputs are at best 1 ms timestamps)."""


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (``0 < q <= 100``) of non-empty ``values``."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(values: Sequence[float], *, with_n: bool = False) -> dict[str, float | None]:
    """``{"p50", "p99"}`` of ``values`` (and ``"n"`` when asked), rounded; ``None`` when there
    are no samples (JSON has no NaN)."""
    if not values:
        empty: dict[str, float | None] = {"p50": None, "p99": None}
        return {**empty, "n": 0} if with_n else empty
    figures: dict[str, float | None] = {
        "p50": round(statistics.median(values), PLACES),
        "p99": round(percentile(values, 99), PLACES),
    }
    return {**figures, "n": len(values)} if with_n else figures

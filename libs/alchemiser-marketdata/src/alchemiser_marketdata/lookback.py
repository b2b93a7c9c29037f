"""How far back to fetch daily bars so every indicator is warmed up at the as-of date."""

from __future__ import annotations

import math
from datetime import date, timedelta

__all__ = [
    "CALENDAR_SLACK_DAYS",
    "MIN_LOOKBACK_BARS",
    "RSI_WARMUP_FACTOR",
    "TRADING_DAYS_PER_YEAR",
    "lookback_bars",
    "lookback_start",
    "start_for_bars",
]

RSI_WARMUP_FACTOR = 3
"""Wilder's RSI depends on all earlier bars; 3 x window bars bring it within rounding."""

MIN_LOOKBACK_BARS = 200
"""Always enough for the 200-day moving average the regime filters use."""

TRADING_DAYS_PER_YEAR = 252
"""US sessions per year (weekends and the ~9 exchange holidays removed)."""

CALENDAR_SLACK_DAYS = 14
"""Extra calendar days for holiday clusters and a missing bar or two near the start."""


def lookback_bars(max_window: int) -> int:
    """Trading days needed for indicators up to ``max_window``: RSI warm-up, 200-day SMA, +1.

    The extra bar lets a return-based indicator of ``max_window`` returns have its first price.
    """
    if max_window < 1:
        raise ValueError(f"max_window must be at least 1, got {max_window}")
    return max(max_window, RSI_WARMUP_FACTOR * max_window, MIN_LOOKBACK_BARS) + 1


def start_for_bars(as_of: date, bars: int) -> date:
    """A calendar start date from which ``bars`` trading days up to ``as_of`` are available."""
    if bars < 1:
        raise ValueError(f"bars must be at least 1, got {bars}")
    calendar_days = math.ceil(bars * 365.25 / TRADING_DAYS_PER_YEAR) + CALENDAR_SLACK_DAYS
    return as_of - timedelta(days=calendar_days)


def lookback_start(as_of: date, max_window: int) -> date:
    """The first calendar date to request so indicators up to ``max_window`` are warmed up."""
    return start_for_bars(as_of, lookback_bars(max_window))

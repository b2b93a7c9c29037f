"""Deterministic price paths for tests, benchmarks and demonstrations (no randomness but seeded).

* :func:`random_walk` - a geometric random walk from numpy's seeded generator.
* :func:`trend_path` - a geometric trend with an alternating up/down zig-zag on top: its RSI
  stays roughly at ``100 * (2 * step + drift) / (4 * step)`` (drift per bar, in price units),
  it sits above or below its moving averages as the trend says, and it is stable over time.
* :func:`append_close_for_rsi` - adds one close that puts Wilder's RSI exactly on a target.
* :func:`business_days` and :func:`market_from_paths` - wrap paths into :class:`MarketData`.
* :class:`PathSet` - many symbols at once: neutral by default, with per-symbol trends and
  final-RSI targets; used to force every branch of a strategy in tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import numpy as np

from alchemiser_strategy.domain.indicators import FloatArray
from alchemiser_strategy.domain.market import MarketData

__all__ = [
    "PathSet",
    "append_close_for_rsi",
    "business_days",
    "market_from_paths",
    "random_walk",
    "trend_path",
]


def random_walk(
    length: int,
    *,
    seed: int,
    start: float = 100.0,
    drift: float = 0.0003,
    volatility: float = 0.015,
) -> FloatArray:
    """Closes of a geometric random walk with daily log-return N(drift, volatility)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(drift, volatility, size=length - 1)
    return np.asarray(start * np.exp(np.concatenate(([0.0], np.cumsum(steps)))), np.float64)


def trend_path(length: int, start: float, end: float, step: float) -> FloatArray:
    """A geometric trend from ``start`` to ``end`` plus a +/- ``step`` zig-zag (last bar up)."""
    trend = start * (end / start) ** (np.arange(length) / max(length - 1, 1))
    signs = np.where((np.arange(length) - (length - 1)) % 2 == 0, 1.0, -1.0)
    path = trend + step * signs
    if (path <= 0).any():
        raise ValueError("the zig-zag step is too large for this trend: prices would be <= 0")
    return np.asarray(path, np.float64)


def append_close_for_rsi(closes: FloatArray, target: float, window: int = 10) -> FloatArray:
    """``closes`` plus one close chosen so that Wilder's RSI(window) at it equals ``target``.

    Any target strictly between 0 and 100 is reachable in one step: an up move raises the
    average gain, a down move raises the average loss.
    """
    if not 0.0 < target < 100.0:
        raise ValueError("the RSI target must be strictly between 0 and 100")
    deltas = np.diff(np.asarray(closes, dtype=np.float64))
    if len(deltas) < window:
        raise ValueError(f"need at least {window + 1} closes to seed RSI({window})")
    gains = np.where(deltas > 0.0, deltas, 0.0)
    losses = np.where(deltas < 0.0, -deltas, 0.0)
    avg_gain = float(gains[:window].mean())
    avg_loss = float(losses[:window].mean())
    for gain, loss in zip(gains[window:].tolist(), losses[window:].tolist(), strict=True):
        avg_gain = (avg_gain * (window - 1) + gain) / window
        avg_loss = (avg_loss * (window - 1) + loss) / window
    strength = target / (100.0 - target)
    keep_gain = avg_gain * (window - 1)
    keep_loss = avg_loss * (window - 1)
    move = strength * keep_loss - keep_gain
    if move < 0.0:
        move = -(keep_gain / strength - keep_loss)
    last = float(closes[-1]) + move
    if last <= 0.0:
        raise ValueError("the RSI target needs a fall below zero; start from higher prices")
    return np.append(np.asarray(closes, dtype=np.float64), last)


def business_days(count: int, end: date = date(2024, 12, 31)) -> tuple[date, ...]:
    """``count`` consecutive weekdays ending on or before ``end``, oldest first."""
    days: list[date] = []
    day = end
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return tuple(reversed(days))


def market_from_paths(
    paths: Mapping[str, FloatArray], end: date = date(2024, 12, 31)
) -> MarketData:
    """A :class:`MarketData` of equal-length paths on business days ending at ``end``."""
    lengths = {len(path) for path in paths.values()}
    if len(lengths) != 1:
        raise ValueError(f"all paths must have the same length, got {sorted(lengths)}")
    return MarketData(business_days(lengths.pop(), end), paths)


class PathSet:
    """Price paths for many symbols on one date axis, built from simple specifications.

    Every symbol starts as a flat zig-zag around ``level`` (RSI about 50, sitting on its moving
    averages); :meth:`trend` changes a symbol's trend and zig-zag, :meth:`rsi` makes its last
    close put RSI(window) exactly on a target.
    """

    def __init__(
        self, symbols: Iterable[str], *, length: int = 260, level: float = 100.0, step: float = 1.0
    ) -> None:
        self._length = length
        self._trends: dict[str, tuple[float, float, float]] = {
            symbol: (level, level, step) for symbol in symbols
        }
        self._targets: dict[str, tuple[float, int]] = {}

    def trend(self, symbol: str, start: float, end: float, step: float = 0.5) -> PathSet:
        """Give ``symbol`` a geometric trend from ``start`` to ``end`` plus a ``step`` zig-zag."""
        self._trends[symbol] = (start, end, step)
        return self

    def rsi(self, symbol: str, target: float, window: int = 10) -> PathSet:
        """Choose ``symbol``'s last close so that its RSI(window) there equals ``target``."""
        self._trends.setdefault(symbol, (100.0, 100.0, 1.0))
        self._targets[symbol] = (target, window)
        return self

    def paths(self) -> dict[str, FloatArray]:
        """The closes of every symbol."""
        out: dict[str, FloatArray] = {}
        for symbol, (start, end, step) in self._trends.items():
            if symbol in self._targets:
                target, window = self._targets[symbol]
                base = trend_path(self._length - 1, start, end, step)
                out[symbol] = append_close_for_rsi(base, target, window)
            else:
                out[symbol] = trend_path(self._length, start, end, step)
        return out

    def market(self, end: date = date(2024, 12, 31)) -> MarketData:
        """The paths as :class:`MarketData` on business days ending at ``end``."""
        return market_from_paths(self.paths(), end)

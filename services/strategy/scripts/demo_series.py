"""Building blocks of the demo dataset's proxy series (used by build_demo_dataset.py).

Pure-Python float arithmetic on daily returns relative to the previous close; seeded
``random.Random`` draws, so a rebuild gives the same bytes.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

Prices = dict[date, float]
"""A price series keyed by session date."""


def gauss_stream(symbol: str) -> Callable[[], float]:
    """Standard normal draws (Box-Muller over ``random.random``, stable across Pythons)."""
    rng = random.Random(zlib.crc32(symbol.encode("ascii")))  # noqa: S311 - reproducible, not secret

    def draw() -> float:
        u1 = 1.0 - rng.random()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * rng.random())

    return draw


LOSS_FLOOR = -0.95
"""No proxy loses more than this in a day (a leveraged fund would close first)."""


@dataclass(frozen=True)
class Moves:
    """Daily moves relative to the previous close (fractions): open, high, low, close."""

    open: tuple[float, ...]
    high: tuple[float, ...]
    low: tuple[float, ...]
    close: tuple[float, ...]

    @classmethod
    def from_returns(cls, returns: Sequence[float]) -> Moves:
        """Close-only moves: open at the previous close, high and low at the extremes."""
        return cls(
            tuple(0.0 for _ in returns),
            tuple(max(0.0, r) for r in returns),
            tuple(min(0.0, r) for r in returns),
            tuple(returns),
        )

    def levered(self, factor: float, yearly_fee: float = 0.0) -> Moves:
        """A daily-reset ``factor`` x fund of these moves, less ``yearly_fee`` (in 252 parts)."""
        fee = yearly_fee / 252.0
        high, low = (self.high, self.low) if factor >= 0 else (self.low, self.high)

        def scale(values: Sequence[float], cost: float = 0.0) -> tuple[float, ...]:
            return tuple(max(LOSS_FLOOR, factor * value - cost) for value in values)

        return Moves(scale(self.open), scale(high), scale(low), scale(self.close, fee))


@dataclass(frozen=True)
class Recipe:
    """One output symbol: where it comes from and how its bars are made."""

    symbol: str
    synthetic: bool
    source: str
    method: str
    moves: Moves | None = None
    start: float = 50.0
    real: dict[str, Prices] | None = None
    days: tuple[date, ...] = ()

    def bars(self, min_price: float) -> list[tuple[float, float, float, float, float]]:
        """OHLCV rows for every day; proxies are chained from ``start`` and kept >= min_price."""
        if self.real is not None:
            r = self.real
            return [
                (r["open"][d], r["high"][d], r["low"][d], r["close"][d], r["volume"][d])
                for d in self.days
            ]
        assert self.moves is not None
        m = self.moves
        rows: list[tuple[float, float, float, float, float]] = []
        previous = self.start
        for o, h, lo, c in zip(m.open, m.high, m.low, m.close, strict=True):
            open_, close = previous * (1 + o), previous * (1 + c)
            high = max(previous * (1 + h), open_, close)
            low = min(previous * (1 + lo), open_, close)
            rows.append((open_, high, low, close, 0.0))
            previous = close
        lift = max(1.0, min_price / min(row[2] for row in rows))
        return [(o * lift, h * lift, lo * lift, c * lift, v) for o, h, lo, c, v in rows]


class Sources:
    """Daily returns of the real input series on the output calendar."""

    def __init__(
        self,
        closes: dict[str, Prices],
        indexes: dict[str, dict[str, Prices]],
        described: dict[str, str],
        calendar: Sequence[date],
        first: int,
    ) -> None:
        self.closes, self.indexes, self.described = closes, indexes, described
        self.calendar, self.first = calendar, first
        self.days = tuple(calendar[first:])

    def returns(self, name: str) -> list[float | None]:
        """Close-to-close returns of ``name``; ``None`` where it has no price for either day."""
        prices = self.closes[name]
        out: list[float | None] = []
        for index in range(self.first, len(self.calendar)):
            day, before = self.calendar[index], self.calendar[index - 1]
            ok = day in prices and before in prices
            out.append(prices[day] / prices[before] - 1.0 if ok else None)
        return out

    def basket(self, *names: str) -> list[float]:
        """Equal-weight daily-rebalanced returns of ``names`` (each must cover every day)."""
        series = [self.returns(name) for name in names]
        out: list[float] = []
        for values in zip(*series, strict=True):
            if any(value is None for value in values):
                raise SystemExit(f"basket {names}: a component has a gap")
            out.append(sum(v for v in values if v is not None) / len(values))
        return out

    def partial_basket(self, *names: str) -> list[float | None]:
        """Like :meth:`basket` but ``None`` on days some component does not cover."""
        series = [self.returns(name) for name in names]
        return [
            None if any(v is None for v in values) else sum(v or 0.0 for v in values) / len(values)
            for values in zip(*series, strict=True)
        ]

    def index_moves(self, name: str) -> Moves:
        """Real open/high/low/close moves of an index relative to its previous close."""
        ohlcv = self.indexes[name]
        rows = []
        for index in range(self.first, len(self.calendar)):
            day, before = self.calendar[index], self.calendar[index - 1]
            base = ohlcv["close"][before]
            rows.append(
                [ohlcv[field][day] / base - 1.0 for field in ("open", "high", "low", "close")]
            )
        return Moves(*(tuple(row[i] for row in rows) for i in range(4)))

    def momentum_sign(self, name: str, lookback: int) -> list[float]:
        """+1/-1: the sign of ``name``'s ``lookback``-session return as of the previous day."""
        prices = self.closes[name]
        out = []
        for index in range(self.first, len(self.calendar)):
            then, now = self.calendar[index - 1 - lookback], self.calendar[index - 1]
            out.append(1.0 if prices[now] >= prices[then] else -1.0)
        return out

    def source(self, *names: str) -> str:
        """Provenance text for the inputs ``names``."""
        files: dict[str, list[str]] = {}
        for name in names:
            files.setdefault(self.described[name], []).append(name.removeprefix("bokeh:"))
        return "; ".join(f"{where} ({', '.join(found)})" for where, found in files.items())


def splice(primary: Sequence[float | None], fallback: Sequence[float]) -> list[float]:
    """``primary`` where it has a value, else ``fallback``."""
    return [p if p is not None else f for p, f in zip(primary, fallback, strict=True)]


def combine(
    *terms: tuple[float, Sequence[float]],
    drift: float = 0.0,
    noise: tuple[Callable[[], float], float] | None = None,
) -> list[float]:
    """sum(weight x series) + drift (+ sd x seeded standard normal draws), floored.

    The draws are de-meaned (their sample mean is subtracted), so ``drift`` alone sets the
    long-run trend instead of the luck of one seed.
    """
    length = len(terms[0][1])
    shocks = [0.0] * length
    if noise is not None:
        draw, sd = noise
        shocks = [draw() for _ in range(length)]
        mean = sum(shocks) / length
        shocks = [sd * (shock - mean) for shock in shocks]
    return [
        max(LOSS_FLOOR, drift + shocks[i] + sum(w * series[i] for w, series in terms))
        for i in range(length)
    ]

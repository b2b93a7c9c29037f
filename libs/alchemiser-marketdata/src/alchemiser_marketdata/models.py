"""Market-data values: one daily :class:`Bar`, a symbol's :class:`PriceHistory`, dataset labels.

Prices are ``Decimal`` (money); :class:`PriceHistory` also offers the closes as a read-only
float64 numpy array for indicator code, which works on floats.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

__all__ = ["Bar", "PriceHistory", "SymbolInfo"]

_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class Bar:
    """One daily bar: the session's date, prices as ``Decimal`` and the share volume."""

    date: _dt.date
    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    def __post_init__(self) -> None:
        if not self.symbol or self.symbol != self.symbol.strip():
            raise ValueError(f"bad symbol {self.symbol!r}")
        for name in ("open", "high", "low", "close"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ValueError(f"{name} must be a positive finite Decimal, got {value!r}")
        if self.volume < 0:
            raise ValueError(f"volume must not be negative, got {self.volume}")


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """Where a dataset's series comes from; ``synthetic`` marks derived or proxied series."""

    symbol: str
    synthetic: bool
    source: str
    method: str | None = None


class PriceHistory:
    """The daily bars of one symbol, oldest first, with no two bars on the same date.

    Decimal access (``bars``, ``close_on``, ``last_close``) is for money; ``dates`` and
    ``closes`` are read-only numpy arrays for indicator code.
    """

    __slots__ = ("_bars", "_closes", "_dates", "_days", "_symbol")

    def __init__(self, symbol: str, bars: Iterable[Bar]) -> None:
        self._symbol = symbol
        self._bars = tuple(bars)
        if not self._bars:
            raise ValueError(f"{symbol}: a price history needs at least one bar")
        for bar in self._bars:
            if bar.symbol != symbol:
                raise ValueError(f"{symbol}: got a bar of {bar.symbol}")
        self._days = tuple(bar.date for bar in self._bars)
        for earlier, later in itertools.pairwise(self._days):
            if later <= earlier:
                raise ValueError(f"{symbol}: dates must be strictly increasing ({later})")
        self._dates: npt.NDArray[np.datetime64] | None = None
        self._closes: npt.NDArray[np.float64] | None = None

    @property
    def symbol(self) -> str:
        """The ticker symbol."""
        return self._symbol

    @property
    def bars(self) -> tuple[Bar, ...]:
        """Every bar, oldest first."""
        return self._bars

    @property
    def days(self) -> tuple[_dt.date, ...]:
        """The bar dates as ``datetime.date`` values, oldest first."""
        return self._days

    @property
    def dates(self) -> npt.NDArray[np.datetime64]:
        """The bar dates as a read-only ``datetime64[D]`` array."""
        if self._dates is None:
            # from day numbers: numpy converts date objects one by one, ~20 times slower
            ordinals = np.fromiter((day.toordinal() for day in self._days), np.int64, len(self))
            array = (ordinals - _EPOCH_ORDINAL).astype("datetime64[D]")
            array.setflags(write=False)
            self._dates = array
        return self._dates

    @property
    def closes(self) -> npt.NDArray[np.float64]:
        """The closes as a read-only float64 array (for indicators, never for money)."""
        if self._closes is None:
            array = np.array([float(bar.close) for bar in self._bars], dtype=np.float64)
            array.setflags(write=False)
            self._closes = array
        return self._closes

    @property
    def close_values(self) -> tuple[Decimal, ...]:
        """The closes as exact Decimals, oldest first."""
        return tuple(bar.close for bar in self._bars)

    @property
    def first_date(self) -> _dt.date:
        """The date of the oldest bar."""
        return self._days[0]

    @property
    def last_date(self) -> _dt.date:
        """The date of the newest bar."""
        return self._days[-1]

    @property
    def last_bar(self) -> Bar:
        """The newest bar."""
        return self._bars[-1]

    def bar_on_or_before(self, day: _dt.date) -> Bar | None:
        """The last bar dated ``day`` or earlier (``None`` when the history starts later)."""
        position = bisect.bisect_right(self._days, day)
        return self._bars[position - 1] if position else None

    def close_on(self, day: _dt.date) -> Decimal | None:
        """The close of the last bar at or before ``day`` (weekends and holidays look back)."""
        bar = self.bar_on_or_before(day)
        return None if bar is None else bar.close

    def between(self, start: _dt.date, end: _dt.date) -> PriceHistory | None:
        """The bars dated ``start`` to ``end`` inclusive; ``None`` when there are none."""
        low = bisect.bisect_left(self._days, start)
        high = bisect.bisect_right(self._days, end)
        if low >= high:
            return None
        if low == 0 and high == len(self._bars):
            return self
        return self._slice(low, high)

    def _slice(self, low: int, high: int) -> PriceHistory:
        """Bars ``low:high`` of this (already validated) history, sharing its arrays.

        A window is taken per workflow: re-validating its bars and rebuilding ``dates`` and
        ``closes`` from Decimals each time cost more than evaluating the strategies. The
        arrays are read-only views of this history's, so the values are the same.
        """
        window = PriceHistory.__new__(PriceHistory)
        window._symbol = self._symbol
        window._bars = self._bars[low:high]
        window._days = self._days[low:high]
        window._dates = self.dates[low:high]
        window._closes = self.closes[low:high]
        return window

    def __len__(self) -> int:
        return len(self._bars)

    def __iter__(self) -> Iterator[Bar]:
        return iter(self._bars)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PriceHistory):
            return NotImplemented
        return self._symbol == other._symbol and self._bars == other._bars

    def __hash__(self) -> int:
        return hash((self._symbol, self._bars))

    def __repr__(self) -> str:
        return (
            f"PriceHistory({self._symbol!r}, {len(self._bars)} bars, "
            f"{self.first_date.isoformat()}..{self.last_date.isoformat()})"
        )

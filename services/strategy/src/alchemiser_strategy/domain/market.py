"""Market data as a value, and the per-evaluation indicator cache.

``MarketData`` holds daily closes of many symbols aligned to one shared, strictly increasing
date axis; the as-of date is the last bar. A symbol that started trading after the first date
has leading NaNs; after its first price there must be no gaps (the market-data adapter fills or
drops them before building the value).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import date
from types import MappingProxyType

import numpy as np

from alchemiser_strategy.domain.errors import InvalidMarketDataError
from alchemiser_strategy.domain.indicators import INDICATORS, FloatArray, IndicatorArgs, as_args
from alchemiser_strategy.domain.model import IndicatorRef

__all__ = ["IndicatorCache", "MarketData"]


class MarketData:
    """Daily closes per symbol aligned to ``dates``; immutable (arrays are read-only copies)."""

    __slots__ = ("_closes", "_dates", "_first_valid")

    def __init__(
        self,
        dates: Sequence[date],
        closes: Mapping[str, Sequence[float] | FloatArray],
    ) -> None:
        self._dates = tuple(dates)
        if not self._dates:
            raise InvalidMarketDataError("market data needs at least one date")
        if any(later <= earlier for earlier, later in itertools.pairwise(self._dates)):
            raise InvalidMarketDataError("dates must be strictly increasing")
        frozen: dict[str, FloatArray] = {}
        first_valid: dict[str, int] = {}
        for symbol, values in closes.items():
            array = np.array(values, dtype=np.float64)
            if array.ndim != 1 or len(array) != len(self._dates):
                raise InvalidMarketDataError(
                    f"{symbol}: expected {len(self._dates)} closes, got shape {array.shape}"
                )
            first_valid[symbol] = _validate_closes(symbol, array)
            array.setflags(write=False)
            frozen[symbol] = array
        self._closes: Mapping[str, FloatArray] = MappingProxyType(frozen)
        self._first_valid: Mapping[str, int] = MappingProxyType(first_valid)

    @property
    def dates(self) -> tuple[date, ...]:
        """The shared date axis, oldest first."""
        return self._dates

    @property
    def closes(self) -> Mapping[str, FloatArray]:
        """Read-only closes per symbol (NaN before a symbol's first trading day)."""
        return self._closes

    @property
    def as_of(self) -> date:
        """The date of the last bar."""
        return self._dates[-1]

    @property
    def symbols(self) -> frozenset[str]:
        """Every symbol with a price column."""
        return frozenset(self._closes)

    def __len__(self) -> int:
        return len(self._dates)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._closes

    def first_valid_index(self, symbol: str) -> int:
        """Index of the symbol's first price (``len(self)`` when it has none)."""
        return self._first_valid[symbol]

    def index_of(self, day: date) -> int:
        """Bar index of ``day``; raises ``KeyError`` when the date is not on the axis."""
        position = bisect.bisect_left(self._dates, day)
        if position >= len(self._dates) or self._dates[position] != day:
            raise KeyError(day)
        return position

    def restricted_to(self, symbols: Iterable[str]) -> MarketData:
        """A copy holding only ``symbols`` (those missing here are simply absent)."""
        wanted = set(symbols)
        return MarketData(self._dates, {s: a for s, a in self._closes.items() if s in wanted})


def _validate_closes(symbol: str, array: FloatArray) -> int:
    finite = np.isfinite(array)
    if not finite.any():
        return len(array)
    first = int(np.argmax(finite))
    if not finite[first:].all():
        raise InvalidMarketDataError(f"{symbol}: gap in closes after its first price")
    if (array[first:] <= 0.0).any():
        raise InvalidMarketDataError(f"{symbol}: closes must be positive")
    return first


class IndicatorCache:
    """Computes each (source, indicator, window) series once for one ``MarketData``.

    Sources are symbols or, for strategy nodes scored by their own performance, any hashable
    key with a price-like series supplied on first use. Series cover every bar, so one cache
    serves evaluations at any bar (a backtest pays for each indicator once).
    """

    __slots__ = ("_market", "_prices", "_series", "_values", "computations", "simulations")

    def __init__(self, market: MarketData) -> None:
        self._market = market
        self._series: dict[tuple[Hashable, str, IndicatorArgs], FloatArray] = {}
        self._values: dict[IndicatorRef, list[float]] = {}
        self._prices: dict[Hashable, FloatArray] = {}
        #: how many series were computed (not served from the cache); useful in tests.
        self.computations = 0
        #: how many price-like series of compound nodes were computed (see ``derived_prices``).
        self.simulations = 0

    @property
    def market(self) -> MarketData:
        """The market data this cache belongs to."""
        return self._market

    def series(self, symbol: str, indicator: str, args: IndicatorArgs | int) -> FloatArray:
        """The full series of ``indicator(args)`` over ``symbol``'s closes (``KeyError`` if absent).

        ``args`` is the indicator's parameters (an ``int`` is read as ``(window,)``).
        """
        key = (symbol, indicator, as_args(args))
        cached = self._series.get(key)
        if cached is None:
            cached = self._compute(indicator, key[2], self._market.closes[symbol])
            self._series[key] = cached
        return cached

    def values_of(self, ref: IndicatorRef) -> list[float] | None:
        """:meth:`series` of ``ref`` as Python floats, or ``None`` when its symbol has no column.

        Looked up by the reference itself (hashed by identity): the engine reads one bar of
        a reference per condition, on every bar of every simulated node, so this is the
        evaluator's hot path; the values are the series' exactly.
        """
        found = self._values.get(ref)
        if found is None:
            if ref.symbol not in self._market:
                return None
            found = self.series(ref.symbol, ref.indicator, ref.args).tolist()
            self._values[ref] = found
        return found

    def derived_series(
        self,
        source: Hashable,
        indicator: str,
        args: IndicatorArgs | int,
        prices: Callable[[], FloatArray],
    ) -> FloatArray:
        """The series of ``indicator(args)`` over a price-like series computed by ``prices``."""
        key = (source, indicator, as_args(args))
        cached = self._series.get(key)
        if cached is None:
            cached = self._compute(indicator, key[2], self.derived_prices(source, prices))
            self._series[key] = cached
        return cached

    def derived_prices(self, source: Hashable, prices: Callable[[], FloatArray]) -> FloatArray:
        """The price-like series of ``source``, computed once by ``prices``."""
        cached = self._prices.get(source)
        if cached is None:
            self.simulations += 1
            cached = prices()
            cached.setflags(write=False)
            self._prices[source] = cached
        return cached

    def _compute(self, indicator: str, args: IndicatorArgs, prices: FloatArray) -> FloatArray:
        self.computations += 1
        out = np.full(len(prices), math.nan, dtype=np.float64)
        finite = np.isfinite(prices)
        if finite.any():
            first = int(np.argmax(finite))
            out[first:] = INDICATORS[indicator].compute(prices[first:], args)
        out.setflags(write=False)
        return out

"""The performance series of a compound node, used to score it in filters and inverse volatility.

Method (Composer's "a group is scored by its own backtest"): the node is evaluated on every
bar ``t`` from the first bar where all of its indicators and holdings have values (its
*start*); the weights decided at the close of ``t`` earn the holdings' close-to-close returns
of ``t + 1``. Compounding those daily returns from 1.0 at the start gives a price-like series
(NaN before the start) to which any indicator applies. The series is causal: its value at bar
``t`` uses prices up to ``t`` only, so one series serves evaluations at every bar, and it does
not depend on which bar is being evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from alchemiser_strategy.domain.errors import MissingSymbolError
from alchemiser_strategy.domain.indicators import INDICATORS, FloatArray
from alchemiser_strategy.domain.market import MarketData
from alchemiser_strategy.domain.model import (
    Asset,
    Filter,
    If,
    IndicatorRef,
    InverseVolatility,
    PortfolioNode,
)

__all__ = ["first_evaluable_bar", "performance_series"]


def first_evaluable_bar(node: PortfolioNode, market: MarketData) -> int:
    """First bar at which every indicator and holding in ``node`` has a value (any branch).

    Returns ``len(market)`` or more when that bar is beyond the data.
    """
    if isinstance(node, Asset):
        return _first_price(node.symbol, node, market)
    if isinstance(node, If):
        bars = [first_evaluable_bar(node.then, market), first_evaluable_bar(node.otherwise, market)]
        for side in (node.condition.left, node.condition.right):
            if isinstance(side, IndicatorRef):
                spec = INDICATORS[side.indicator]
                first = _first_price(side.symbol, side, market)
                bars.append(first + spec.first_valid_index(side.args))
        return max(bars)
    bars = [first_evaluable_bar(child, market) for child in node.children]
    if isinstance(node, InverseVolatility | Filter):
        offset = (
            INDICATORS["stdev-return"].first_valid_index(node.window)
            if isinstance(node, InverseVolatility)
            else INDICATORS[node.indicator].first_valid_index(node.args)
        )
        bars = [bar + offset for bar in bars]
    return max(bars)


def performance_series(
    node: PortfolioNode,
    market: MarketData,
    weights_at: Callable[[int], Mapping[str, float]],
) -> FloatArray:
    """Compounded daily returns of ``node``'s own allocations (see the module docstring)."""
    length = len(market)
    out = np.full(length, math.nan, dtype=np.float64)
    start = first_evaluable_bar(node, market)
    if start >= length:
        return out
    closes: dict[str, list[float]] = {}
    growth = [1.0]
    for bar in range(start, length - 1):
        daily = 0.0
        for symbol, weight in weights_at(bar).items():
            prices = closes.get(symbol)
            if prices is None:
                prices = closes[symbol] = market.closes[symbol].tolist()
            daily += weight * (prices[bar + 1] / prices[bar] - 1.0)
        growth.append(1.0 + daily)
    out[start:] = np.cumprod(growth)
    return out


def _first_price(symbol: str, node: Asset | IndicatorRef, market: MarketData) -> int:
    if symbol not in market:
        raise MissingSymbolError(f"no price data for symbol '{symbol}'", node.position)
    return market.first_valid_index(symbol)

"""Evaluate a compiled strategy on market data at one bar.

Semantics worth knowing:

* ``group`` and ``weight-equal`` split their weight equally between their children;
  ``weight-specified`` uses its fixed weights; ``if`` takes one branch.
* ``weight-inverse-volatility n`` weights each child by 1 / stdev-return(n); when some
  children have zero volatility they share the whole weight equally (the limit).
* ``filter`` ranks its children by the indicator and equal-weights the top or bottom ``k``
  (all of them when there are fewer). Ties are broken alphabetically by the child's label
  (symbol, group name, or ``operator@line:col``), whichever the direction.
* A child that is not a plain asset is scored by its own performance series (see
  :mod:`alchemiser_strategy.domain.performance`).

Weights are exact fractions during evaluation and become Decimals summing to exactly 1 only at
the end (:func:`~alchemiser_strategy.domain.weights.to_decimal_weights`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

from alchemiser_strategy.domain.allocation import (
    Allocation,
    ConditionTrace,
    RankingTrace,
    TraceEntry,
)
from alchemiser_strategy.domain.errors import (
    InsufficientHistoryError,
    MissingSymbolError,
    SourcePosition,
)
from alchemiser_strategy.domain.indicators import INDICATORS, FloatArray
from alchemiser_strategy.domain.market import IndicatorCache, MarketData
from alchemiser_strategy.domain.model import (
    Asset,
    Comparison,
    Expression,
    Filter,
    Group,
    If,
    IndicatorRef,
    InverseVolatility,
    NumberLiteral,
    PortfolioNode,
    Strategy,
    WeightEqual,
    WeightSpecified,
    node_label,
)
from alchemiser_strategy.domain.performance import performance_series
from alchemiser_strategy.domain.weights import WEIGHT_PLACES, to_decimal_weights

__all__ = ["Weights", "evaluate", "evaluate_weights"]

Weights = dict[str, Fraction]

_COMPARE = {
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}


def evaluate(
    strategy: Strategy,
    market: MarketData,
    *,
    cache: IndicatorCache | None = None,
    index: int | None = None,
    places: int = WEIGHT_PLACES,
) -> Allocation:
    """Evaluate ``strategy`` at bar ``index`` (default: the last bar, i.e. ``market.as_of``).

    Pass one ``cache`` (built on the same ``market``) to every call of a run or a backtest so
    each indicator series is computed once. Raises a ``StrategyEvaluationError`` subclass with
    the offending node's position when a symbol is missing or history is too short.
    """
    cache = _cache_for(market, cache)
    bar = _bar(market, index)
    trace: list[TraceEntry] = []
    weights = evaluate_weights(strategy.body, cache, bar, trace)
    return Allocation(
        strategy=strategy.name,
        as_of=market.dates[bar],
        weights=to_decimal_weights(weights, places),
        trace=tuple(trace),
    )


def evaluate_weights(
    node: PortfolioNode,
    cache: IndicatorCache,
    index: int,
    trace: list[TraceEntry] | None = None,
) -> Weights:
    """Exact fractional weights of ``node`` at bar ``index``; appends to ``trace`` if given."""
    return _Evaluator(cache, index, trace).portfolio(node)


def _cache_for(market: MarketData, cache: IndicatorCache | None) -> IndicatorCache:
    if cache is None:
        return IndicatorCache(market)
    if cache.market is not market:
        raise ValueError("the indicator cache belongs to a different MarketData value")
    return cache


def _bar(market: MarketData, index: int | None) -> int:
    length = len(market)
    if index is None:
        return length - 1
    if not -length <= index < length:
        raise ValueError(f"bar index {index} is outside the {length} bars of market data")
    return index % length


class _Evaluator:
    """Walks the node tree for one bar."""

    __slots__ = ("_cache", "_index", "_market", "_trace")

    def __init__(self, cache: IndicatorCache, index: int, trace: list[TraceEntry] | None) -> None:
        self._cache = cache
        self._market = cache.market
        self._index = index
        self._trace = trace

    def portfolio(self, node: PortfolioNode) -> Weights:
        if isinstance(node, Asset):
            if node.symbol not in self._market:
                raise _missing(node.symbol, node.position)
            return {node.symbol: Fraction(1)}
        if isinstance(node, If):
            chosen = node.then if self._condition(node.condition) else node.otherwise
            return self.portfolio(chosen)
        if isinstance(node, Group | WeightEqual):
            share = Fraction(1, len(node.children))
            return _combine((share, self.portfolio(child)) for child in node.children)
        if isinstance(node, WeightSpecified):
            return _combine(
                (weight, self.portfolio(child))
                for weight, child in zip(node.weights, node.children, strict=True)
            )
        if isinstance(node, InverseVolatility):
            return self._inverse_volatility(node)
        return self._filter(node)

    # -- conditions ---------------------------------------------------------------------------
    def _condition(self, comparison: Comparison) -> bool:
        left = self._value(comparison.left)
        right = self._value(comparison.right)
        result = bool(_COMPARE[comparison.operator](left, right))
        if self._trace is not None:
            self._trace.append(
                ConditionTrace(comparison.position, comparison.render(), left, right, result)
            )
        return result

    def _value(self, expression: Expression) -> float:
        if isinstance(expression, NumberLiteral):
            return expression.value
        return self._indicator(expression)

    def _indicator(self, ref: IndicatorRef) -> float:
        if ref.symbol not in self._market:
            raise _missing(ref.symbol, ref.position)
        value = float(self._cache.series(ref.symbol, ref.indicator, ref.window)[self._index])
        if math.isnan(value):
            raise self._too_short(ref.render(), ref.symbol, ref.indicator, ref.window, ref.position)
        return value

    # -- scoring of children ------------------------------------------------------------------
    def _score(self, child: PortfolioNode, indicator: str, window: int, shown: str) -> float:
        if isinstance(child, Asset):
            if child.symbol not in self._market:
                raise _missing(child.symbol, child.position)
            series = self._cache.series(child.symbol, indicator, window)
        else:
            series = self._cache.derived_series(
                child, indicator, window, lambda: self._performance(child)
            )
        value = float(series[self._index])
        if math.isnan(value):
            label = node_label(child)
            raise self._too_short(f"{shown} of {label}", label, indicator, window, child.position)
        return value

    def _performance(self, child: PortfolioNode) -> FloatArray:
        cache = self._cache
        return performance_series(
            child, cache.market, lambda bar: evaluate_weights(child, cache, bar)
        )

    def _inverse_volatility(self, node: InverseVolatility) -> Weights:
        shown = f"(stdev-return {{:window {node.window}}})"
        stdevs = [self._score(child, "stdev-return", node.window, shown) for child in node.children]
        calm = [i for i, stdev in enumerate(stdevs) if stdev == 0.0]
        if calm:
            raw = [Fraction(1 if i in calm else 0) for i in range(len(stdevs))]
        else:
            raw = [Fraction.from_float(1.0 / stdev) for stdev in stdevs]
        total = sum(raw, Fraction(0))
        if self._trace is not None:
            labels = tuple(node_label(child) for child in node.children)
            self._trace.append(
                RankingTrace(
                    node.position,
                    f"(weight-inverse-volatility {node.window})",
                    tuple(zip(labels, stdevs, strict=True)),
                    tuple(label for label, weight in zip(labels, raw, strict=True) if weight),
                )
            )
        return _combine(
            (weight / total, self.portfolio(child))
            for weight, child in zip(raw, node.children, strict=True)
            if weight
        )

    def _filter(self, node: Filter) -> Weights:
        shown = f"({node.indicator} {{:window {node.window}}})"
        scored = [
            (self._score(child, node.indicator, node.window, shown), node_label(child), order)
            for order, child in enumerate(node.children)
        ]
        if node.select_top:
            scored.sort(key=lambda item: (-item[0], item[1], item[2]))
        else:
            scored.sort(key=lambda item: (item[0], item[1], item[2]))
        winners = scored[: node.count]
        if self._trace is not None:
            self._trace.append(
                RankingTrace(
                    node.position,
                    node.render(),
                    tuple((label, score) for score, label, _ in scored),
                    tuple(label for _, label, _ in winners),
                )
            )
        share = Fraction(1, len(winners))
        return _combine((share, self.portfolio(node.children[order])) for _, _, order in winners)

    def _too_short(
        self, shown: str, source: str, indicator: str, window: int, position: SourcePosition
    ) -> InsufficientHistoryError:
        needed = INDICATORS[indicator].first_valid_index(window) + 1
        day = self._market.dates[self._index]
        return InsufficientHistoryError(
            f"not enough history for {shown} on {day.isoformat()}: {source} needs at least "
            f"{needed} bars of prices before it has a value",
            position,
        )


def _combine(parts: Iterable[tuple[Fraction, Weights]]) -> Weights:
    combined: Weights = {}
    for share, weights in parts:
        for symbol, weight in weights.items():
            combined[symbol] = combined.get(symbol, Fraction(0)) + share * weight
    return combined


def _missing(symbol: str, position: SourcePosition) -> MissingSymbolError:
    return MissingSymbolError(f"no price data for symbol '{symbol}'", position)

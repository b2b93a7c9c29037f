"""Evaluate a compiled strategy on market data at one bar.

Semantics worth knowing:

* ``group`` and ``weight-equal`` split their weight equally between their children;
  ``weight-specified`` uses its fixed weights; ``if`` takes one branch.
* ``weight-inverse-volatility n`` weights each child by 1 / stdev-return(n). A child whose
  volatility is zero (flat or stale prices, below :data:`ZERO_VOLATILITY`) makes the weights
  undefined: the node raises :class:`ZeroVolatilityError` (the file is dropped for that day)
  unless every child is flat, in which case they share the weight equally. A child without a
  value yet (short history) raises ``InsufficientHistoryError`` as any indicator does.
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
import operator
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Generic, TypeVar

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
    ZeroVolatilityError,
)
from alchemiser_strategy.domain.indicators import INDICATORS, FloatArray, IndicatorArgs
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
    render_options,
)
from alchemiser_strategy.domain.performance import performance_series
from alchemiser_strategy.domain.weights import WEIGHT_PLACES, to_decimal_weights

__all__ = [
    "ZERO_VOLATILITY",
    "FloatWeights",
    "Weights",
    "evaluate",
    "evaluate_weights",
]

Weights = dict[str, Fraction]
FloatWeights = dict[str, float]

_N = TypeVar("_N", Fraction, float)

_EQUAL_SPLIT = (Group, WeightEqual)

ZERO_VOLATILITY = 1e-9
"""A stdev-return (daily %) at or below this is "zero": prices flat over the whole window."""

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "=": operator.eq,
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
    weights = evaluate_weights(strategy.body, cache, bar, trace, strategy.structure_keys)
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
    keys: Mapping[PortfolioNode, str] | None = None,
) -> Weights:
    """Exact fractional weights of ``node`` at bar ``index``; appends to ``trace`` if given.

    ``keys`` (a strategy's ``structure_keys``) lets identical sub-trees share one performance
    series in ``cache``; without it each node has its own.
    """
    return _Evaluator(cache, index, trace, _EXACT, keys).portfolio(node)


@dataclass(frozen=True, slots=True)
class _Arithmetic(Generic[_N]):
    """How an evaluator makes its numbers: exact fractions or floats."""

    ratio: Callable[[int, int], _N]
    from_fraction: Callable[[Fraction], _N]
    from_float: Callable[[float], _N]


_EXACT: _Arithmetic[Fraction] = _Arithmetic(Fraction, lambda value: value, Fraction.from_float)
_FLOAT: _Arithmetic[float] = _Arithmetic(lambda top, bottom: top / bottom, float, lambda x: x)


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


class _Evaluator(Generic[_N]):
    """Walks the node tree for one bar, with exact or float weights."""

    __slots__ = ("_cache", "_index", "_keys", "_market", "_math", "_one", "_trace")

    def __init__(
        self,
        cache: IndicatorCache,
        index: int,
        trace: list[TraceEntry] | None,
        arithmetic: _Arithmetic[_N],
        keys: Mapping[PortfolioNode, str] | None,
    ) -> None:
        self._keys: Mapping[PortfolioNode, str] = keys or {}
        self._cache = cache
        self._market = cache.market
        self._index = index
        self._trace = trace
        self._math: _Arithmetic[_N] = arithmetic
        self._one: _N = arithmetic.ratio(1, 1)

    def portfolio(self, node: PortfolioNode) -> dict[str, _N]:
        while isinstance(node, If):  # the commonest node: followed without recursing
            node = node.then if self._condition(node.condition) else node.otherwise
        if isinstance(node, Asset):
            if node.symbol not in self._market:
                raise _missing(node.symbol, node.position)
            return {node.symbol: self._one}
        if isinstance(node, _EQUAL_SPLIT):
            if len(node.children) == 1:
                return self.portfolio(node.children[0])
            share = self._math.ratio(1, len(node.children))
            return _combine([(share, self.portfolio(child)) for child in node.children])
        if isinstance(node, WeightSpecified):
            convert = self._math.from_fraction
            return _combine(
                [
                    (convert(weight), self.portfolio(child))
                    for weight, child in zip(node.weights, node.children, strict=True)
                ]
            )
        if isinstance(node, InverseVolatility):
            return self._inverse_volatility(node)
        return self._filter(node)

    # -- conditions ---------------------------------------------------------------------------
    def _condition(self, comparison: Comparison) -> bool:
        left = self._value(comparison.left)
        right = self._value(comparison.right)
        result = _COMPARE[comparison.operator](left, right)
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
        values = self._cache.values_of(ref)
        if values is None:
            raise _missing(ref.symbol, ref.position)
        value = values[self._index]
        if math.isnan(value):
            raise self._too_short(ref.render(), ref.symbol, ref.indicator, ref.args, ref.position)
        return value

    # -- scoring of children ------------------------------------------------------------------
    def _score(
        self, child: PortfolioNode, indicator: str, args: IndicatorArgs, shown: str
    ) -> float:
        if isinstance(child, Asset):
            if child.symbol not in self._market:
                raise _missing(child.symbol, child.position)
            series = self._cache.series(child.symbol, indicator, args)
        else:
            source: Hashable = self._keys.get(child, child)
            series = self._cache.derived_series(
                source, indicator, args, lambda: self._performance(child)
            )
        value = float(series[self._index])
        if math.isnan(value):
            label = node_label(child)
            raise self._too_short(f"{shown} of {label}", label, indicator, args, child.position)
        return value

    def _performance(self, child: PortfolioNode) -> FloatArray:
        # the same decisions with float weights (no trace): the daily returns of a
        # performance series, where exact fractions would only cost time; one evaluator
        # moved from bar to bar
        walker = _Evaluator(self._cache, self._index, None, _FLOAT, self._keys)

        def weights_at(bar: int) -> FloatWeights:
            walker._index = bar
            return walker.portfolio(child)

        return performance_series(child, self._market, weights_at)

    def _inverse_volatility(self, node: InverseVolatility) -> dict[str, _N]:
        shown = f"(stdev-return {{:window {node.window}}})"
        args = (node.window,)
        stdevs = [self._score(child, "stdev-return", args, shown) for child in node.children]
        flat = [i for i, stdev in enumerate(stdevs) if stdev <= ZERO_VOLATILITY]
        if len(flat) == len(stdevs):
            raw = [self._one] * len(stdevs)
        elif flat:
            flat_labels = ", ".join(node_label(node.children[i]) for i in flat)
            day = self._market.dates[self._index].isoformat()
            raise ZeroVolatilityError(
                f"(weight-inverse-volatility {node.window}) on {day}: {flat_labels} "
                f"{'has' if len(flat) == 1 else 'have'} zero volatility over {node.window} days "
                "(flat or stale prices), so inverse-volatility weights are undefined",
                node.position,
            )
        else:
            raw = [self._math.from_float(1.0 / stdev) for stdev in stdevs]
        total = sum(raw, self._math.ratio(0, 1))
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
            [
                (weight / total, self.portfolio(child))
                for weight, child in zip(raw, node.children, strict=True)
                if weight
            ]
        )

    def _filter(self, node: Filter) -> dict[str, _N]:
        shown = f"({node.indicator}{render_options(node.indicator, node.args)})"
        scored = [
            (self._score(child, node.indicator, node.args, shown), node_label(child), order)
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
        if len(winners) == 1:
            return self.portfolio(node.children[winners[0][2]])
        share = self._math.ratio(1, len(winners))
        return _combine([(share, self.portfolio(node.children[order])) for _, _, order in winners])

    def _too_short(
        self,
        shown: str,
        source: str,
        indicator: str,
        args: IndicatorArgs,
        position: SourcePosition,
    ) -> InsufficientHistoryError:
        needed = INDICATORS[indicator].first_valid_index(args) + 1
        day = self._market.dates[self._index]
        return InsufficientHistoryError(
            f"not enough history for {shown} on {day.isoformat()}: {source} needs at least "
            f"{needed} bars of prices before it has a value",
            position,
        )


def _combine(parts: Iterable[tuple[_N, dict[str, _N]]]) -> dict[str, _N]:
    combined: dict[str, _N] = {}
    for share, weights in parts:
        for symbol, weight in weights.items():
            part = share * weight
            previous = combined.get(symbol)
            combined[symbol] = part if previous is None else previous + part
    return combined


def _missing(symbol: str, position: SourcePosition) -> MissingSymbolError:
    return MissingSymbolError(f"no price data for symbol '{symbol}'", position)

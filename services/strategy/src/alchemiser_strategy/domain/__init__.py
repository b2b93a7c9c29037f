"""The pure core of the strategy service: DSL, indicators, evaluation and consolidation.

No Kafka, database, clock, network or file access: callers pass text, prices and weights in
and get values back. Typical run::

    strategies = [WeightedStrategy(load_strategy(text, name), weight) for ...]
    lookback = required_lookback(s.strategy for s in strategies)
    market = MarketData(dates, closes)            # built by the market-data adapter
    portfolio = run_strategies(strategies, market)
"""

from __future__ import annotations

from collections.abc import Iterable

from alchemiser_strategy.domain.allocation import (
    Allocation,
    ConditionTrace,
    RankingTrace,
    TraceEntry,
)
from alchemiser_strategy.domain.compiler import compile_strategy, load_strategy
from alchemiser_strategy.domain.consolidation import (
    ConsolidatedPortfolio,
    StrategyOutcome,
    WeightedStrategy,
    consolidate,
    run_strategies,
)
from alchemiser_strategy.domain.engine import evaluate
from alchemiser_strategy.domain.errors import (
    ArgumentTypeError,
    ArityError,
    ConsolidationError,
    InsufficientHistoryError,
    InvalidMarketDataError,
    MissingSymbolError,
    SourcePosition,
    StrategyError,
    StrategyEvaluationError,
    StrategySyntaxError,
    UnknownOperatorError,
    ZeroVolatilityError,
)
from alchemiser_strategy.domain.indicators import INDICATORS
from alchemiser_strategy.domain.market import IndicatorCache, MarketData
from alchemiser_strategy.domain.model import Strategy
from alchemiser_strategy.domain.weights import WEIGHT_PLACES, to_decimal_weights

__all__ = [
    "INDICATORS",
    "WEIGHT_PLACES",
    "Allocation",
    "ArgumentTypeError",
    "ArityError",
    "ConditionTrace",
    "ConsolidatedPortfolio",
    "ConsolidationError",
    "IndicatorCache",
    "InsufficientHistoryError",
    "InvalidMarketDataError",
    "MarketData",
    "MissingSymbolError",
    "RankingTrace",
    "SourcePosition",
    "Strategy",
    "StrategyError",
    "StrategyEvaluationError",
    "StrategyOutcome",
    "StrategySyntaxError",
    "TraceEntry",
    "UnknownOperatorError",
    "WeightedStrategy",
    "ZeroVolatilityError",
    "compile_strategy",
    "consolidate",
    "evaluate",
    "load_strategy",
    "required_lookback",
    "required_symbols",
    "run_strategies",
    "to_decimal_weights",
]


def required_symbols(strategies: Iterable[Strategy]) -> tuple[str, ...]:
    """Every symbol the strategies reference, sorted: fetch each once per run."""
    return tuple(sorted({symbol for strategy in strategies for symbol in strategy.symbols}))


def required_lookback(strategies: Iterable[Strategy], minimum: int = 1) -> int:
    """Daily bars to fetch so every strategy can be evaluated at the last bar (>= ``minimum``)."""
    return max([minimum, *(strategy.lookback_bars for strategy in strategies)])

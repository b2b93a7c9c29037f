"""Errors raised by the strategy domain.

Every error about a strategy file carries the :class:`SourcePosition` of the offending node and
renders as ``file:line:col: message`` so an operator can jump straight to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from alchemiser_common.errors import AlchemiserError

__all__ = [
    "ArgumentTypeError",
    "ArityError",
    "ConsolidationError",
    "InsufficientHistoryError",
    "InvalidMarketDataError",
    "MissingSymbolError",
    "SourcePosition",
    "StrategyError",
    "StrategyEvaluationError",
    "StrategySyntaxError",
    "UnknownOperatorError",
    "ZeroVolatilityError",
]


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """A place in a strategy file: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class StrategyError(AlchemiserError):
    """Root of the strategy domain's errors; ``position`` is set when a file location is known."""

    def __init__(self, message: str, position: SourcePosition | None = None) -> None:
        super().__init__(f"{position}: {message}" if position is not None else message)
        self.reason = message
        self.position = position


class StrategySyntaxError(StrategyError):
    """The text of a strategy file is not a well-formed s-expression."""


class StrategyEvaluationError(StrategyError):
    """A well-formed strategy cannot be compiled or evaluated."""


class UnknownOperatorError(StrategyEvaluationError):
    """A list starts with a name that is not an operator of the DSL."""


class ArityError(StrategyEvaluationError):
    """An operator received the wrong number of arguments."""


class ArgumentTypeError(StrategyEvaluationError):
    """An operator received an argument of the wrong kind (e.g. a string where a node goes)."""


class MissingSymbolError(StrategyEvaluationError):
    """The market data has no prices for a symbol the strategy needs."""


class InsufficientHistoryError(StrategyEvaluationError):
    """An indicator has no value yet at the evaluation bar (window longer than the history)."""


class ZeroVolatilityError(StrategyEvaluationError):
    """Inverse-volatility weights are undefined: some (not all) children have flat prices."""


class InvalidMarketDataError(StrategyError):
    """A market-data value is malformed (ragged arrays, gaps, non-positive prices)."""


class ConsolidationError(StrategyError):
    """Strategy allocation weights are invalid (negative, or all zero)."""

"""The result of evaluating one strategy: Decimal weights plus the trace that explains them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from alchemiser_strategy.domain.errors import SourcePosition

__all__ = ["Allocation", "ConditionTrace", "RankingTrace", "TraceEntry"]


@dataclass(frozen=True, slots=True)
class ConditionTrace:
    """One comparison evaluated on the decision path, with both sides' values."""

    position: SourcePosition
    expression: str
    left: float
    right: float
    result: bool

    def describe(self) -> str:
        """One line: where, what, the values and the outcome."""
        return (
            f"{self.position}: {self.expression} with {self.left:.4f} vs {self.right:.4f}"
            f" -> {'true' if self.result else 'false'}"
        )


@dataclass(frozen=True, slots=True)
class RankingTrace:
    """A filter or inverse-volatility step: each child's score and the chosen children.

    For a filter, ``scores`` are in rank order and ``selected`` are the winners; for inverse
    volatility, ``scores`` are the stdev-returns and every child is selected.
    """

    position: SourcePosition
    method: str
    scores: tuple[tuple[str, float], ...]
    selected: tuple[str, ...]

    def describe(self) -> str:
        """One line: where, how, every score and the selection."""
        scores = ", ".join(f"{label}={score:.4f}" for label, score in self.scores)
        return f"{self.position}: {self.method} scores [{scores}] -> {', '.join(self.selected)}"


TraceEntry = ConditionTrace | RankingTrace


@dataclass(frozen=True, slots=True)
class Allocation:
    """Target weights of one strategy at ``as_of``: Decimal, positive, summing to exactly 1."""

    strategy: str
    as_of: date
    weights: Mapping[str, Decimal]
    trace: tuple[TraceEntry, ...]

    def explain(self) -> str:
        """The decision path, one trace entry per line, then the weights."""
        lines = [entry.describe() for entry in self.trace]
        holdings = ", ".join(f"{symbol} {weight}" for symbol, weight in self.weights.items())
        lines.append(f"allocation: {holdings}")
        return "\n".join(lines)

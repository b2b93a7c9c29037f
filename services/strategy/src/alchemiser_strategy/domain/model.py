"""The compiled form of a strategy: a checked tree of typed nodes.

The compiler turns s-expressions into these nodes once, so every operator, arity and argument
type error is reported at load time (with its position) even in branches a given day never
takes. Nodes compare and hash by identity: the evaluator uses them as cache keys for the
performance series of compound nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from alchemiser_strategy.domain.errors import SourcePosition

__all__ = [
    "Asset",
    "Comparison",
    "Expression",
    "Filter",
    "Group",
    "If",
    "IndicatorRef",
    "InverseVolatility",
    "NumberLiteral",
    "PortfolioNode",
    "Strategy",
    "WeightEqual",
    "WeightSpecified",
    "node_label",
]


@dataclass(frozen=True, eq=False, slots=True)
class NumberLiteral:
    """A number in a comparison."""

    value: float
    text: str
    position: SourcePosition

    def render(self) -> str:
        """The literal as written."""
        return self.text


@dataclass(frozen=True, eq=False, slots=True)
class IndicatorRef:
    """An indicator of one symbol, e.g. ``(rsi "SPY" {:window 10})``."""

    indicator: str
    symbol: str
    window: int
    position: SourcePosition

    def render(self) -> str:
        """Composer-style text of the reference."""
        if self.indicator == "current-price":
            return f'({self.indicator} "{self.symbol}")'
        return f'({self.indicator} "{self.symbol}" {{:window {self.window}}})'


Expression = NumberLiteral | IndicatorRef


@dataclass(frozen=True, eq=False, slots=True)
class Comparison:
    """``(op left right)`` with op one of ``> < >= <=``."""

    operator: str
    left: Expression
    right: Expression
    position: SourcePosition

    def render(self) -> str:
        """Composer-style text of the comparison."""
        return f"({self.operator} {self.left.render()} {self.right.render()})"


@dataclass(frozen=True, eq=False, slots=True)
class Asset:
    """100% in one symbol."""

    symbol: str
    name: str | None
    position: SourcePosition


@dataclass(frozen=True, eq=False, slots=True)
class Group:
    """A named block; its children share the group's weight equally."""

    name: str
    children: tuple[PortfolioNode, ...]
    position: SourcePosition


@dataclass(frozen=True, eq=False, slots=True)
class WeightEqual:
    """Children share the weight equally."""

    children: tuple[PortfolioNode, ...]
    position: SourcePosition


@dataclass(frozen=True, eq=False, slots=True)
class WeightSpecified:
    """Children get fixed weights (normalised fractions summing to exactly 1)."""

    weights: tuple[Fraction, ...]
    children: tuple[PortfolioNode, ...]
    position: SourcePosition


@dataclass(frozen=True, eq=False, slots=True)
class InverseVolatility:
    """Children weighted in proportion to 1 / stdev-return(window) of each child."""

    window: int
    children: tuple[PortfolioNode, ...]
    position: SourcePosition


@dataclass(frozen=True, eq=False, slots=True)
class Filter:
    """Rank children by an indicator and equal-weight the top or bottom ``count``."""

    indicator: str
    window: int
    select_top: bool
    count: int
    children: tuple[PortfolioNode, ...]
    position: SourcePosition

    def render(self) -> str:
        """Composer-style text of the ranking."""
        select = "select-top" if self.select_top else "select-bottom"
        if self.indicator == "current-price":
            return f"(filter ({self.indicator}) ({select} {self.count}))"
        return f"(filter ({self.indicator} {{:window {self.window}}}) ({select} {self.count}))"


@dataclass(frozen=True, eq=False, slots=True)
class If:
    """``(if condition then else)``."""

    condition: Comparison
    then: PortfolioNode
    otherwise: PortfolioNode
    position: SourcePosition


PortfolioNode = Asset | Group | WeightEqual | WeightSpecified | InverseVolatility | Filter | If

_OPERATOR_NAMES: dict[type, str] = {
    Group: "group",
    WeightEqual: "weight-equal",
    WeightSpecified: "weight-specified",
    InverseVolatility: "weight-inverse-volatility",
    Filter: "filter",
    If: "if",
}


def node_label(node: PortfolioNode) -> str:
    """How a child is named in rankings and tie-breaks: symbol, group name, else op@line:col."""
    if isinstance(node, Asset):
        return node.symbol
    if isinstance(node, Group):
        return node.name
    position = node.position
    return f"{_OPERATOR_NAMES[type(node)]}@{position.line}:{position.column}"


@dataclass(frozen=True, eq=False, slots=True)
class Strategy:
    """A compiled strategy file.

    ``symbols`` lists every symbol referenced (assets and indicators), sorted; ``max_window``
    is the largest indicator window; ``lookback_bars`` is how many daily bars to fetch so every
    indicator (including those scoring compound nodes) is defined and converged at the last bar.
    """

    name: str
    file_name: str
    meta: Mapping[str, object]
    body: PortfolioNode
    symbols: tuple[str, ...]
    max_window: int
    lookback_bars: int

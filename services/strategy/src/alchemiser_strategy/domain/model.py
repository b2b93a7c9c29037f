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
from alchemiser_strategy.domain.indicators import INDICATORS, IndicatorArgs

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
    "render_options",
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


def render_options(indicator: str, args: IndicatorArgs) -> str:
    """`` {:window 10}`` (with its leading space) for ``args``; empty when there are none."""
    params = INDICATORS[indicator].params
    if not params:
        return ""
    pairs = ", ".join(f":{key} {value}" for key, value in zip(params, args, strict=True))
    return f" {{{pairs}}}"


@dataclass(frozen=True, eq=False, slots=True)
class IndicatorRef:
    """An indicator of one symbol, e.g. ``(rsi "SPY" {:window 10})``.

    ``args`` holds the indicator's parameters in the order of its spec's ``params``
    (``(10,)`` for a window of 10, ``()`` for ``current-price``).
    """

    indicator: str
    symbol: str
    args: IndicatorArgs
    position: SourcePosition

    def render(self) -> str:
        """Composer-style text of the reference."""
        return f'({self.indicator} "{self.symbol}"{render_options(self.indicator, self.args)})'


Expression = NumberLiteral | IndicatorRef


@dataclass(frozen=True, eq=False, slots=True)
class Comparison:
    """``(op left right)`` with op one of ``> < >= <= =``."""

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
    """Children get fixed weights (normalised fractions summing to exactly 1).

    The compiler drops children written with a zero weight, so every weight here is positive.
    """

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
    args: IndicatorArgs
    select_top: bool
    count: int
    children: tuple[PortfolioNode, ...]
    position: SourcePosition

    def render(self) -> str:
        """Composer-style text of the ranking."""
        select = "select-top" if self.select_top else "select-bottom"
        ranking = f"({self.indicator}{render_options(self.indicator, self.args)})"
        return f"(filter {ranking} ({select} {self.count}))"


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
    indicator (including those scoring compound nodes) is defined and converged at the last bar;
    ``structure_keys`` maps every node to a key of its content (see
    :func:`~alchemiser_strategy.domain.analysis.structure_keys`).
    """

    name: str
    file_name: str
    meta: Mapping[str, object]
    body: PortfolioNode
    symbols: tuple[str, ...]
    max_window: int
    lookback_bars: int
    structure_keys: Mapping[PortfolioNode, str]

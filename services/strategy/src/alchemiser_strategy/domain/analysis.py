"""Static facts about a compiled strategy tree: symbols, windows and history needed."""

from __future__ import annotations

from collections.abc import Iterator

from alchemiser_strategy.domain.indicators import INDICATORS
from alchemiser_strategy.domain.model import (
    Asset,
    Filter,
    If,
    IndicatorRef,
    InverseVolatility,
    PortfolioNode,
)

__all__ = ["children_of", "indicator_windows", "referenced_symbols", "required_bars"]


# -- static analysis --------------------------------------------------------------------------


def children_of(node: PortfolioNode) -> tuple[PortfolioNode, ...]:
    """The direct portfolio children of ``node`` (both branches of an ``if``)."""
    if isinstance(node, Asset):
        return ()
    if isinstance(node, If):
        return (node.then, node.otherwise)
    return node.children


def referenced_symbols(node: PortfolioNode) -> Iterator[str]:
    """Every symbol held by an asset or read by an indicator under ``node`` (with repeats)."""
    if isinstance(node, Asset):
        yield node.symbol
    if isinstance(node, If):
        for side in (node.condition.left, node.condition.right):
            if isinstance(side, IndicatorRef):
                yield side.symbol
    for child in children_of(node):
        yield from referenced_symbols(child)


def indicator_windows(node: PortfolioNode) -> Iterator[int]:
    """Every window used under ``node``: indicators, filters and inverse volatility."""
    if isinstance(node, If):
        for side in (node.condition.left, node.condition.right):
            if isinstance(side, IndicatorRef) and INDICATORS[side.indicator].needs_window:
                yield side.window
    elif isinstance(node, InverseVolatility) or (
        isinstance(node, Filter) and INDICATORS[node.indicator].needs_window
    ):
        yield node.window
    for child in children_of(node):
        yield from indicator_windows(child)


def required_bars(node: PortfolioNode) -> int:
    """Bars needed for ``node`` to be evaluable (and its smoothings converged) at the last bar."""
    needs = [required_bars(child) for child in children_of(node)]
    if isinstance(node, If):
        for side in (node.condition.left, node.condition.right):
            if isinstance(side, IndicatorRef):
                needs.append(INDICATORS[side.indicator].recommended_bars(side.window))
    if isinstance(node, InverseVolatility | Filter):
        indicator = "stdev-return" if isinstance(node, InverseVolatility) else node.indicator
        scoring = INDICATORS[indicator].recommended_bars(node.window)
        # A child's performance series starts once the child itself can be evaluated.
        needs.extend(required_bars(child) + scoring - 1 for child in node.children)
    return max(needs, default=1)

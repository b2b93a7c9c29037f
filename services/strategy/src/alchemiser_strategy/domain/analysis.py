"""Static facts about a compiled strategy tree: symbols, windows and history needed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from alchemiser_strategy.domain.indicators import INDICATORS
from alchemiser_strategy.domain.model import (
    Asset,
    Filter,
    Group,
    If,
    IndicatorRef,
    InverseVolatility,
    PortfolioNode,
    WeightEqual,
    WeightSpecified,
)

__all__ = [
    "children_of",
    "indicator_windows",
    "referenced_symbols",
    "required_bars",
    "structure_keys",
]


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
            if isinstance(side, IndicatorRef):
                yield from side.args
    elif isinstance(node, InverseVolatility):
        yield node.window
    elif isinstance(node, Filter):
        yield from node.args
    for child in children_of(node):
        yield from indicator_windows(child)


def required_bars(node: PortfolioNode) -> int:
    """Bars needed for ``node`` to be evaluable (and its smoothings converged) at the last bar."""
    needs = [required_bars(child) for child in children_of(node)]
    if isinstance(node, If):
        for side in (node.condition.left, node.condition.right):
            if isinstance(side, IndicatorRef):
                needs.append(INDICATORS[side.indicator].recommended_bars(side.args))
    if isinstance(node, InverseVolatility | Filter):
        scoring = (
            INDICATORS["stdev-return"].recommended_bars(node.window)
            if isinstance(node, InverseVolatility)
            else INDICATORS[node.indicator].recommended_bars(node.args)
        )
        # A child's performance series starts once the child itself can be evaluated.
        needs.extend(required_bars(child) + scoring - 1 for child in node.children)
    return max(needs, default=1)


def structure_keys(node: PortfolioNode) -> dict[PortfolioNode, str]:
    """A key per node under ``node`` (itself included) that depends only on what it holds.

    Two sub-trees with the same key decide the same weights on every bar (names and positions
    do not count; a group is keyed like an equal-weight block), so the evaluator computes a
    performance series once per key: a sub-tree repeated in a file, or in several files sharing
    one indicator cache, is simulated once. The key is a SHA-1 of the canonical structure.
    """
    keys: dict[PortfolioNode, str] = {}
    _structure_key(node, keys)
    return keys


def _structure_key(node: PortfolioNode, keys: dict[PortfolioNode, str]) -> str:
    known = keys.get(node)
    if known is not None:
        return known
    parts = [_structure_head(node)]
    parts.extend(_structure_key(child, keys) for child in children_of(node))
    key = hashlib.sha1("|".join(parts).encode(), usedforsecurity=False).hexdigest()
    keys[node] = key
    return key


def _structure_head(node: PortfolioNode) -> str:
    if isinstance(node, Asset):
        return f"asset {node.symbol}"
    if isinstance(node, If):
        return f"if {node.condition.render()}"
    if isinstance(node, Group | WeightEqual):
        return "equal"
    if isinstance(node, WeightSpecified):
        return "specified " + " ".join(str(weight) for weight in node.weights)
    if isinstance(node, InverseVolatility):
        return f"inverse-volatility {node.window}"
    return node.render()

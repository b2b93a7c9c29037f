"""Domain results -> the ``SignalGenerated`` payload (pure: no I/O, no clock).

* **Reasons.** Each symbol of a strategy gets the branch that decided it: the trace entries on
  the path from the strategy's root to that symbol's ``asset`` node (an ``if`` follows the
  recorded outcome of its comparison, a ``filter`` or inverse-volatility node its selected
  children), reduced to the *deciding* part: the last comparison on the path and every ranking
  after it. A symbol reached by several paths lists each, separated by `` | ``; a path with no
  decision reads ``unconditional``.
* **Weights.** Event weights have 12 decimals (``Weight``). Weights are re-rounded half-even to
  that scale and the residue ``1 - sum`` goes to the largest weight, ties to the
  alphabetically first symbol (the domain's rule), so they sum to exactly 1.
* **Cash.** When every strategy fails the consolidated portfolio is empty: 100 % cash.
  ``SignalGenerated`` accepts an empty ``consolidated_portfolio`` and the planner reads it as
  "hold no positions".
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

from alchemiser_common.events import (
    WEIGHT,
    AllocationStatus,
    StrategyAllocation,
    StrategySignal,
    TargetWeight,
    signal_hash,
)
from alchemiser_strategy.app import StrategyRun, strategy_id
from alchemiser_strategy.domain import (
    Allocation,
    ConditionTrace,
    RankingTrace,
    Strategy,
    TraceEntry,
    to_decimal_weights,
)
from alchemiser_strategy.domain.model import (
    Asset,
    Filter,
    Group,
    If,
    InverseVolatility,
    PortfolioNode,
    WeightEqual,
    WeightSpecified,
    node_label,
)

__all__ = [
    "UNCONDITIONAL",
    "event_weights",
    "signal_payload",
    "strategy_allocations",
    "strategy_signals",
    "symbol_reasons",
]

UNCONDITIONAL = "unconditional"
"""The reason of a symbol no comparison or ranking decided (e.g. a fixed weight)."""

_Path = tuple[TraceEntry, ...]


def event_weights(weights: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """``weights`` (positive, summing to about 1) as 12-decimal weights summing to exactly 1.

    Zero weights are dropped; an empty mapping stays empty (all cash).
    """
    positive = {symbol: Fraction(weight) for symbol, weight in weights.items() if weight > 0}
    if not positive:
        return {}
    return dict(to_decimal_weights(positive, WEIGHT.scale))


def symbol_reasons(strategy: Strategy, allocation: Allocation) -> dict[str, str]:
    """The deciding branch of each symbol in ``allocation`` (see the module docstring)."""
    entries = {entry.position: entry for entry in allocation.trace}
    paths: dict[str, list[_Path]] = {}
    _walk(strategy.body, (), entries, paths)
    fallback = _deciding(allocation.trace)
    reasons: dict[str, str] = {}
    for symbol in allocation.weights:
        texts = list(dict.fromkeys(_deciding(path) for path in paths.get(symbol, ())))
        reasons[symbol] = " | ".join(texts) if texts else fallback
    return reasons


def _walk(
    node: PortfolioNode,
    path: _Path,
    entries: Mapping[Any, TraceEntry],
    paths: dict[str, list[_Path]],
) -> None:
    if isinstance(node, Asset):
        paths.setdefault(node.symbol, []).append(path)
    elif isinstance(node, If):
        condition = entries.get(node.condition.position)
        if isinstance(condition, ConditionTrace):
            chosen = node.then if condition.result else node.otherwise
            _walk(chosen, (*path, condition), entries, paths)
    elif isinstance(node, Group | WeightEqual | WeightSpecified):
        for child in node.children:
            _walk(child, path, entries, paths)
    elif isinstance(node, Filter | InverseVolatility):
        ranking = entries.get(node.position)
        if isinstance(ranking, RankingTrace):
            selected = set(ranking.selected)
            for child in node.children:
                if node_label(child) in selected:
                    _walk(child, (*path, ranking), entries, paths)


def _deciding(path: _Path) -> str:
    """The last comparison of ``path`` and every ranking after it, one per ``; ``."""
    start = 0
    for index, entry in enumerate(path):
        if isinstance(entry, ConditionTrace):
            start = index
    tail = path[start:]
    return "; ".join(entry.describe() for entry in tail) if tail else UNCONDITIONAL


def strategy_signals(run: StrategyRun) -> list[StrategySignal]:
    """One signal per symbol of every strategy that produced an allocation."""
    strategies = {item.strategy.file_name: item.strategy for item in run.strategies}
    signals: list[StrategySignal] = []
    for outcome in run.portfolio.outcomes:
        allocation = outcome.allocation
        strategy = strategies.get(outcome.name)
        if allocation is None or strategy is None:
            continue
        reasons = symbol_reasons(strategy, allocation)
        for symbol, weight in sorted(event_weights(allocation.weights).items()):
            signals.append(
                StrategySignal(
                    strategy=strategy_id(strategy),
                    symbol=symbol,
                    target_weight=weight,
                    reason=reasons.get(symbol, UNCONDITIONAL),
                )
            )
    return signals


def strategy_allocations(run: StrategyRun) -> list[StrategyAllocation]:
    """Every configured strategy: its effective (renormalised) weight and whether it ran."""
    names = {item.strategy.file_name: strategy_id(item.strategy) for item in run.strategies}
    effective = event_weights(run.portfolio.strategy_weights)
    allocations: list[StrategyAllocation] = []
    for outcome in run.portfolio.outcomes:
        ok = outcome.error is None
        allocations.append(
            StrategyAllocation(
                strategy=names.get(outcome.name, outcome.name),
                allocation_weight=effective.get(outcome.name, Decimal(0)) if ok else Decimal(0),
                status=AllocationStatus.OK if ok else AllocationStatus.FAILED,
                error=outcome.error,
            )
        )
    return allocations


def signal_payload(run: StrategyRun, correlation_id: UUID) -> dict[str, Any]:
    """The payload fields of ``SignalGenerated`` for ``run`` in workflow ``correlation_id``."""
    signals = strategy_signals(run)
    portfolio = [
        TargetWeight(symbol=symbol, weight=weight)
        for symbol, weight in sorted(event_weights(run.portfolio.weights).items())
    ]
    return {
        "signal_hash": signal_hash(portfolio, signals, correlation_id),
        "market_snapshot_id": run.market_snapshot_id,
        "as_of": run.as_of,
        "signals": signals,
        "strategy_allocations": strategy_allocations(run),
        "consolidated_portfolio": portfolio,
    }

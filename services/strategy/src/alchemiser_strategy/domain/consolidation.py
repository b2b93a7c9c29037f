"""Combine the allocations of several strategy files into one target portfolio.

Rules:

* Each file has a configured weight (Decimal >= 0, not all zero); weights are normalised over
  the files that succeeded, so a failing file is dropped and the rest renormalised.
* The consolidated weight of a symbol is the weighted sum of its weight in every file.
* Arithmetic is exact (fractions); the published Decimals sum to exactly 1, the rounding
  residue going to the largest weight (see :mod:`alchemiser_strategy.domain.weights`).
* **Cash.** When every file fails (or only zero-weight files succeed) the result is all cash,
  represented explicitly as ``all_cash=True`` with an *empty* ``weights`` mapping. No
  pseudo-symbol is used, so "CASH" can never reach an order; consumers must treat an empty
  target with ``all_cash`` as "hold no positions".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from alchemiser_strategy.domain.allocation import Allocation
from alchemiser_strategy.domain.engine import evaluate
from alchemiser_strategy.domain.errors import ConsolidationError, StrategyError
from alchemiser_strategy.domain.market import IndicatorCache, MarketData
from alchemiser_strategy.domain.model import Strategy
from alchemiser_strategy.domain.weights import WEIGHT_PLACES, to_decimal_weights

__all__ = [
    "ConsolidatedPortfolio",
    "StrategyOutcome",
    "WeightedStrategy",
    "consolidate",
    "run_strategies",
]


@dataclass(frozen=True, slots=True)
class StrategyOutcome:
    """One file's result in a run: its configured weight and an allocation or an error."""

    name: str
    weight: Decimal
    allocation: Allocation | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if (self.allocation is None) == (self.error is None):
            raise ValueError("a strategy outcome holds exactly one of allocation and error")

    @property
    def succeeded(self) -> bool:
        """Whether the file produced an allocation."""
        return self.allocation is not None


@dataclass(frozen=True, slots=True)
class ConsolidatedPortfolio:
    """The target portfolio of a run.

    ``weights`` sum to exactly 1, or are empty with ``all_cash`` set. ``strategy_weights`` are
    the effective (renormalised) weights of the files that contributed; ``failures`` maps each
    dropped file to its error message.
    """

    weights: Mapping[str, Decimal]
    all_cash: bool
    strategy_weights: Mapping[str, Decimal]
    failures: Mapping[str, str]
    outcomes: tuple[StrategyOutcome, ...]


@dataclass(frozen=True, slots=True)
class WeightedStrategy:
    """A compiled strategy and its configured allocation weight."""

    strategy: Strategy
    weight: Decimal


def consolidate(
    outcomes: Sequence[StrategyOutcome], places: int = WEIGHT_PLACES
) -> ConsolidatedPortfolio:
    """Weighted sum of the successful allocations (see the module docstring for the rules)."""
    names = [outcome.name for outcome in outcomes]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConsolidationError(f"strategy names must be unique: {', '.join(duplicates)}")
    if any(outcome.weight < 0 for outcome in outcomes):
        raise ConsolidationError("strategy weights must not be negative")
    if not any(outcome.weight > 0 for outcome in outcomes):
        raise ConsolidationError("at least one strategy needs a positive weight")
    failures = {o.name: o.error for o in outcomes if o.error is not None}
    live = [o for o in outcomes if o.allocation is not None and o.weight > 0]
    total = sum((Fraction(o.weight) for o in live), Fraction(0))
    if not live:
        return ConsolidatedPortfolio(
            weights=MappingProxyType({}),
            all_cash=True,
            strategy_weights=MappingProxyType({}),
            failures=MappingProxyType(failures),
            outcomes=tuple(outcomes),
        )
    combined: dict[str, Fraction] = {}
    shares: dict[str, Fraction] = {}
    for outcome in live:
        assert outcome.allocation is not None  # narrowed by ``live``
        share = Fraction(outcome.weight) / total
        shares[outcome.name] = share
        for symbol, weight in outcome.allocation.weights.items():
            combined[symbol] = combined.get(symbol, Fraction(0)) + share * Fraction(weight)
    return ConsolidatedPortfolio(
        weights=to_decimal_weights(combined, places),
        all_cash=False,
        strategy_weights=to_decimal_weights(shares, places),
        failures=MappingProxyType(failures),
        outcomes=tuple(outcomes),
    )


def run_strategies(
    strategies: Sequence[WeightedStrategy],
    market: MarketData,
    *,
    cache: IndicatorCache | None = None,
    index: int | None = None,
    earlier_failures: Sequence[StrategyOutcome] = (),
    places: int = WEIGHT_PLACES,
) -> ConsolidatedPortfolio:
    """Evaluate every strategy on ``market`` (one shared indicator cache) and consolidate.

    A strategy raising a :class:`StrategyError` becomes a failed outcome carrying the error
    text (``file:line:col: message``); other exceptions are bugs and propagate. Files that
    already failed to load go in ``earlier_failures`` so they count as dropped.
    """
    cache = cache if cache is not None else IndicatorCache(market)
    outcomes = list(earlier_failures)
    for item in strategies:
        name = item.strategy.file_name
        try:
            allocation = evaluate(item.strategy, market, cache=cache, index=index, places=places)
        except StrategyError as err:
            outcomes.append(StrategyOutcome(name, item.weight, error=str(err)))
        else:
            outcomes.append(StrategyOutcome(name, item.weight, allocation=allocation))
    return consolidate(outcomes, places)

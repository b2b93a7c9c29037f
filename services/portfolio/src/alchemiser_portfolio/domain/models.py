"""Value types of the planner: the account snapshot, the settings and the plan.

All are frozen dataclasses holding :class:`~decimal.Decimal` values; constructing one checks
its invariants, so the planner only ever sees well-formed inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from alchemiser_portfolio.exceptions import InvalidAccountError, InvalidPlannerConfigError

__all__ = [
    "AccountSnapshot",
    "AllocationRow",
    "PlanItem",
    "PlannerConfig",
    "Position",
    "RebalancePlan",
    "TradeAction",
]


def _check_decimal(value: object, what: str) -> Decimal:
    """Return ``value`` if it is a finite Decimal, else raise :class:`InvalidAccountError`."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidAccountError(f"{what} must be a finite Decimal, got {value!r}")
    return value


def _check_symbol(symbol: object, what: str) -> None:
    """Raise :class:`InvalidAccountError` unless ``symbol`` is a non-blank trimmed string."""
    if not isinstance(symbol, str) or not symbol or symbol != symbol.strip():
        raise InvalidAccountError(f"{what} symbol must be a non-blank trimmed string: {symbol!r}")


@dataclass(frozen=True, slots=True)
class Position:
    """A held quantity and, when known, its latest price per share."""

    qty: Decimal
    price: Decimal | None = None

    def __post_init__(self) -> None:
        """Reject negative quantities (the planner is long-only) and non-positive prices."""
        if _check_decimal(self.qty, "position quantity") < 0:
            raise InvalidAccountError(f"position quantity must not be negative: {self.qty}")
        if self.price is not None and _check_decimal(self.price, "position price") <= 0:
            raise InvalidAccountError(f"position price must be positive: {self.price}")


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Cash, positions and prices of one account at one moment.

    ``prices`` gives a price per share for symbols that are not held (targets to buy); it is
    also the fallback for a held position whose own ``price`` is ``None``. Cash may be
    negative (margin), but the account's total value may not.
    """

    cash: Decimal
    positions: Mapping[str, Position] = field(default_factory=dict)
    prices: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the values and freeze the mappings (copies, so callers cannot mutate them)."""
        _check_decimal(self.cash, "cash")
        for symbol, position in self.positions.items():
            _check_symbol(symbol, "position")
            if not isinstance(position, Position):
                raise InvalidAccountError(f"position {symbol} must be a Position: {position!r}")
        for symbol, price in self.prices.items():
            _check_symbol(symbol, "price")
            if _check_decimal(price, f"price of {symbol}") <= 0:
                raise InvalidAccountError(f"price of {symbol} must be positive: {price}")
        object.__setattr__(self, "positions", MappingProxyType(dict(self.positions)))
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))

    def price_of(self, symbol: str) -> Decimal | None:
        """The position's own price if it has one, else the ``prices`` entry, else ``None``."""
        position = self.positions.get(symbol)
        if position is not None and position.price is not None:
            return position.price
        return self.prices.get(symbol)


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """Planner settings; the defaults are the original Alchemiser's rules.

    * ``cash_reserve_pct``: share of the account value kept in cash (0 <= x < 1).
    * Minimum trade: ``small_account_min_trade_pct`` of the account value when the value is
      under ``small_account_threshold``, else ``min_trade_amount``; smaller trades are HOLD.
    * ``weight_sum_min``/``weight_sum_max``: accepted range of the target weights' sum,
      both ends inclusive.
    """

    cash_reserve_pct: Decimal = Decimal("0.01")
    small_account_threshold: Decimal = Decimal("1000")
    small_account_min_trade_pct: Decimal = Decimal("0.01")
    min_trade_amount: Decimal = Decimal("5")
    weight_sum_min: Decimal = Decimal("0.99")
    weight_sum_max: Decimal = Decimal("1.01")

    def __post_init__(self) -> None:
        """Reject settings outside their meaningful ranges."""
        for name in (
            "cash_reserve_pct",
            "small_account_threshold",
            "small_account_min_trade_pct",
            "min_trade_amount",
            "weight_sum_min",
            "weight_sum_max",
        ):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise InvalidPlannerConfigError(f"{name} must be a Decimal >= 0, got {value!r}")
        if self.cash_reserve_pct >= 1:
            raise InvalidPlannerConfigError(
                f"cash_reserve_pct must be below 1, got {self.cash_reserve_pct}"
            )
        if self.small_account_min_trade_pct > 1:
            raise InvalidPlannerConfigError(
                f"small_account_min_trade_pct must be at most 1, got "
                f"{self.small_account_min_trade_pct}"
            )
        if self.weight_sum_min > self.weight_sum_max:
            raise InvalidPlannerConfigError(
                f"weight_sum_min {self.weight_sum_min} exceeds weight_sum_max {self.weight_sum_max}"
            )

    def minimum_trade(self, portfolio_value: Decimal) -> Decimal:
        """The smallest trade amount that is acted on for an account of this value."""
        if portfolio_value < self.small_account_threshold:
            return portfolio_value * self.small_account_min_trade_pct
        return self.min_trade_amount


class TradeAction(StrEnum):
    """What to do with one symbol."""

    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One symbol's line of a rebalance plan.

    Money is in cents and weights have 12 places (see :mod:`.decimals`). Both weights are
    fractions of the total portfolio value, so ``target_weight`` is the strategy's weight
    times ``(1 - cash_reserve_pct)`` and ``weight_diff = target_weight - current_weight`` is
    the drift the trade closes. ``trade_amount = target_value - current_value`` always, also
    on HOLD items (where it is the drift too small to trade, and must not be traded).
    ``full_liquidation`` is true exactly on a SELL whose ``target_value`` is zero (an
    untargeted or zero-weight symbol): execution should close the whole position rather than
    sell ``trade_amount`` worth of shares. It can be re-derived from the other fields.
    """

    symbol: str
    action: TradeAction
    current_weight: Decimal
    target_weight: Decimal
    weight_diff: Decimal
    current_value: Decimal
    target_value: Decimal
    trade_amount: Decimal
    priority: int
    full_liquidation: bool = False


@dataclass(frozen=True, slots=True)
class RebalancePlan:
    """A rebalance plan: its items in execution order and its totals.

    Execution order: every SELL, then every BUY, then every HOLD; within a group by
    ``priority`` (1 first), then by absolute trade amount (largest first), then by symbol.
    ``total_trade_value`` is the sum of ``|trade_amount|`` over the SELL and BUY items.
    ``deployable_value`` is the value the targets share out (value less the cash reserve);
    ``cash_reserve_pct`` is the reserve the plan was made with.
    """

    items: tuple[PlanItem, ...]
    total_portfolio_value: Decimal
    deployable_value: Decimal
    total_trade_value: Decimal
    cash_reserve_pct: Decimal

    @property
    def sells(self) -> tuple[PlanItem, ...]:
        """The SELL items, in execution order."""
        return tuple(item for item in self.items if item.action is TradeAction.SELL)

    @property
    def buys(self) -> tuple[PlanItem, ...]:
        """The BUY items, in execution order."""
        return tuple(item for item in self.items if item.action is TradeAction.BUY)

    @property
    def holds(self) -> tuple[PlanItem, ...]:
        """The HOLD items."""
        return tuple(item for item in self.items if item.action is TradeAction.HOLD)


class AllocationRow(NamedTuple):
    """One symbol of :func:`~.planner.allocation_comparison`: strategy weight vs. holding."""

    symbol: str
    target_weight: Decimal
    current_weight: Decimal
    diff: Decimal

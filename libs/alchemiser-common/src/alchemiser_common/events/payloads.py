"""Typed records nested inside event payloads (each is a named Avro record of the same name).

Records are immutable and strict: no coercion of strings to numbers, no unknown fields.
Lists whose order carries no meaning are validated for duplicates; the consolidated
portfolio is sorted by symbol on validation so equal portfolios compare equal.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alchemiser_common.events.enums import (
    AllocationStatus,
    OrderSide,
    OrderStatus,
    OrderType,
    PlanAction,
)
from alchemiser_common.events.types import (
    ClientOrderId,
    Money,
    NonEmptyStr,
    Quantity,
    Symbol,
    UtcDatetime,
    Weight,
)

__all__ = [
    "AllocationComparison",
    "OrderResult",
    "PlanItem",
    "RebalancePlan",
    "Record",
    "StrategyAllocation",
    "StrategySignal",
    "TargetWeight",
    "WorkflowSummary",
]


class Record(BaseModel):
    """Base of every event and nested record: frozen, strict, no extra fields."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")


def _require_unique(values: list[str], what: str) -> None:
    if len(set(values)) == len(values):  # the common case, without counting
        return
    duplicates = sorted(value for value, count in Counter(values).items() if count > 1)
    if duplicates:
        raise ValueError(f"duplicate {what}: {', '.join(duplicates)}")


class StrategySignal(Record):
    """One strategy's target weight for one symbol, with the rule that produced it."""

    strategy: NonEmptyStr
    symbol: Symbol
    target_weight: Weight = Field(ge=0)
    reason: str


class StrategyAllocation(Record):
    """How much of the portfolio one strategy manages, and whether it evaluated."""

    strategy: NonEmptyStr
    allocation_weight: Weight = Field(ge=0)
    status: AllocationStatus
    error: str | None = None


class TargetWeight(Record):
    """One symbol's weight in the consolidated target portfolio."""

    symbol: Symbol
    weight: Weight = Field(ge=0)


class PlanItem(Record):
    """One line of a rebalance plan: where a symbol is, where it should be, what to trade."""

    symbol: Symbol
    action: PlanAction
    current_weight: Weight
    target_weight: Weight = Field(ge=0)
    weight_diff: Weight
    current_value: Money
    target_value: Money
    trade_amount: Money
    priority: int = Field(ge=1)


class RebalancePlan(Record):
    """The trades that move the account to the target portfolio (items ordered SELL, BUY, HOLD)."""

    plan_id: NonEmptyStr
    items: list[PlanItem]
    total_portfolio_value: Money = Field(ge=0)
    total_trade_value: Money = Field(ge=0)
    cash_reserve_pct: Weight = Field(ge=0, le=1)

    @field_validator("items")
    @classmethod
    def _unique_symbols(cls, items: list[PlanItem]) -> list[PlanItem]:
        _require_unique([item.symbol for item in items], "plan symbols")
        return items


class AllocationComparison(Record):
    """Target against current weight of one symbol, before trading."""

    symbol: Symbol
    target_weight: Weight
    current_weight: Weight
    weight_diff: Weight


class OrderResult(Record):
    """The outcome of one order (one leg of the execution plan) at the broker."""

    leg: int = Field(ge=0)
    symbol: Symbol
    side: OrderSide
    qty: Quantity = Field(ge=0)
    notional: Money | None = None
    order_type: OrderType
    client_order_id: ClientOrderId
    broker_order_id: str | None = None
    status: OrderStatus
    filled_qty: Quantity = Field(ge=0)
    filled_avg_price: Money | None = None
    submitted_at: UtcDatetime | None = None
    filled_at: UtcDatetime | None = None
    error: str | None = None

    @model_validator(mode="after")
    def _fill_within_quantity(self) -> OrderResult:
        if self.qty > 0 and self.filled_qty > self.qty:
            raise ValueError(f"filled_qty {self.filled_qty} exceeds qty {self.qty}")
        return self


class WorkflowSummary(Record):
    """What a finished workflow did, for notifications and the operator."""

    orders_placed: int = Field(ge=0)
    orders_succeeded: int = Field(ge=0)
    total_trade_value: Money = Field(ge=0)
    symbols_bought: list[Symbol]
    symbols_sold: list[Symbol]

    @model_validator(mode="after")
    def _succeeded_within_placed(self) -> WorkflowSummary:
        if self.orders_succeeded > self.orders_placed:
            raise ValueError("orders_succeeded exceeds orders_placed")
        return self

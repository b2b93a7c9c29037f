"""The six workflow events, one class per Avro subject.

=================  ==================================  ========================
class              topic                               produced by
=================  ==================================  ========================
WorkflowStarted    ``workflow.started.v1``             the trigger
SignalGenerated    ``strategy.signal.generated.v1``    strategy
RebalancePlanned   ``portfolio.rebalance.planned.v1``  portfolio
TradeExecuted      ``execution.order.settled.v1``      execution
WorkflowCompleted  ``workflow.completed.v1``           execution
WorkflowFailed     ``workflow.failed.v1``              any failing step
=================  ==================================  ========================
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from alchemiser_common.events.enums import FailureStep, TradingMode
from alchemiser_common.events.envelope import Event
from alchemiser_common.events.payloads import (
    AllocationComparison,
    OrderResult,
    RebalancePlan,
    StrategyAllocation,
    StrategySignal,
    TargetWeight,
    WorkflowSummary,
    _require_unique,
)
from alchemiser_common.events.types import Money, NonEmptyStr, Sha256Hex, Symbol

__all__ = [
    "RebalancePlanned",
    "SignalGenerated",
    "TradeExecuted",
    "WorkflowCompleted",
    "WorkflowFailed",
    "WorkflowStarted",
]


class WorkflowStarted(Event):
    """A trading workflow was requested for one account (the root of the causal chain)."""

    TOPIC: ClassVar[str] = "workflow.started.v1"
    SCHEMA_VERSION: ClassVar[int] = 1
    ROOT_EVENT: ClassVar[bool] = True

    event_type: Literal["WorkflowStarted"] = "WorkflowStarted"
    workflow_type: NonEmptyStr = "trading"
    requested_by: NonEmptyStr
    mode: TradingMode
    as_of: date | None = None
    """The trading date to evaluate; ``None`` means the latest available."""


class SignalGenerated(Event):
    """Strategy evaluated every configured strategy and consolidated a target portfolio."""

    TOPIC: ClassVar[str] = "strategy.signal.generated.v1"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["SignalGenerated"] = "SignalGenerated"
    signal_hash: Sha256Hex
    market_snapshot_id: NonEmptyStr
    as_of: date
    signals: list[StrategySignal]
    strategy_allocations: list[StrategyAllocation]
    consolidated_portfolio: list[TargetWeight]
    """Sorted by symbol on validation; symbols are unique."""

    @field_validator("consolidated_portfolio")
    @classmethod
    def _sorted_unique(cls, weights: list[TargetWeight]) -> list[TargetWeight]:
        _require_unique([weight.symbol for weight in weights], "portfolio symbols")
        return sorted(weights, key=lambda weight: weight.symbol)

    @field_validator("strategy_allocations")
    @classmethod
    def _unique_strategies(cls, allocations: list[StrategyAllocation]) -> list[StrategyAllocation]:
        _require_unique([allocation.strategy for allocation in allocations], "strategies")
        return allocations


class RebalancePlanned(Event):
    """Portfolio turned the target weights into a plan of trades for the account."""

    TOPIC: ClassVar[str] = "portfolio.rebalance.planned.v1"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["RebalancePlanned"] = "RebalancePlanned"
    plan_hash: Sha256Hex
    account_snapshot_id: NonEmptyStr
    plan: RebalancePlan
    allocation_comparison: list[AllocationComparison]


class TradeExecuted(Event):
    """Execution placed the plan's orders and they settled (filled, or ended otherwise)."""

    TOPIC: ClassVar[str] = "execution.order.settled.v1"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["TradeExecuted"] = "TradeExecuted"
    execution_plan_hash: Sha256Hex
    orders: list[OrderResult]
    orders_placed: int = Field(ge=0)
    orders_succeeded: int = Field(ge=0)
    total_trade_value: Money = Field(ge=0)
    success: bool

    @field_validator("orders")
    @classmethod
    def _unique_legs(cls, orders: list[OrderResult]) -> list[OrderResult]:
        _require_unique([str(order.leg) for order in orders], "order legs")
        _require_unique([order.client_order_id for order in orders], "client order ids")
        return orders

    @model_validator(mode="after")
    def _succeeded_within_placed(self) -> Self:
        if self.orders_succeeded > self.orders_placed:
            raise ValueError("orders_succeeded exceeds orders_placed")
        return self


class WorkflowCompleted(Event):
    """The workflow finished: every order of the plan succeeded (or there was nothing to do)."""

    TOPIC: ClassVar[str] = "workflow.completed.v1"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["WorkflowCompleted"] = "WorkflowCompleted"
    duration_ms: int = Field(ge=0)
    summary: WorkflowSummary


class WorkflowFailed(Event):
    """The workflow stopped at ``failure_step``; ``reason`` says why, ``details`` adds context."""

    TOPIC: ClassVar[str] = "workflow.failed.v1"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["WorkflowFailed"] = "WorkflowFailed"
    failure_step: FailureStep
    reason: NonEmptyStr
    details: dict[str, str] = Field(default_factory=dict)
    failed_symbols: list[Symbol] = Field(default_factory=list)

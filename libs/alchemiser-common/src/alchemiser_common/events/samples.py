"""Realistic example events of one workflow, for tests and documentation.

The chain is consistent: each event is ``caused_by`` the previous one, hashes are computed
with :mod:`alchemiser_common.events.hashing`, and Decimals use their kinds' full scale.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from alchemiser_common.events.enums import (
    AllocationStatus,
    FailureStep,
    OrderSide,
    OrderStatus,
    OrderType,
    PlanAction,
    TradingMode,
)
from alchemiser_common.events.envelope import Event, EventSource
from alchemiser_common.events.hashing import execution_plan_hash, plan_hash, signal_hash
from alchemiser_common.events.models import (
    RebalancePlanned,
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from alchemiser_common.events.payloads import (
    AllocationComparison,
    OrderResult,
    PlanItem,
    RebalancePlan,
    StrategyAllocation,
    StrategySignal,
    TargetWeight,
    WorkflowSummary,
)
from alchemiser_common.events.types import MONEY

__all__ = [
    "SAMPLE_ACCOUNT_ID",
    "SAMPLE_CORRELATION_ID",
    "SAMPLE_STARTED_AT",
    "sample_events",
    "sample_rebalance_planned",
    "sample_signal_generated",
    "sample_trade_executed",
    "sample_workflow_completed",
    "sample_workflow_failed",
    "sample_workflow_started",
]

SAMPLE_ACCOUNT_ID = "PA3XK2J9QF0L"
SAMPLE_CORRELATION_ID = UUID("0d7c8a3e-51f4-4c3b-9a7e-6b2f1d0c9e84")
SAMPLE_STARTED_AT = datetime(2025, 3, 14, 19, 45, 0, 123456, tzinfo=UTC)


def _source(service: str) -> EventSource:
    return EventSource(service=service, version="0.1.0")


def sample_workflow_started() -> WorkflowStarted:
    """A trigger's request to trade the paper account for 14 March 2025."""
    return WorkflowStarted(
        event_id=UUID("5b0e3f0a-8c2d-4e61-b7a9-3c4d5e6f7a8b"),
        correlation_id=SAMPLE_CORRELATION_ID,
        occurred_at=SAMPLE_STARTED_AT,
        source=_source("trigger"),
        account_id=SAMPLE_ACCOUNT_ID,
        requested_by="cronjob/alchemiser-trigger",
        mode=TradingMode.PAPER,
        as_of=date(2025, 3, 14),
    )


def sample_signal_generated(cause: Event | None = None) -> SignalGenerated:
    """Two strategies (one failed) consolidated into a three-ETF portfolio."""
    cause = cause or sample_workflow_started()
    signals = [
        StrategySignal(
            strategy="nuclear",
            symbol="SMR",
            target_weight=Decimal("0.333333333333"),
            reason="SPY RSI(10) 71.2 > 70: nuclear energy basket",
        ),
        StrategySignal(
            strategy="nuclear",
            symbol="OKLO",
            target_weight=Decimal("0.666666666667"),
            reason="inverse-volatility weight over 90 days",
        ),
        StrategySignal(
            strategy="tqqq_ftlt",
            symbol="TQQQ",
            target_weight=Decimal("1.000000000000"),
            reason="SPY above its 200-day SMA and TQQQ RSI(10) 64.1 <= 79",
        ),
    ]
    portfolio = [
        TargetWeight(symbol="TQQQ", weight=Decimal("0.500000000000")),
        TargetWeight(symbol="OKLO", weight=Decimal("0.333333333334")),
        TargetWeight(symbol="SMR", weight=Decimal("0.166666666666")),
    ]
    allocations = [
        StrategyAllocation(
            strategy="nuclear", allocation_weight=Decimal("0.5"), status=AllocationStatus.OK
        ),
        StrategyAllocation(
            strategy="tqqq_ftlt", allocation_weight=Decimal("0.5"), status=AllocationStatus.OK
        ),
        StrategyAllocation(
            strategy="klm",
            allocation_weight=Decimal("0"),
            status=AllocationStatus.FAILED,
            error="no bars for UVXY on 2025-03-14",
        ),
    ]
    return SignalGenerated.caused_by(
        cause,
        source=_source("strategy"),
        occurred_at=SAMPLE_STARTED_AT + timedelta(seconds=4),
        signal_hash=signal_hash(portfolio, signals, cause.correlation_id),
        market_snapshot_id="bars:iex:2025-03-14:7f3a9c",
        as_of=date(2025, 3, 14),
        signals=signals,
        strategy_allocations=allocations,
        consolidated_portfolio=portfolio,
    )


def _plan() -> RebalancePlan:
    items = [
        PlanItem(
            symbol="SOXL",
            action=PlanAction.SELL,
            current_weight=Decimal("0.402154967811"),
            target_weight=Decimal("0"),
            weight_diff=Decimal("-0.402154967811"),
            current_value=Decimal("10243.517200"),
            target_value=Decimal("0"),
            trade_amount=Decimal("-10243.517200"),
            priority=1,
        ),
        PlanItem(
            symbol="TQQQ",
            action=PlanAction.BUY,
            current_weight=Decimal("0.100000000000"),
            target_weight=Decimal("0.500000000000"),
            weight_diff=Decimal("0.400000000000"),
            current_value=Decimal("2547.123456"),
            target_value=Decimal("12608.261107"),
            trade_amount=Decimal("10061.137651"),
            priority=1,
        ),
        PlanItem(
            symbol="SMR",
            action=PlanAction.HOLD,
            current_weight=Decimal("0.166500000000"),
            target_weight=Decimal("0.166666666666"),
            weight_diff=Decimal("0.000166666666"),
            current_value=Decimal("4200.000001"),
            target_value=Decimal("4202.753702"),
            trade_amount=Decimal("2.753701"),
            priority=5,
        ),
    ]
    return RebalancePlan(
        plan_id="plan-0d7c8a3e-1",
        items=items,
        total_portfolio_value=Decimal("25471.234567"),
        total_trade_value=Decimal("20304.654851"),
        cash_reserve_pct=Decimal("0.01"),
    )


def sample_rebalance_planned(cause: Event | None = None) -> RebalancePlanned:
    """A plan that sells SOXL, buys TQQQ and holds SMR."""
    cause = cause or sample_signal_generated()
    plan = _plan()
    comparison = [
        AllocationComparison(
            symbol=item.symbol,
            target_weight=item.target_weight,
            current_weight=item.current_weight,
            weight_diff=item.weight_diff,
        )
        for item in plan.items
    ]
    return RebalancePlanned.caused_by(
        cause,
        source=_source("portfolio"),
        occurred_at=SAMPLE_STARTED_AT + timedelta(seconds=5),
        plan_hash=plan_hash(plan, cause.correlation_id),
        account_snapshot_id="account:PA3XK2J9QF0L:2025-03-14T19:45:05Z",
        plan=plan,
        allocation_comparison=comparison,
    )


def sample_trade_executed(cause: Event | None = None) -> TradeExecuted:
    """A market sell that filled and a limit buy that filled after submission."""
    cause = cause or sample_rebalance_planned()
    submitted = SAMPLE_STARTED_AT + timedelta(seconds=6)
    orders = [
        OrderResult(
            leg=0,
            symbol="SOXL",
            side=OrderSide.SELL,
            qty=Decimal("412.123456789"),
            order_type=OrderType.MARKET,
            client_order_id="alc-0d7c8a3e-5f1e9d2a-0",
            broker_order_id="61e69015-8549-4bfd-b9c3-01e75843f47d",
            status=OrderStatus.FILLED,
            filled_qty=Decimal("412.123456789"),
            filled_avg_price=Decimal("24.855001"),
            submitted_at=submitted,
            filled_at=submitted + timedelta(milliseconds=850),
        ),
        OrderResult(
            leg=1,
            symbol="TQQQ",
            side=OrderSide.BUY,
            qty=Decimal("0"),
            notional=Decimal("10061.137651"),
            order_type=OrderType.LIMIT,
            client_order_id="alc-0d7c8a3e-5f1e9d2a-1",
            broker_order_id=None,
            status=OrderStatus.REJECTED,
            filled_qty=Decimal("0"),
            error="insufficient buying power",
        ),
    ]
    planned = [order.model_dump(include={"leg", "symbol", "side", "qty"}) for order in orders]
    filled_value = sum(
        (order.filled_qty * (order.filled_avg_price or 0) for order in orders), Decimal(0)
    )
    return TradeExecuted.caused_by(
        cause,
        source=_source("execution"),
        occurred_at=submitted + timedelta(seconds=2),
        execution_plan_hash=execution_plan_hash(planned, cause.correlation_id),
        orders=orders,
        orders_placed=2,
        orders_succeeded=1,
        total_trade_value=MONEY(filled_value),
        success=False,
    )


def sample_workflow_completed(cause: Event | None = None) -> WorkflowCompleted:
    """A finished workflow that sold SOXL and bought TQQQ."""
    cause = cause or sample_rebalance_planned()
    return WorkflowCompleted.caused_by(
        cause,
        source=_source("execution"),
        occurred_at=SAMPLE_STARTED_AT + timedelta(seconds=9),
        duration_ms=8877,
        summary=WorkflowSummary(
            orders_placed=2,
            orders_succeeded=2,
            total_trade_value=Decimal("20304.654851"),
            symbols_bought=["TQQQ"],
            symbols_sold=["SOXL"],
        ),
    )


def sample_workflow_failed(cause: Event | None = None) -> WorkflowFailed:
    """Execution failed because one buy was rejected."""
    cause = cause or sample_trade_executed()
    return WorkflowFailed.caused_by(
        cause,
        source=_source("execution"),
        occurred_at=SAMPLE_STARTED_AT + timedelta(seconds=9),
        failure_step=FailureStep.EXECUTION,
        reason="1 of 2 orders failed",
        details={"leg_1": "insufficient buying power", "orders_placed": "2"},
        failed_symbols=["TQQQ"],
    )


def sample_events() -> list[Event]:
    """One sample of every event type, chained as in a real (partly failed) workflow."""
    started = sample_workflow_started()
    signal = sample_signal_generated(started)
    planned = sample_rebalance_planned(signal)
    executed = sample_trade_executed(planned)
    return [
        started,
        signal,
        planned,
        executed,
        sample_workflow_completed(planned),
        sample_workflow_failed(executed),
    ]

"""Builders for the execution service's tests: plans, plan events, triggers, executors, contexts.

Execution acts only on plans of workflows it saw started: :func:`register_workflow` records a
plan's workflow as the ``WorkflowStarted`` handler does, :func:`trigger_for` builds the trigger
to produce first in process tests. :func:`fail_workflow` records a plan's workflow as failed as
the ``WorkflowFailed`` handler does, :func:`failure_for` builds that failure.

Shipped in the package (like ``alchemiser_devtools``) because tests run with
``--import-mode=importlib`` and cannot import helper modules beside them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from alchemiser_broker import BrokerOrder, BrokerPort
from alchemiser_common.events import (
    EventSource,
    FailureStep,
    PlanAction,
    PlanItem,
    RebalancePlan,
    RebalancePlanned,
    TradingMode,
    WorkflowFailed,
    WorkflowStarted,
    plan_hash,
)
from alchemiser_common.events.samples import sample_signal_generated
from alchemiser_common.observability import Metrics
from alchemiser_common.runtime.handlers import HandlerContext
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.adapters.workflows import WorkflowLog
from alchemiser_execution.domain.attempts import Attempt
from alchemiser_execution.domain.plan_rules import UNKNOWN_WORKFLOW_WAIT_S
from alchemiser_execution.executor import ExecutionRequest, Executor
from alchemiser_execution.handlers import (
    RebalancePlannedHandler,
    WorkflowFailedHandler,
    WorkflowStartedHandler,
)
from alchemiser_execution.orders import OrderDesk
from alchemiser_execution.phases import ExecutionConfig

__all__ = [
    "FAST_CONFIG",
    "TEST_ACCOUNT",
    "buy",
    "context",
    "execution_request",
    "fail_workflow",
    "failure_for",
    "hold",
    "make_handler",
    "outputs_by_type",
    "planned",
    "register_workflow",
    "sell",
    "trigger_for",
]

TEST_ACCOUNT = "acct-test"
FAST_CONFIG = ExecutionConfig(
    max_order_value=Decimal(1_000_000),
    max_daily_traded_value=Decimal(10_000_000),
    repeg_interval_s=0.2,
    fill_timeout_s=1.0,
    poll_interval_s=0.02,
    buying_power_timeout_s=0.5,
)
"""Test timing: sub-second waits so a test never sleeps for long."""


def _item(
    symbol: str,
    action: PlanAction,
    amount: Decimal,
    current: Decimal,
    priority: int,
    *,
    weight: str = "0",
) -> PlanItem:
    target = current + amount
    return PlanItem(
        symbol=symbol,
        action=action,
        current_weight=Decimal(0),
        target_weight=Decimal(weight),
        weight_diff=Decimal(0),
        current_value=current,
        target_value=target,
        trade_amount=amount,
        priority=priority,
    )


def sell(
    symbol: str,
    amount: str,
    *,
    current: str | None = None,
    priority: int = 1,
    weight: str = "0",
) -> PlanItem:
    """A SELL item of ``amount`` dollars; ``current`` = ``amount`` makes it a full liquidation."""
    value = Decimal(amount)
    held = Decimal(current) if current is not None else value * 2
    return _item(symbol, PlanAction.SELL, -value, held, priority, weight=weight)


def buy(
    symbol: str, amount: str, *, current: str = "0", priority: int = 1, weight: str = "0"
) -> PlanItem:
    """A BUY item of ``amount`` dollars (``weight``: its target weight)."""
    return _item(symbol, PlanAction.BUY, Decimal(amount), Decimal(current), priority, weight=weight)


def hold(symbol: str, current: str = "100") -> PlanItem:
    """A HOLD item."""
    return _item(symbol, PlanAction.HOLD, Decimal(0), Decimal(current), 5)


def planned(
    items: Sequence[PlanItem],
    *,
    correlation_id: uuid.UUID | None = None,
    account_id: str = TEST_ACCOUNT,
) -> RebalancePlanned:
    """A ``RebalancePlanned`` for ``items`` in a new workflow, its ``plan_hash`` computed.

    The hash matches whatever the items say: anyone can recompute it, so a forged plan built
    here passes the hash check and must be caught by the plan rules.
    """
    cause = sample_signal_generated().model_copy(
        update={
            "event_id": uuid.uuid4(),
            "correlation_id": correlation_id or uuid.uuid4(),
            "account_id": account_id,
        }
    )
    total = sum((abs(item.trade_amount) for item in items), Decimal(0))
    plan = RebalancePlan(
        plan_id=f"plan-{cause.correlation_id}",
        items=list(items),
        total_portfolio_value=Decimal(100_000),
        total_trade_value=total,
        cash_reserve_pct=Decimal("0.01"),
    )
    return RebalancePlanned.caused_by(
        cause,
        source=EventSource(service="portfolio", version="test"),
        occurred_at=datetime.now(UTC),
        plan_hash=plan_hash(plan, cause.correlation_id),
        account_snapshot_id="account:test",
        plan=plan,
        allocation_comparison=[],
    )


def trigger_for(event: RebalancePlanned) -> WorkflowStarted:
    """The ``WorkflowStarted`` of ``event``'s workflow (same account and correlation id)."""
    return WorkflowStarted(
        event_id=uuid.uuid4(),
        correlation_id=event.correlation_id,
        occurred_at=event.occurred_at,
        source=EventSource(service="trigger", version="test"),
        account_id=event.account_id,
        requested_by="test",
        mode=TradingMode.PAPER,
    )


def register_workflow(store: AttemptStore, event: RebalancePlanned) -> RebalancePlanned:
    """Record ``event``'s workflow as started, as consuming its trigger does; return ``event``.

    Runs the ``WorkflowStarted`` handler's unit of work in a transaction of its own on the
    store's database (the runtime runs it in its inbox transaction).
    """
    result = WorkflowStartedHandler()(trigger_for(event), context())
    assert result.state is not None
    with store.engine.begin() as connection:
        result.state(connection)
    return event


def failure_for(
    event: RebalancePlanned,
    *,
    step: FailureStep = FailureStep.STRATEGY,
    reason: str = "no_session",
) -> WorkflowFailed:
    """A ``WorkflowFailed`` of ``event``'s workflow (at ``step``, for ``reason``)."""
    return WorkflowFailed(
        event_id=uuid.uuid4(),
        correlation_id=event.correlation_id,
        causation_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        source=EventSource(service=step.value, version="test"),
        account_id=event.account_id,
        failure_step=step,
        reason=reason,
    )


def fail_workflow(
    store: AttemptStore, event: RebalancePlanned, failure: WorkflowFailed | None = None
) -> WorkflowFailed:
    """Record ``event``'s workflow as failed, as consuming ``failure`` does; return ``failure``.

    Runs the ``WorkflowFailed`` handler (its note and its unit of work, in a transaction of its
    own on the store's database; the runtime runs it in its inbox transaction).
    """
    failure = failure or failure_for(event)
    result = WorkflowFailedHandler(WorkflowLog(store.engine))(failure, context())
    assert result.state is not None and not result.events
    with store.engine.begin() as connection:
        result.state(connection)
    return failure


def context(now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> HandlerContext:
    """A handler context for direct calls of the handler."""
    return HandlerContext(consumer="execution-test", now=now)


def make_handler(
    broker: BrokerPort,
    store: AttemptStore,
    config: ExecutionConfig = FAST_CONFIG,
    *,
    metrics: Metrics | None = None,
    after_accept: Callable[[Attempt, BrokerOrder], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    broker_name: str = "test",
    workflow_wait_s: float = UNKNOWN_WORKFLOW_WAIT_S,
) -> RebalancePlannedHandler:
    """The handler over ``broker`` and ``store``, as ``register_handlers`` builds it."""
    desk = OrderDesk(
        broker, store, broker_name=broker_name, metrics=metrics, after_accept=after_accept
    )
    executor = Executor(broker, store, desk, config, sleep=sleep)
    return RebalancePlannedHandler(
        executor,
        WorkflowLog(store.engine),
        source=EventSource(service="execution", version="test"),
        workflow_wait_s=workflow_wait_s,
        metrics=metrics,
    )


def outputs_by_type(events: Sequence[Any]) -> dict[str, Any]:
    """Output events keyed by event type (each type at most once)."""
    return {event.event_type: event for event in events}


def execution_request(event: RebalancePlanned) -> ExecutionRequest:
    """What the handler hands the executor for ``event`` (without its ``planned_at``)."""
    return ExecutionRequest(
        account_id=event.account_id,
        correlation_id=event.correlation_id,
        plan_hash=event.plan_hash,
        plan=event.plan,
        input_event_id=event.event_id,
    )

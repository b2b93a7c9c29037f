"""Wiring: settings -> stores, broker, reconciliation, executor, the handler.

:func:`build_execution_handler` is the factory the service declaration
(:mod:`alchemiser_execution.service`) names; the runtime calls it at start-up. It migrates the
execution tables, builds the broker, and **reconciles before returning**, so the runtime
subscribes to ``portfolio.rebalance.planned.v1`` only after every unsettled attempt was
resolved. Attempts live in the service database unless configured elsewhere: the runtime holds
no transaction while the handler runs, so the handler's own short transactions never wait for
it. With ``ALCHEMISER_BROKER__STREAM`` (the default) the trade-updates feed is started here and
fills are pushed to the executor; REST polling covers the time the stream is down.

:func:`build_workflow_handler` and :func:`build_failure_handler` build the ``WorkflowStarted``
and ``WorkflowFailed`` handlers. Their units of work run in the runtime's transaction, so the
known (and failed) workflows live in the service database (migrated there too when the attempts
have a database of their own), and the plan handler reads them there.
"""

from __future__ import annotations

from alchemiser_broker.factory import build_broker
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.events import EventSource
from alchemiser_common.observability.logging import get_logger
from alchemiser_common.runtime.declaration import ServiceContainer
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.adapters.workflows import WorkflowLog
from alchemiser_execution.domain.caps import DAILY_TRADED_VALUE_EXCEEDED, MAX_ORDER_VALUE_EXCEEDED
from alchemiser_execution.executor import MARKET_CLOSED, STALE_PLAN, Executor
from alchemiser_execution.handlers import (
    RebalancePlannedHandler,
    WorkflowFailedHandler,
    WorkflowStartedHandler,
)
from alchemiser_execution.orders import OrderDesk, block_after_first_accept
from alchemiser_execution.phases import ExecutionConfig
from alchemiser_execution.reconcile import reconcile
from alchemiser_execution.settings import ExecutionSettings, OrderPolicy

__all__ = [
    "REFUSAL_REASONS",
    "SERVICE_NAME",
    "build_execution_handler",
    "build_failure_handler",
    "build_workflow_handler",
    "event_source",
    "execution_config",
]

SERVICE_NAME = "execution"
_log = get_logger(__name__)


def event_source() -> EventSource:
    """``source`` of the events this service emits: its name and installed version."""
    return EventSource.of_package(SERVICE_NAME, "alchemiser-execution")


def execution_config(settings: ExecutionSettings) -> ExecutionConfig:
    """The executor's knobs from the ``execution`` section."""
    section = settings.execution
    return ExecutionConfig(
        max_order_value=section.max_order_value,
        max_daily_traded_value=section.max_daily_traded_value,
        limit_policy=section.order_policy is OrderPolicy.LIMIT,
        max_repegs=section.max_repegs,
        max_spread=section.max_spread_pct,
        repeg_interval_s=section.repeg_interval_s,
        fill_timeout_s=section.fill_timeout_s,
        poll_interval_s=section.fill_poll_interval_s,
        buying_power_timeout_s=section.buying_power_timeout_s,
        cash_tolerance=section.cash_tolerance_pct,
        asset_cache_s=section.asset_cache_s,
    )


# The reasons execution refuses a whole plan for (the circuit breaker's two among them).
REFUSAL_REASONS = (
    MAX_ORDER_VALUE_EXCEEDED,
    DAILY_TRADED_VALUE_EXCEEDED,
    STALE_PLAN,
    MARKET_CLOSED,
)


def build_execution_handler(
    container: ServiceContainer[ExecutionSettings],
) -> RebalancePlannedHandler:
    """Build the executor, reconcile with the broker, then return the handler."""
    settings = container.settings
    settings.check_timing()
    engine = container.engine
    attempts_url = settings.execution.attempts_database_url
    if attempts_url is not None:
        engine = create_engine_from_url(
            attempts_url.get_secret_value(), application_name=f"{SERVICE_NAME}-attempts"
        )
    store = AttemptStore(engine)
    store.migrate()
    workflows = WorkflowLog(container.engine)
    if attempts_url is not None:
        workflows.migrate()
    built = build_broker(settings.broker, settings.alpaca)
    reconcile(store, built.broker, timeout_s=settings.execution.reconcile_timeout_s)
    hook_file = settings.execution.block_after_submit_file
    desk = OrderDesk(
        built.broker,
        store,
        broker_name=built.name,
        metrics=container.metrics,
        after_accept=block_after_first_accept(hook_file) if hook_file else None,
    )
    if built.updates is not None:
        built.updates.start()  # a daemon thread; it reconnects by itself while it is down
    executor = Executor(
        built.broker, store, desk, execution_config(settings), updates=built.updates
    )
    # Series present from the start, so increase() over them sees the first refusal.
    for reason in REFUSAL_REASONS:
        container.metrics.workflows_finished.labels(
            outcome="failed", failure_step="execution", reason=reason
        )
    handler = RebalancePlannedHandler(
        executor,
        workflows,
        source=event_source(),
        workflow_wait_s=settings.execution.workflow_wait_s,
        metrics=container.metrics,
    )
    _log.info(
        "execution ready",
        broker=built.name,
        trade_updates_stream=built.updates is not None,
        order_policy=settings.execution.order_policy.value,
        attempts_database="service" if attempts_url is None else "own",
        workflow_wait_s=settings.execution.workflow_wait_s,
        cash_tolerance_pct=str(settings.execution.cash_tolerance_pct),
    )
    return handler


def build_workflow_handler(
    container: ServiceContainer[ExecutionSettings],
) -> WorkflowStartedHandler:
    """Migrate the execution tables on the service database, then return the handler."""
    WorkflowLog(container.engine).migrate()
    return WorkflowStartedHandler()


def build_failure_handler(
    container: ServiceContainer[ExecutionSettings],
) -> WorkflowFailedHandler:
    """Migrate the execution tables on the service database, then return the handler."""
    workflows = WorkflowLog(container.engine)
    workflows.migrate()
    return WorkflowFailedHandler(workflows)

"""Wiring: settings -> stores, broker, reconciliation, executor, handler registration.

:func:`register_handlers` is what the runtime calls at start-up. It migrates the execution
tables, builds the broker, and **reconciles before returning**, so the runtime subscribes to
``portfolio.rebalance.planned.v1`` only after every unsettled attempt was resolved.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.events import EventSource
from alchemiser_common.observability.logging import get_logger
from alchemiser_common.runtime.handlers import EventHandlerRegistry, HandlerRegistration
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.adapters.brokers import build_broker, database_url_for
from alchemiser_execution.executor import Executor
from alchemiser_execution.handlers import RebalancePlannedHandler
from alchemiser_execution.orders import OrderDesk, block_after_first_accept
from alchemiser_execution.phases import ExecutionConfig
from alchemiser_execution.reconcile import reconcile
from alchemiser_execution.settings import ExecutionSettings, OrderPolicy

__all__ = ["SERVICE_NAME", "execution_config", "register_handlers", "service_version"]

SERVICE_NAME = "execution"
_log = get_logger(__name__)


def service_version() -> str:
    """The installed package version (``0.0.0`` when not installed)."""
    try:
        return version("alchemiser-execution")
    except PackageNotFoundError:
        return "0.0.0"


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
    )


def register_handlers(container: Any, registry: EventHandlerRegistry) -> None:
    """Build the execution handler, reconcile with the broker, then register the handler."""
    settings = container.settings
    if not isinstance(settings, ExecutionSettings):
        raise ConfigurationError(
            "the execution service needs ExecutionSettings (run it with python -m "
            "alchemiser_execution)"
        )
    settings.check_timing()
    service_url = settings.database.url.get_secret_value()
    attempts_url = database_url_for(
        settings.execution.attempts_database_url,
        service_url,
        suffix="execution",
        setting="ALCHEMISER_EXECUTION__ATTEMPTS_DATABASE_URL",
    )
    engine = container.engine
    if attempts_url != service_url:
        engine = create_engine_from_url(attempts_url, application_name=f"{SERVICE_NAME}-attempts")
    store = AttemptStore(engine)
    store.migrate()
    built = build_broker(settings, service_url)
    reconcile(store, built.broker, timeout_s=settings.execution.reconcile_timeout_s)
    hook_file = settings.execution.block_after_submit_file
    desk = OrderDesk(
        built.broker,
        store,
        broker_name=built.name,
        metrics=container.metrics,
        after_accept=block_after_first_accept(hook_file) if hook_file else None,
    )
    executor = Executor(built.broker, store, desk, execution_config(settings))
    handler = RebalancePlannedHandler(
        executor,
        source=EventSource(service=SERVICE_NAME, version=service_version()),
        metrics=container.metrics,
    )
    container.extras["execution"] = {"store": store, "broker": built.broker, "executor": executor}
    registry.register(
        HandlerRegistration("RebalancePlanned", lambda: handler, metadata={"broker": built.name})
    )
    _log.info(
        "execution ready",
        broker=built.name,
        order_policy=settings.execution.order_policy.value,
        attempts_database="service" if attempts_url == service_url else "own",
    )

"""The service's composition root: settings -> ledger, broker -> the handlers.

:func:`build_plan_handler` and :func:`build_outcome_handler` are the factories the service
declaration (:mod:`alchemiser_portfolio.service`) names; the runtime calls them at start-up with
the loaded :class:`~alchemiser_portfolio.settings.PortfolioSettings`. The plan handler's factory
migrates the workflow ledger's tables (in the service database) before anything is consumed;
the outcome handlers only return units of work, which run after every factory did.
Configuration problems found here (``ALCHEMISER_BROKER__KIND=alpaca`` without keys) raise
:class:`~alchemiser_common.errors.ConfigurationError` naming the variable, so the process stops
at start-up with exit code 2.
"""

from __future__ import annotations

from datetime import timedelta

from alchemiser_broker import BrokerPort
from alchemiser_broker.factory import build_broker
from alchemiser_common.events import EventSource
from alchemiser_common.observability.logging import get_logger
from alchemiser_common.runtime.declaration import ServiceContainer
from alchemiser_portfolio.adapters.ledger import WorkflowLedger
from alchemiser_portfolio.domain import WorkflowEnd
from alchemiser_portfolio.handlers import SignalGeneratedHandler, WorkflowEndedHandler
from alchemiser_portfolio.sequencing import PreviousWorkflowGate
from alchemiser_portfolio.settings import PortfolioSettings

__all__ = [
    "SERVICE_NAME",
    "account_broker",
    "build_outcome_handler",
    "build_plan_handler",
    "event_source",
]

SERVICE_NAME = "portfolio"
"""The service's name in ``EventSource`` and its default consumer-group name."""

_log = get_logger("alchemiser.portfolio")


def event_source() -> EventSource:
    """``source`` of the events this service emits: its name and installed version."""
    return EventSource.of_package(SERVICE_NAME, "alchemiser-portfolio")


def account_broker(settings: PortfolioSettings) -> BrokerPort:
    """The broker the account is read from, built by the shared factory (no stream needed)."""
    return build_broker(
        settings.broker.model_copy(update={"stream": False}), settings.alpaca
    ).broker


def build_plan_handler(container: ServiceContainer[PortfolioSettings]) -> SignalGeneratedHandler:
    """The ``SignalGenerated`` handler; the ledger is migrated and the broker built now."""
    settings = container.settings
    ledger = WorkflowLedger(container.engine)
    ledger.migrate()
    broker = account_broker(settings)
    wait = timedelta(seconds=settings.portfolio.previous_workflow_wait_s)
    handler = SignalGeneratedHandler(
        broker,
        settings.portfolio.planner_config(),
        source=event_source(),
        gate=PreviousWorkflowGate(ledger, wait),
    )
    _log.info(
        "portfolio ready",
        broker=settings.broker.kind.value,
        broker_repr=repr(broker),
        previous_workflow_wait_s=wait.total_seconds(),
    )
    return handler


def build_outcome_handler(outcome: WorkflowEnd) -> WorkflowEndedHandler:
    """The ``WorkflowCompleted`` (``COMPLETED``) or ``WorkflowFailed`` (``FAILED``) handler."""
    return WorkflowEndedHandler(outcome)

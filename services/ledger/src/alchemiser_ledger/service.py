"""The ledger service's declaration: it listens to every workflow's signal, settled orders and
outcome, keeps the trade ledger and the account's snapshots, and sends the notifications.

It emits nothing. Importing this module is cheap (settings and event classes only); the store,
broker and channels are built when the runtime calls the factories at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alchemiser_common.events import (
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
)
from alchemiser_common.runtime.declaration import BackgroundTask, Service, ServiceContainer
from alchemiser_ledger.settings import LedgerSettings

if TYPE_CHECKING:
    from alchemiser_ledger.handlers import OutcomeHandler, SettledHandler, SignalHandler

__all__ = [
    "SERVICE",
    "build_outcome_handler",
    "build_sender",
    "build_settled_handler",
    "build_signal_handler",
]


def build_signal_handler(container: ServiceContainer[LedgerSettings]) -> SignalHandler:
    """The ``SignalGenerated`` handler (see :mod:`alchemiser_ledger.app`)."""
    from alchemiser_ledger.app import build_signal_handler as build

    return build(container)


def build_settled_handler(container: ServiceContainer[LedgerSettings]) -> SettledHandler:
    """The ``TradeExecuted`` handler."""
    from alchemiser_ledger.app import build_settled_handler as build

    return build(container)


def build_outcome_handler(container: ServiceContainer[LedgerSettings]) -> OutcomeHandler:
    """The ``WorkflowCompleted`` / ``WorkflowFailed`` handler."""
    from alchemiser_ledger.app import build_outcome_handler as build

    return build(container)


def build_sender(container: ServiceContainer[LedgerSettings]) -> BackgroundTask:
    """The notification outbox's sender."""
    from alchemiser_ledger.app import build_sender as build

    return build(container)


SERVICE = Service(
    name="ledger",
    settings=LedgerSettings,
    handlers={
        SignalGenerated: build_signal_handler,
        TradeExecuted: build_settled_handler,
        WorkflowCompleted: build_outcome_handler,
        WorkflowFailed: build_outcome_handler,
    },
    background=(build_sender,),
    description=(
        "Keeps the trade ledger, the account's daily snapshots and P&L per account and per "
        "strategy file, from strategy.signal.generated.v1, execution.order.settled.v1, "
        "workflow.completed.v1 and workflow.failed.v1; e-mails (and optionally posts to a "
        "webhook) a report of each workflow, at most once."
    ),
)

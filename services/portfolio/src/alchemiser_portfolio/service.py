"""The portfolio service's declaration: ``SignalGenerated`` -> ``RebalancePlanned``, and the
workflows' outcomes (``WorkflowCompleted`` / ``WorkflowFailed``) into the workflow ledger.

An account's plans are made one workflow at a time: a signal waits until the account's previous
workflow finished (see :mod:`alchemiser_portfolio.sequencing`), which is why the service also
consumes the outcome topics.

Importing this module is cheap (settings and event classes only); the ledger and the broker are
built when the runtime calls the handler factories at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alchemiser_common.events import SignalGenerated, WorkflowCompleted, WorkflowFailed
from alchemiser_common.runtime.declaration import Service, ServiceContainer
from alchemiser_portfolio.settings import PortfolioSettings

if TYPE_CHECKING:
    from alchemiser_portfolio.handlers import SignalGeneratedHandler, WorkflowEndedHandler

__all__ = [
    "SERVICE",
    "build_completed_handler",
    "build_failed_handler",
    "build_plan_handler",
]


def build_plan_handler(container: ServiceContainer[PortfolioSettings]) -> SignalGeneratedHandler:
    """The ``SignalGenerated`` handler (see :func:`alchemiser_portfolio.app.build_plan_handler`)."""
    from alchemiser_portfolio.app import build_plan_handler as build

    return build(container)


def build_completed_handler(
    _container: ServiceContainer[PortfolioSettings],
) -> WorkflowEndedHandler:
    """The ``WorkflowCompleted`` handler: records the workflow as completed in the ledger."""
    from alchemiser_portfolio.app import build_outcome_handler
    from alchemiser_portfolio.domain import WorkflowEnd

    return build_outcome_handler(WorkflowEnd.COMPLETED)


def build_failed_handler(_container: ServiceContainer[PortfolioSettings]) -> WorkflowEndedHandler:
    """The ``WorkflowFailed`` handler: records the workflow as failed in the ledger."""
    from alchemiser_portfolio.app import build_outcome_handler
    from alchemiser_portfolio.domain import WorkflowEnd

    return build_outcome_handler(WorkflowEnd.FAILED)


SERVICE = Service(
    name="portfolio",
    settings=PortfolioSettings,
    handlers={
        SignalGenerated: build_plan_handler,
        WorkflowCompleted: build_completed_handler,
        WorkflowFailed: build_failed_handler,
    },
    description=(
        "Turns each consolidated target (strategy.signal.generated.v1) and the account's state "
        "into a rebalance plan (portfolio.rebalance.planned.v1), one workflow at a time per "
        "account: it waits for the previous workflow's outcome (workflow.completed.v1, "
        "workflow.failed.v1)."
    ),
)

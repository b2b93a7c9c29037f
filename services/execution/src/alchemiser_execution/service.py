"""The execution service's declaration: ``RebalancePlanned`` -> orders -> the workflow's outcome,
``WorkflowStarted`` -> the workflow recorded as known (plans of unknown workflows wait), and
``WorkflowFailed`` -> the workflow recorded as failed (a later plan of it is not executed).

Importing this module is cheap (settings and event classes only); the broker, the attempt
store and start-up reconciliation happen when the runtime calls the handler factory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alchemiser_common.events import RebalancePlanned, WorkflowFailed, WorkflowStarted
from alchemiser_common.runtime.declaration import Service, ServiceContainer
from alchemiser_execution.settings import ExecutionSettings

if TYPE_CHECKING:
    from alchemiser_execution.handlers import (
        RebalancePlannedHandler,
        WorkflowFailedHandler,
        WorkflowStartedHandler,
    )

__all__ = [
    "SERVICE",
    "build_execution_handler",
    "build_failure_handler",
    "build_workflow_handler",
]


def build_execution_handler(
    container: ServiceContainer[ExecutionSettings],
) -> RebalancePlannedHandler:
    """The ``RebalancePlanned`` handler, after reconciliation (see :mod:`.app`)."""
    from alchemiser_execution.app import build_execution_handler as build

    return build(container)


def build_workflow_handler(
    container: ServiceContainer[ExecutionSettings],
) -> WorkflowStartedHandler:
    """The ``WorkflowStarted`` handler (see :mod:`.app`)."""
    from alchemiser_execution.app import build_workflow_handler as build

    return build(container)


def build_failure_handler(
    container: ServiceContainer[ExecutionSettings],
) -> WorkflowFailedHandler:
    """The ``WorkflowFailed`` handler (see :mod:`.app`)."""
    from alchemiser_execution.app import build_failure_handler as build

    return build(container)


SERVICE = Service(
    name="execution",
    settings=ExecutionSettings,
    handlers={
        RebalancePlanned: build_execution_handler,
        WorkflowStarted: build_workflow_handler,
        WorkflowFailed: build_failure_handler,
    },
    description=(
        "Places the orders of each rebalance plan (portfolio.rebalance.planned.v1) at the "
        "broker, follows them to their fills and emits execution.order.settled.v1 and the "
        "workflow's outcome (workflow.completed.v1 / workflow.failed.v1). Acts only on plans "
        "whose workflow it saw started on workflow.started.v1, and not on a new plan of a "
        "workflow it saw failed on workflow.failed.v1."
    ),
)

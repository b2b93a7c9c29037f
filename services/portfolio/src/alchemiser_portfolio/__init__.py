"""Alchemiser portfolio service: target weights and the account in, a rebalance plan out.

One workflow at a time per account: a signal is planned only once the account's previous
workflow finished (its ``workflow.completed.v1`` / ``workflow.failed.v1`` was consumed), so
each plan sees the account as the previous workflow left it; a signal still blocked after
``ALCHEMISER_PORTFOLIO__PREVIOUS_WORKFLOW_WAIT_S`` fails its workflow with
``previous_workflow_unfinished`` (see :mod:`alchemiser_portfolio.sequencing`).

The service is declared once in :mod:`alchemiser_portfolio.service`; ``python -m
alchemiser_portfolio`` runs that declaration. :func:`register_handlers` is the plan document's
entry point, built on it. Importing the package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alchemiser_common.runtime.declaration import ServiceContainer
    from alchemiser_common.runtime.handlers import EventHandlerRegistry
    from alchemiser_portfolio.settings import PortfolioSettings

__all__ = ["register_handlers"]


def register_handlers(
    container: ServiceContainer[PortfolioSettings], registry: EventHandlerRegistry
) -> None:
    """Build the service's handlers from ``container`` and add them to ``registry``."""
    from alchemiser_portfolio.service import SERVICE

    SERVICE.register_handlers(container, registry)

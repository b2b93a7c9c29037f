"""Alchemiser portfolio service: target weights and the account in, a rebalance plan out.

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

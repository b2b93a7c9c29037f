"""Alchemiser strategy service: ``WorkflowStarted`` -> ``SignalGenerated``.

The service is declared once in :mod:`alchemiser_strategy.service`; ``python -m
alchemiser_strategy`` runs that declaration. :func:`register_handlers` is the plan document's
entry point, built on it. Importing the package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alchemiser_common.runtime.declaration import ServiceContainer
    from alchemiser_common.runtime.handlers import EventHandlerRegistry
    from alchemiser_strategy.settings import StrategySettings

__all__ = ["register_handlers"]


def register_handlers(
    container: ServiceContainer[StrategySettings], registry: EventHandlerRegistry
) -> None:
    """Build the service's handlers from ``container`` and add them to ``registry``."""
    from alchemiser_strategy.service import SERVICE

    SERVICE.register_handlers(container, registry)

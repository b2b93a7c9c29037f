"""Alchemiser execution service: ``RebalancePlanned`` -> broker orders -> the workflow's outcome.

The service is declared once in :mod:`alchemiser_execution.service`; ``python -m
alchemiser_execution`` runs that declaration. :func:`register_handlers` is the plan document's
entry point, built on it. Importing the package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alchemiser_common.runtime.declaration import ServiceContainer
    from alchemiser_common.runtime.handlers import EventHandlerRegistry
    from alchemiser_execution.settings import ExecutionSettings

__all__ = ["register_handlers"]


def register_handlers(
    container: ServiceContainer[ExecutionSettings], registry: EventHandlerRegistry
) -> None:
    """Build the service's handlers from ``container`` and add them to ``registry``."""
    from alchemiser_execution.service import SERVICE

    SERVICE.register_handlers(container, registry)

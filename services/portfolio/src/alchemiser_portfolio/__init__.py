"""Alchemiser portfolio service: target weights and the account in, a rebalance plan out.

The runtime calls :func:`register_handlers`; the service itself runs with
``python -m alchemiser_portfolio``. The package root stays light: the service's modules are
imported when :func:`register_handlers` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alchemiser_common.runtime.handlers import EventHandlerRegistry
    from alchemiser_common.runtime.service import ServiceContainer

__all__ = ["register_handlers"]


def register_handlers(container: ServiceContainer, registry: EventHandlerRegistry) -> None:
    """Register the portfolio handlers with the runtime (see :mod:`alchemiser_portfolio.app`)."""
    from alchemiser_portfolio.app import register_handlers as register

    register(container, registry)

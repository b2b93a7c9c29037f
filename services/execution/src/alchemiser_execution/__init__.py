"""Alchemiser execution service: ``RebalancePlanned`` -> broker orders -> the workflow's outcome.

Run it with ``python -m alchemiser_execution``; the runtime calls :func:`register_handlers`.
"""

from __future__ import annotations

from typing import Any

from alchemiser_common.runtime.handlers import EventHandlerRegistry

__all__ = ["register_handlers"]


def register_handlers(container: Any, registry: EventHandlerRegistry) -> None:
    """Register the execution handler (imports the service lazily)."""
    from alchemiser_execution.app import register_handlers as register

    register(container, registry)

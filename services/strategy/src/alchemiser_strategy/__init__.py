"""Alchemiser strategy service: ``WorkflowStarted`` -> ``SignalGenerated``.

``register_handlers(container, registry)`` is the runtime's entry point (``python -m
alchemiser_strategy`` runs it through ``run_service``). Heavy imports happen inside it, so
importing the package stays cheap.
"""

from __future__ import annotations

from typing import Any

from alchemiser_common.runtime.handlers import EventHandlerRegistry

__all__ = ["register_handlers"]


def register_handlers(container: Any, registry: EventHandlerRegistry) -> None:
    """Load the strategy files and market data now, then register the signal handler.

    ``container.settings`` should be a ``StrategySettings``; any other settings object (the
    generic runtime entry point) is replaced by ``StrategySettings`` read from the
    environment. Raises ``ConfigurationError`` for a bad setting, a missing file, a strategy
    syntax error (``path:line:col: message``) or unreadable market data.
    """
    from alchemiser_common.runtime.handlers import HandlerRegistration
    from alchemiser_common.settings import load_settings
    from alchemiser_strategy.app import build_engine
    from alchemiser_strategy.handlers import SignalHandler
    from alchemiser_strategy.settings import StrategySettings

    settings = container.settings
    if not isinstance(settings, StrategySettings):
        settings = load_settings(StrategySettings)
    handler = SignalHandler(build_engine(settings))
    registry.register(
        HandlerRegistration(
            "WorkflowStarted",
            lambda: handler,
            metadata={"emits": "SignalGenerated, WorkflowFailed"},
        )
    )

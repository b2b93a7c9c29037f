"""A service declares itself once: its name, its settings class and a handler per event type.

::

    SERVICE = Service(
        name="strategy",
        settings=StrategySettings,
        handlers={WorkflowStarted: build_signal_handler},
    )

``build_signal_handler(container)`` receives a :class:`ServiceContainer` whose ``settings`` is
already a ``StrategySettings`` (loaded and validated by the runtime) and returns the handler of
``WorkflowStarted``. From the declaration the runtime derives the subscription (the events'
topics), decoding and dispatch; ``python -m alchemiser_<svc>`` runs it with
:func:`~alchemiser_common.runtime.service.run_service`. The plan document's entry point,
``register_handlers(container, registry)``, is :meth:`Service.register_handlers`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine

from alchemiser_common.events import Event
from alchemiser_common.observability.metrics import Metrics
from alchemiser_common.runtime.handlers import (
    EventHandlerRegistry,
    Handler,
    HandlerRegistration,
)
from alchemiser_common.settings import CommonSettings

__all__ = ["HandlerFactory", "Service", "ServiceContainer"]

SettingsT = TypeVar("SettingsT", bound=CommonSettings)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ServiceContainer(Generic[SettingsT]):
    """What a service's handler factories may use: typed settings, database, metrics, clock."""

    settings: SettingsT
    engine: Engine
    metrics: Metrics
    now: Callable[[], datetime] = field(default=_utc_now)


HandlerFactory = Callable[[ServiceContainer[SettingsT]], Handler[Any]]
"""Builds one handler at start-up (configuration errors raise ``ConfigurationError`` here)."""


@dataclass(frozen=True, slots=True)
class Service(Generic[SettingsT]):
    """One deployable service: name, settings class, and a handler factory per event class."""

    name: str
    settings: type[SettingsT]
    handlers: Mapping[type[Event], HandlerFactory[SettingsT]]
    description: str = ""

    def register_handlers(
        self, container: ServiceContainer[SettingsT], registry: EventHandlerRegistry
    ) -> None:
        """Build every handler from ``container`` and add it to ``registry``."""
        for event_class, build in self.handlers.items():
            registry.register(HandlerRegistration(event_class, build(container)))

    def topics(self) -> list[str]:
        """The topics the service consumes, sorted."""
        return sorted({event_class.TOPIC for event_class in self.handlers})

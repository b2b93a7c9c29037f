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

import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from alchemiser_common.runtime.handlers import Handler, HandlerRegistration
from alchemiser_common.settings import CommonSettings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from alchemiser_common.events import Event
    from alchemiser_common.observability.metrics import Metrics
    from alchemiser_common.runtime.handlers import EventHandlerRegistry

__all__ = ["BackgroundFactory", "BackgroundTask", "HandlerFactory", "Service", "ServiceContainer"]

#: Exit codes of a service process.
EXIT_OK = 0
EXIT_CONFIG = 2

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

BackgroundTask = Callable[[threading.Event], None]
"""Work a service does beside its handlers (the ledger's notification sender): runs on its own
daemon thread until the event is set, and must not raise (it logs and retries its failures)."""

BackgroundFactory = Callable[[ServiceContainer[SettingsT]], BackgroundTask]
"""Builds one background task at start-up, after the handlers."""


@dataclass(frozen=True, slots=True)
class Service(Generic[SettingsT]):
    """One deployable service: name, settings class, and a handler factory per event class."""

    name: str
    settings: type[SettingsT]
    handlers: Mapping[type[Event], HandlerFactory[SettingsT]]
    description: str = ""
    background: Sequence[BackgroundFactory[SettingsT]] = ()
    """Tasks started once the handlers are registered, stopped when the service stops."""

    def register_handlers(
        self, container: ServiceContainer[SettingsT], registry: EventHandlerRegistry
    ) -> None:
        """Build every handler from ``container`` and add it to ``registry``."""
        for event_class, build in self.handlers.items():
            registry.register(HandlerRegistration(event_class, build(container)))

    def topics(self) -> list[str]:
        """The topics the service consumes, sorted."""
        return sorted({event_class.TOPIC for event_class in self.handlers})

    def main(self, argv: list[str] | None = None) -> int:
        """``python -m alchemiser_<svc> [--help]``: print help, or run the service.

        The runtime is imported only to run, so ``--help`` costs little more than Python.
        """
        args = sys.argv[1:] if argv is None else argv
        if any(arg in {"-h", "--help"} for arg in args):
            print(self.usage())
            return EXIT_OK
        if args:
            print(f"{self.name}: unexpected arguments {' '.join(args)!r}; see --help", flush=True)
            return EXIT_CONFIG
        from alchemiser_common.runtime.service import run_service

        return run_service(self)

    def usage(self) -> str:
        """The ``--help`` text."""
        return (
            f"usage: python -m alchemiser_{self.name.replace('-', '_')} [--help]\n\n"
            f"{self.description or f'The {self.name} service.'}\n\n"
            f"Consumes {', '.join(self.topics())}; runs until SIGTERM or SIGINT (exit 0), exits\n"
            "1 on a fatal runtime error and 2 on bad configuration. Configured only by\n"
            f"environment variables ALCHEMISER_* ({self.settings.__name__}; nested sections use\n"
            "'__', e.g. ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS, ALCHEMISER_DATABASE__URL) or .env."
        )

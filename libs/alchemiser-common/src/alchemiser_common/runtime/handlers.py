"""The handler registry: how services plug their handlers into the runtime.

Each service package exposes ``register_handlers(container, registry)`` at its root. The
runtime calls it once at start-up, then subscribes to the topics of the registered event types
and calls the handlers for each decoded event. A handler receives one event and a
:class:`HandlerContext` and returns the events to emit; it never touches Kafka.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from alchemiser_common.errors import AlchemiserError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from alchemiser_common.events import Event

__all__ = [
    "EventHandler",
    "EventHandlerRegistry",
    "HandlerContext",
    "HandlerRegistration",
    "InvalidEventError",
    "RegisterHandlers",
]


class InvalidEventError(AlchemiserError):
    """A handler rejects its input as invalid; the runtime dead-letters it with this reason."""


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What a handler may use besides the event: the database transaction and the clock.

    ``connection`` is the open SQLAlchemy connection of the record's database transaction; state
    written through it commits together with the inbox row and the stored outputs, or not at all.
    """

    consumer: str
    connection: Connection
    now: Callable[[], datetime]


class EventHandler(Protocol):
    """A handler: one decoded event in, the events to emit out."""

    def __call__(self, event: Event, context: HandlerContext, /) -> Sequence[Event]:
        """Handle ``event``; return the output events (possibly none)."""
        ...


@dataclass(frozen=True, slots=True)
class HandlerRegistration:
    """One handler for one event type, built lazily by ``handler_factory``."""

    event_type: str
    handler_factory: Callable[[], EventHandler]
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    priority: int = 100


class RegisterHandlers(Protocol):
    """The ``register_handlers(container, registry)`` function every service exposes."""

    def __call__(self, container: Any, registry: EventHandlerRegistry) -> None:
        """Add the service's registrations to ``registry``."""
        ...


class EventHandlerRegistry:
    """Registrations by event type; several handlers per type run in priority order."""

    def __init__(self) -> None:
        self._registrations: dict[str, list[HandlerRegistration]] = {}
        self._handlers: dict[int, EventHandler] = {}

    def register(self, registration: HandlerRegistration) -> None:
        """Add a registration; lower ``priority`` runs first, ties keep registration order."""
        entries = self._registrations.setdefault(registration.event_type, [])
        entries.append(registration)
        entries.sort(key=lambda entry: entry.priority)

    def clear(self) -> None:
        """Forget every registration (a start-up step that failed transiently is redone)."""
        self._registrations.clear()
        self._handlers.clear()

    def event_types(self) -> list[str]:
        """Every event type with at least one handler, sorted."""
        return sorted(self._registrations)

    def registrations_for(self, event_type: str) -> list[HandlerRegistration]:
        """The registrations for ``event_type`` in the order they run."""
        return list(self._registrations.get(event_type, ()))

    def handlers_for(self, event_type: str) -> Iterator[EventHandler]:
        """The handlers for ``event_type``, each built once by its factory on first use."""
        for registration in self._registrations.get(event_type, ()):
            key = id(registration)
            if key not in self._handlers:
                self._handlers[key] = registration.handler_factory()
            yield self._handlers[key]

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._registrations.values())

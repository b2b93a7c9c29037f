"""Handlers and their registry: how a service's code plugs into the runtime, typed by event.

A handler receives one decoded event of the concrete type it was registered for and a
:class:`HandlerContext`, and returns the events to emit — or a :class:`HandlerResult` with the
events and a unit of work (state to write). It never touches Kafka and never sees a database
transaction: it runs before the inbox transaction opens, and its unit of work runs inside it,
after the input's inbox row is claimed.

Services do not build registries by hand: they declare themselves once with
:class:`~alchemiser_common.runtime.declaration.Service`, from which the runtime derives
subscriptions, decoding and dispatch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from alchemiser_common.errors import (
    AlchemiserError,
    ConfigurationError,
    DeadLetterReason,
    TransientError,
)

if TYPE_CHECKING:
    from alchemiser_common.events import Event
    from alchemiser_common.inbox import UnitOfWork

__all__ = [
    "EventHandlerRegistry",
    "Handler",
    "HandlerContext",
    "HandlerRegistration",
    "HandlerResult",
    "InvalidEventError",
    "NotReadyError",
]

EventT = TypeVar("EventT", bound="Event")
EventT_contra = TypeVar("EventT_contra", bound="Event", contravariant=True)


class InvalidEventError(AlchemiserError):
    """A handler rejects its input as invalid: the runtime dead-letters it.

    ``reason`` becomes the dead letter's ``dlq.reason`` header (default ``handler_rejected``);
    the message its ``dlq.error_message``.
    """

    def __init__(
        self, message: str, *, reason: DeadLetterReason = DeadLetterReason.HANDLER_REJECTED
    ) -> None:
        super().__init__(message)
        self.reason = reason


class NotReadyError(TransientError):
    """The input cannot be handled *yet* (it waits for another event): handle it again later.

    The runtime stops that input's partition for this batch (other partitions go on), commits
    what came before it, and consumes it again after a backoff. A handler that raises this
    must bound the wait itself (for example by the input's age) and reject the input after it.
    """


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What a handler may use besides the event: its consumer name and the clock."""

    consumer: str
    now: Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class HandlerResult:
    """A handler's events and the state it wants written with the input's inbox row.

    ``state`` runs inside the inbox transaction, in a SAVEPOINT of its own: it commits with the
    row and the stored outputs, or, if it raises, neither it nor the row is kept and the input
    is dead-lettered.
    """

    events: Sequence[Event] = ()
    state: UnitOfWork | None = None


class Handler(Protocol[EventT_contra]):
    """A handler of one event type: the event in, the events to emit (and state) out."""

    def __call__(
        self, event: EventT_contra, context: HandlerContext, /
    ) -> Sequence[Event] | HandlerResult:
        """Handle ``event``; return the output events (possibly none) or a result with state."""
        ...


@dataclass(frozen=True, slots=True)
class HandlerRegistration(Generic[EventT]):
    """One handler for one event class."""

    event_class: type[EventT]
    handler: Handler[EventT]


class EventHandlerRegistry:
    """One handler per event class; the runtime dispatches on the decoded event's class."""

    def __init__(self) -> None:
        self._handlers: dict[type[Event], Handler[Any]] = {}

    def register(self, registration: HandlerRegistration[Any]) -> None:
        """Add a registration; a second handler for the same class is a configuration error."""
        if registration.event_class in self._handlers:
            raise ConfigurationError(
                f"a handler for {registration.event_class.__name__} is already registered"
            )
        self._handlers[registration.event_class] = registration.handler

    def clear(self) -> None:
        """Forget every registration (a start-up step that failed transiently is redone)."""
        self._handlers.clear()

    def handler_for(self, event: Event) -> Handler[Any] | None:
        """The handler of ``event``'s class, or ``None``."""
        return self._handlers.get(type(event))

    def event_types(self) -> list[str]:
        """The names of every event class with a handler, sorted."""
        return sorted(event_class.__name__ for event_class in self._handlers)

    def topics(self) -> list[str]:
        """The topics of every registered event class, sorted (the subscription)."""
        return sorted({event_class.TOPIC for event_class in self._handlers})

    def __len__(self) -> int:
        return len(self._handlers)

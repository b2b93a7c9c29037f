"""Every event class, by event type and by topic."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from alchemiser_common.events.envelope import Event
from alchemiser_common.events.exceptions import UnknownEventError
from alchemiser_common.events.models import (
    RebalancePlanned,
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)

__all__ = [
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "TOPICS",
    "event_class_for_topic",
    "event_class_for_type",
]

EVENT_CLASSES: tuple[type[Event], ...] = (
    WorkflowStarted,
    SignalGenerated,
    RebalancePlanned,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
)
"""All event classes, in workflow order."""

EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType(
    {cls.__name__: cls for cls in EVENT_CLASSES}
)
"""Event classes by ``event_type`` (the class name)."""

_BY_TOPIC: Mapping[str, type[Event]] = MappingProxyType({cls.TOPIC: cls for cls in EVENT_CLASSES})

TOPICS: tuple[str, ...] = tuple(cls.TOPIC for cls in EVENT_CLASSES)
"""All event topics, in workflow order (dead-letter topics not included)."""


def event_class_for_type(event_type: str) -> type[Event]:
    """The event class whose ``event_type`` is ``event_type``; ``UnknownEventError`` if none."""
    try:
        return EVENT_TYPES[event_type]
    except KeyError:
        raise UnknownEventError(f"unknown event type {event_type!r}") from None


def event_class_for_topic(topic: str) -> type[Event]:
    """The event class published on ``topic``; ``UnknownEventError`` if none."""
    try:
        return _BY_TOPIC[topic]
    except KeyError:
        raise UnknownEventError(f"no event class for topic {topic!r}") from None

"""Input records as the loop sees them: decoded (or not), with their identity and DLQ form."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from alchemiser_common.errors import DeadLetterReason, DeserializationError
from alchemiser_common.events import Event
from alchemiser_common.inbox import StoredOutput, content_hash
from alchemiser_common.runtime.dlq import dead_letter
from alchemiser_common.runtime.handlers import EventHandlerRegistry
from alchemiser_common.serde import EventSerde

__all__ = ["Input", "decode", "dedupe_key", "event_content_hash"]


def dedupe_key(event: Event) -> str:
    """The inbox key of an input: one effect per (event type, workflow)."""
    return f"{event.event_type}:{event.correlation_id}"


def event_content_hash(event: Event) -> str:
    """The inbox content hash of an event; a different hash for the same key is a conflict.

    pydantic's JSON of the decoded model is deterministic (fields in declaration order, values
    normalised by the model), so the same event read from any compatible schema version hashes
    the same.
    """
    return content_hash(event.model_dump_json().encode())


@dataclass(frozen=True)
class Input:
    """One consumed record and what decoding it gave: an event, or why it is dead."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    event: Event | None = None
    failure: tuple[DeadLetterReason, str | BaseException] | None = None

    @cached_property
    def dedupe_key(self) -> str:
        """The event's inbox key (only for decoded inputs)."""
        assert self.event is not None
        return dedupe_key(self.event)

    @cached_property
    def dead_key(self) -> str:
        """The inbox key recording that this very record was dead-lettered (replay-stable)."""
        return f"dead:{self.topic}:{self.partition}:{self.offset}"

    @cached_property
    def value_hash(self) -> str:
        """The content hash of the raw record (the dead-letter row's hash)."""
        return content_hash((self.key or b"") + b"\x00" + (self.value or b""))

    @cached_property
    def content_hash(self) -> str:
        """The event's content hash (only for decoded inputs)."""
        assert self.event is not None
        return event_content_hash(self.event)

    def dead_letter(
        self, reason: DeadLetterReason, error: BaseException | str, consumer: str
    ) -> StoredOutput:
        """The dead-letter record of this input."""
        return dead_letter(
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            key=self.key,
            value=self.value,
            headers=self.headers,
            reason=reason,
            error=error,
            consumer=consumer,
        )


def decode(record: Any, serde: EventSerde, registry: EventHandlerRegistry) -> Input:
    """Decode a consumed record; decoding failures are kept on the input, not raised.

    A transient registry failure (:class:`~alchemiser_common.errors.TransientError`) is raised:
    the batch is retried, never dead-lettered.
    """
    base = {
        "topic": record.topic(),
        "partition": record.partition(),
        "offset": record.offset(),
        "key": record.key(),
        "value": record.value(),
        "headers": tuple(record.headers() or ()),
    }
    try:
        event = serde.deserialize(base["topic"], base["value"])
    except DeserializationError as err:
        return Input(**base, failure=(err.reason, err))
    if registry.handler_for(event) is None:
        reason = DeadLetterReason.UNEXPECTED_EVENT_TYPE
        return Input(**base, failure=(reason, f"no handler for {event.event_type}"))
    if base["key"] != event.account_id.encode():
        # topics are keyed by account: a record keyed otherwise lands on the wrong partition,
        # outside the per-account order every consumer relies on
        detail = f"record key {base['key']!r} is not the event's account_id {event.account_id!r}"
        return Input(**base, failure=(DeadLetterReason.BAD_KEY, detail))
    return Input(**base, event=event)

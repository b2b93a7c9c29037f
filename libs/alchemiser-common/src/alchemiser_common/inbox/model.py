"""Values of the inbox store: entries to record, claim outcomes, stored outputs and rows."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.engine import Connection

__all__ = [
    "Claim",
    "ClaimOutcome",
    "InboxEntry",
    "InboxRecord",
    "StoredOutput",
    "UnitOfWork",
    "content_hash",
]

UnitOfWork = Callable[[Connection], None]
"""State a handler returns: writes run inside the inbox transaction, after the row is claimed."""


class ClaimOutcome(StrEnum):
    """What claiming ``(consumer, dedupe_key)`` found (the value doubles as a metric label)."""

    NEW = "new"
    """No row existed; this transaction owns the key and runs the handler."""
    DUPLICATE = "duplicate"
    """A committed row with the same content hash exists: re-emit its stored outputs."""
    CONFLICT = "conflict"
    """A committed row with a different content hash exists: do not act; dead-letter."""
    STATE_FAILED = "state_failed"
    """The entry's unit of work failed: its savepoint and its row were rolled back."""


@dataclass(frozen=True, slots=True)
class StoredOutput:
    """One output record exactly as it is (re-)produced: topic, key, value and headers bytes."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes):
            raise TypeError(f"StoredOutput.value must be bytes, not {type(self.value).__name__}")
        if self.key is not None and not isinstance(self.key, bytes):
            raise TypeError(
                f"StoredOutput.key must be bytes or None, not {type(self.key).__name__}"
            )
        for header in self.headers:
            if (
                len(header) != 2
                or not isinstance(header[0], str)
                or not isinstance(header[1], bytes)
            ):
                raise TypeError(f"StoredOutput header must be (str, bytes), not {header!r}")


@dataclass(frozen=True, slots=True)
class InboxRecord:
    """One committed inbox row with its stored outputs in production order."""

    consumer: str
    dedupe_key: str
    content_hash: str
    event_id: str
    topic: str
    partition: int
    offset: int
    processed_at: datetime
    outputs: tuple[StoredOutput, ...]


def content_hash(data: bytes) -> str:
    """The content hash the store expects: ``sha256:`` and the hex digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One handled input to record: its key and origin, its outputs and its state, if any."""

    dedupe_key: str
    content_hash: str
    event_id: str
    topic: str
    partition: int
    offset: int
    outputs: tuple[StoredOutput, ...] = ()
    state: UnitOfWork | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """What recording (or looking up) one key found.

    ``stored_outputs`` are the first run's outputs (DUPLICATE and not yet published, else
    empty); ``stored_published`` says they are known to be committed to Kafka already;
    ``error`` is why the unit of work failed (STATE_FAILED only).
    """

    outcome: ClaimOutcome
    stored_outputs: tuple[StoredOutput, ...] = ()
    stored_content_hash: str | None = None
    stored_published: bool = False
    error: BaseException | None = None

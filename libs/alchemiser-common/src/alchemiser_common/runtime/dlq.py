"""Dead-letter records: the original record, unchanged, plus headers saying why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from alchemiser_common.errors import DeadLetterReason
from alchemiser_common.inbox import StoredOutput
from alchemiser_common.topics import dlq_topic

__all__ = ["DLQ_HEADER_PREFIX", "DeadLetterReason", "dead_letter"]

DLQ_HEADER_PREFIX = "dlq."
_MAX_MESSAGE_BYTES = 2048


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    reason: DeadLetterReason,
    error: BaseException | str,
    consumer: str,
) -> StoredOutput:
    """Build the dead-letter record for one input record (value and key kept byte for byte)."""
    message = error if isinstance(error, str) else f"{error}"
    error_class = "str" if isinstance(error, str) else type(error).__qualname__
    extra = {
        "reason": str(reason),
        "error_class": error_class,
        "error_message": message.encode("utf-8", "replace")[:_MAX_MESSAGE_BYTES].decode(
            "utf-8", "ignore"
        ),
        "original_topic": topic,
        "original_partition": str(partition),
        "original_offset": str(offset),
        "consumer": consumer,
        "failed_at": datetime.now(UTC).isoformat(),
    }
    kept = tuple((name, data) for name, data in headers if not name.startswith(DLQ_HEADER_PREFIX))
    added = tuple((DLQ_HEADER_PREFIX + name, text.encode()) for name, text in extra.items())
    return StoredOutput(topic=dlq_topic(topic), key=key, value=value or b"", headers=kept + added)

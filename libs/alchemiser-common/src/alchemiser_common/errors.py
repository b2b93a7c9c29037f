"""The root of every error the project raises on purpose.

Each package keeps its own one-line subclasses; layers translate with ``raise X(...) from err``.
"""

from enum import StrEnum

__all__ = [
    "AlchemiserError",
    "ConfigurationError",
    "DeadLetterReason",
    "DeserializationError",
    "SchemaCompatibilityError",
    "SchemaError",
    "SerializationError",
    "TransientError",
]


class AlchemiserError(Exception):
    """Root of all errors raised deliberately by Alchemiser code."""


class TransientError(AlchemiserError):
    """Infrastructure is unavailable for now (database, registry, broker): retry, never drop.

    The runtime aborts the Kafka transaction, rewinds to the committed offsets and retries after
    a backoff; such an input is never dead-lettered.
    """


class ConfigurationError(AlchemiserError):
    """A setting is missing or invalid; the process must not start."""


class SchemaError(AlchemiserError):
    """An Avro schema is invalid or cannot be loaded."""


class SchemaCompatibilityError(SchemaError):
    """A schema is incompatible with a released version under the configured level."""


class SerializationError(AlchemiserError):
    """An event could not be serialised for the wire."""


class DeadLetterReason(StrEnum):
    """Why a record went to the dead-letter topic (its header ``dlq.reason``); the one list."""

    UNDECODABLE = "undecodable"
    BAD_MAGIC_BYTE = "bad_magic_byte"
    UNKNOWN_SCHEMA = "unknown_schema"
    INVALID_EVENT = "invalid_event"
    FLOAT_VALUE = "float_value"
    UNEXPECTED_EVENT_TYPE = "unexpected_event_type"
    BAD_KEY = "bad_key"
    HANDLER_REJECTED = "handler_rejected"
    HANDLER_ERROR = "handler_error"
    CONFLICT = "conflict"
    INVALID_PLAN = "invalid_plan"
    UNKNOWN_WORKFLOW = "unknown_workflow"
    WORKFLOW_ENDED = "workflow_ended"


class DeserializationError(AlchemiserError):
    """A record could not be decoded: bad magic byte, unknown schema id or undecodable body.

    The runtime sends such records to the dead-letter topic with ``reason`` as the header.
    """

    def __init__(self, reason: DeadLetterReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason

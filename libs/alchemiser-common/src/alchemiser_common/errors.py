"""The root of every error the project raises on purpose.

Each package keeps its own one-line subclasses; layers translate with ``raise X(...) from err``.
"""

__all__ = [
    "AlchemiserError",
    "ConfigurationError",
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


class DeserializationError(AlchemiserError):
    """A record could not be decoded: bad magic byte, unknown schema id or undecodable body.

    The runtime sends such records to the dead-letter topic with ``reason`` as the header.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

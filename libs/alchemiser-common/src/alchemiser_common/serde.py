"""Avro serde over a schema registry: the only place events meet the wire format.

Serialisation uses confluent-kafka's ``AvroSerializer`` with the topic name strategy (subject
``<topic>-value``) and ``auto.register.schemas=False``: schemas are registered by the deploy
step (``alchemiser schemas register``), never by a running service. Deserialisation uses
``AvroDeserializer`` with the service's current schema as the reader schema, so records written
with any compatible released version decode into today's model.

Models become dicts (and back) only here, at the edge. Every way a record can fail to decode
raises one typed error, :class:`~alchemiser_common.errors.DeserializationError`, whose ``reason``
the runtime puts in the dead-letter header; an unreachable registry raises
:class:`RegistryUnavailableError` instead, which the runtime retries and never dead-letters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from confluent_kafka.serialization import SerializationError as KafkaSerializationError
from pydantic import ValidationError

from alchemiser_common.errors import (
    DeadLetterReason,
    DeserializationError,
    SerializationError,
    TransientError,
)
from alchemiser_common.events import Event, event_class_for_topic, from_avro_dict, to_avro_dict
from alchemiser_common.schemas import SchemaCatalog

__all__ = [
    "REGISTRY_TRANSPORT_ERRORS",
    "EventSerde",
    "RegistryUnavailableError",
    "subject_for",
]


def _transport_errors() -> tuple[type[Exception], ...]:
    """Network errors of the HTTP library the registry client actually uses (httpx or httpx2)."""
    try:
        from confluent_kafka.schema_registry.common import _httpx_compat
    except ImportError:  # an older confluent-kafka uses httpx directly
        return (httpx.TransportError,)
    return (httpx.TransportError, _httpx_compat.httpx.TransportError)


#: Exceptions meaning "the registry could not be reached": transient, never dead-lettered.
REGISTRY_TRANSPORT_ERRORS = _transport_errors()

_MAGIC_BYTE = 0
_HEADER_SIZE = 5
_NOT_FOUND_CODES = frozenset({40401, 40402, 40403})


class RegistryUnavailableError(TransientError):
    """The schema registry did not answer (network, 5xx): transient, retry later."""


def subject_for(topic: str) -> str:
    """The registry subject of a topic's values (topic name strategy)."""
    return f"{topic}-value"


def _is_transient(err: SchemaRegistryError) -> bool:
    return err.http_status_code >= 500 or err.http_status_code in (-1, 408, 429)


class EventSerde:
    """Serialise and deserialise events for the topics in the schema catalog."""

    def __init__(self, client: SchemaRegistryClient, catalog: SchemaCatalog | None = None) -> None:
        self._client = client
        self._catalog = catalog or SchemaCatalog.discover()
        self._serializers: dict[str, AvroSerializer] = {}
        self._deserializers: dict[str, AvroDeserializer] = {}

    @classmethod
    def from_url(cls, url: str, schemas_dir: Path | None = None) -> EventSerde:
        """Build a serde talking to the registry at ``url``."""
        return cls(SchemaRegistryClient({"url": url}), SchemaCatalog.discover(schemas_dir))

    def _schema_text(self, topic: str) -> str:
        return self._catalog.current(subject_for(topic)).text()

    def serialize(self, event: Event) -> bytes:
        """Confluent wire format: magic byte, schema id, Avro body of the current schema."""
        topic = event.TOPIC
        serializer = self._serializers.get(topic)
        if serializer is None:
            serializer = AvroSerializer(
                self._client,
                self._schema_text(topic),
                conf={"auto.register.schemas": False, "normalize.schemas": True},
            )
            self._serializers[topic] = serializer
        ctx = SerializationContext(topic, MessageField.VALUE)
        try:
            data = serializer(to_avro_dict(event), ctx)
        except SchemaRegistryError as err:
            if _is_transient(err):
                raise RegistryUnavailableError(f"schema registry: {err}") from err
            raise SerializationError(
                f"cannot serialise {event.event_type} for {topic}: {err}"
                " (is the schema registered? run `alchemiser schemas register`)"
            ) from err
        except REGISTRY_TRANSPORT_ERRORS as err:
            raise RegistryUnavailableError(f"schema registry unreachable: {err}") from err
        except (KafkaSerializationError, ValueError, TypeError) as err:
            raise SerializationError(f"cannot serialise {event.event_type}: {err}") from err
        if data is None:
            raise SerializationError(f"serialiser returned nothing for {event.event_type}")
        return bytes(data)

    def deserialize(self, topic: str, data: bytes | None) -> Event:
        """Decode a record value of ``topic`` into its event model.

        Raises ``DeserializationError`` with reason ``undecodable``, ``bad_magic_byte``,
        ``unknown_schema`` or ``invalid_event``; ``RegistryUnavailableError`` when the registry
        cannot be asked.
        """
        if not data or len(data) <= _HEADER_SIZE:
            raise DeserializationError(
                DeadLetterReason.UNDECODABLE, f"record of {len(data or b'')} bytes"
            )
        if data[0] != _MAGIC_BYTE:
            raise DeserializationError(
                DeadLetterReason.BAD_MAGIC_BYTE, f"magic byte {data[0]} is not 0"
            )
        try:
            cls = event_class_for_topic(topic)
        except LookupError as err:
            raise DeserializationError(
                DeadLetterReason.UNEXPECTED_EVENT_TYPE, f"unknown topic {topic}"
            ) from err
        decoded = self._decode(topic, data)
        try:
            return from_avro_dict(cls, decoded)
        except DeserializationError:
            raise
        except (ValidationError, ValueError, TypeError, LookupError) as err:
            raise DeserializationError(
                DeadLetterReason.INVALID_EVENT, f"invalid {cls.__name__}: {err}"
            ) from err

    def _decode(self, topic: str, data: bytes) -> dict[str, Any]:
        deserializer = self._deserializers.get(topic)
        if deserializer is None:
            deserializer = AvroDeserializer(self._client, self._schema_text(topic))
            self._deserializers[topic] = deserializer
        # No context: the reader schema is our current schema, not the registry's latest.
        try:
            decoded = deserializer(data, None)
        except SchemaRegistryError as err:
            if err.error_code in _NOT_FOUND_CODES or err.http_status_code == 404:
                raise DeserializationError(
                    DeadLetterReason.UNKNOWN_SCHEMA,
                    f"schema id {int.from_bytes(data[1:5], 'big')}: {err}",
                ) from err
            if _is_transient(err):
                raise RegistryUnavailableError(f"schema registry: {err}") from err
            raise DeserializationError(DeadLetterReason.UNKNOWN_SCHEMA, str(err)) from err
        except REGISTRY_TRANSPORT_ERRORS as err:
            raise RegistryUnavailableError(f"schema registry unreachable: {err}") from err
        except Exception as err:  # fastavro raises many types on a corrupt body
            raise DeserializationError(
                DeadLetterReason.UNDECODABLE, f"{type(err).__name__}: {err}"
            ) from err
        if not isinstance(decoded, dict):
            raise DeserializationError(
                DeadLetterReason.UNDECODABLE, "the body is not an Avro record"
            )
        return decoded

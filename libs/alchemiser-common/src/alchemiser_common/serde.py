"""Avro serde over a schema registry: the only place events meet the wire format.

Records use the Confluent wire format (magic byte 0, the 4-byte schema id, the Avro body) and
the topic name strategy (subject ``<topic>-value``). Schemas are registered by the deploy step
(``alchemiser schemas register``), never by a running service: serialising looks the current
schema's id up once per topic (``lookup_schema``, normalised) and refuses an unregistered one.

Per record, only fastavro runs, with schemas parsed once:

* **serialise**: the event's Avro dict written with the topic's current schema, after the
  cached 5-byte header;
* **deserialise**: the writer schema is fetched by id once (the client caches it). When it is
  the service's current schema (the common case) the body is read with it directly; a record
  written with another compatible version is read by confluent-kafka's ``AvroDeserializer``
  with the current schema as the reader schema (Avro schema resolution), so records of any
  compatible released version decode into today's model.

Models become dicts (and back) only here, at the edge; every decoded dict is validated into
its pydantic model. Every way a record can fail to decode raises one typed error,
:class:`~alchemiser_common.errors.DeserializationError`, whose ``reason`` the runtime puts in
the dead-letter header; an unreachable registry raises :class:`RegistryUnavailableError`
instead, which the runtime retries and never dead-letters.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import SchemaParseException
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
_REGISTRY_ERRORS: tuple[type[Exception], ...] = (SchemaRegistryError, *REGISTRY_TRANSPORT_ERRORS)

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


@dataclass(frozen=True, slots=True)
class _Writer:
    """A topic's current schema, parsed, and the wire header naming its registered id."""

    header: bytes
    schema: Any


@dataclass(frozen=True, slots=True)
class _Reader:
    """How to read the records of one writer schema id of a topic.

    ``schema`` is set when the writer schema is the current one (read it directly);
    otherwise ``resolving`` reads with schema resolution into the current schema.
    """

    schema: Any = None
    resolving: AvroDeserializer | None = None


class EventSerde:
    """Serialise and deserialise events for the topics in the schema catalog."""

    def __init__(self, client: SchemaRegistryClient, catalog: SchemaCatalog | None = None) -> None:
        self._client = client
        self._catalog = catalog or SchemaCatalog.discover()
        self._writers: dict[str, _Writer] = {}
        self._readers: dict[tuple[str, int], _Reader] = {}

    @classmethod
    def from_url(cls, url: str, schemas_dir: Path | None = None) -> EventSerde:
        """Build a serde talking to the registry at ``url``."""
        return cls(SchemaRegistryClient({"url": url}), SchemaCatalog.discover(schemas_dir))

    def _schema_text(self, topic: str) -> str:
        return self._catalog.current(subject_for(topic)).text()

    def serialize(self, event: Event) -> bytes:
        """Confluent wire format: magic byte, schema id, Avro body of the current schema."""
        writer = self._writers.get(event.TOPIC) or self._writer(event)
        buffer = io.BytesIO()
        buffer.write(writer.header)
        try:
            schemaless_writer(buffer, writer.schema, to_avro_dict(event))
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise SerializationError(f"cannot serialise {event.event_type}: {err}") from err
        return buffer.getvalue()

    def _writer(self, event: Event) -> _Writer:
        """Look up the id of ``event``'s current schema (once per topic) and parse it."""
        topic = event.TOPIC
        text = self._schema_text(topic)
        try:
            registered = self._client.lookup_schema(
                subject_for(topic), Schema(text, "AVRO"), normalize_schemas=True
            )
        except SchemaRegistryError as err:
            if _is_transient(err):
                raise RegistryUnavailableError(f"schema registry: {err}") from err
            raise SerializationError(
                f"cannot serialise {event.event_type} for {topic}: {err}"
                " (is the schema registered? run `alchemiser schemas register`)"
            ) from err
        except REGISTRY_TRANSPORT_ERRORS as err:
            raise RegistryUnavailableError(f"schema registry unreachable: {err}") from err
        if registered.schema_id is None:
            raise SerializationError(f"the registry returned no id for {subject_for(topic)}")
        header = bytes([_MAGIC_BYTE]) + registered.schema_id.to_bytes(4, "big")
        writer = _Writer(header=header, schema=parse_schema(json.loads(text)))
        self._writers[topic] = writer
        return writer

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
        schema_id = int.from_bytes(data[1:_HEADER_SIZE], "big")
        reader = self._readers.get((topic, schema_id)) or self._reader(topic, schema_id)
        try:
            if reader.resolving is not None:
                # No context: the reader schema is our current schema, not the registry's latest.
                decoded = reader.resolving(data, None)
            else:
                decoded = schemaless_reader(io.BytesIO(data[_HEADER_SIZE:]), reader.schema, None)
        except _REGISTRY_ERRORS as err:
            raise _registry_error(err, schema_id) from err
        except Exception as err:  # fastavro raises many types on a corrupt body
            raise DeserializationError(
                DeadLetterReason.UNDECODABLE, f"{type(err).__name__}: {err}"
            ) from err
        if not isinstance(decoded, dict):
            raise DeserializationError(
                DeadLetterReason.UNDECODABLE, "the body is not an Avro record"
            )
        return decoded

    def _reader(self, topic: str, schema_id: int) -> _Reader:
        """Fetch writer schema ``schema_id`` (once) and choose how its records are read."""
        try:
            writer = self._client.get_schema(schema_id)
        except _REGISTRY_ERRORS as err:
            raise _registry_error(err, schema_id) from err
        text = self._schema_text(topic)
        current = parse_schema(json.loads(text))
        same = (
            writer.schema_type in (None, "AVRO")
            and not writer.references
            and writer.schema_str is not None
            and _parsed_or_none(writer.schema_str) == current
        )
        # the same parsed schema reads the same values with or without resolution
        reader = (
            _Reader(schema=current)
            if same
            else _Reader(resolving=AvroDeserializer(self._client, text))
        )
        self._readers[(topic, schema_id)] = reader
        return reader


def _parsed_or_none(text: str) -> Any:
    """``text`` parsed as an Avro schema; ``None`` if it is not one (it is then read, and
    refused, by the resolving path)."""
    try:
        return parse_schema(json.loads(text))
    except (ValueError, TypeError, KeyError, SchemaParseException):
        return None


def _registry_error(err: Exception, schema_id: int) -> Exception:
    """The typed error for a registry failure while reading writer schema ``schema_id``."""
    if isinstance(err, SchemaRegistryError):
        if err.error_code in _NOT_FOUND_CODES or err.http_status_code == 404:
            return DeserializationError(
                DeadLetterReason.UNKNOWN_SCHEMA, f"schema id {schema_id}: {err}"
            )
        if _is_transient(err):
            return RegistryUnavailableError(f"schema registry: {err}")
        return DeserializationError(DeadLetterReason.UNKNOWN_SCHEMA, str(err))
    return RegistryUnavailableError(f"schema registry unreachable: {err}")

"""Serde against the real registry server: round trips, and one typed error per bad record."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alchemiser_common.cli import build_app
from alchemiser_common.errors import DeserializationError, SerializationError
from alchemiser_common.events import Event, WorkflowStarted
from alchemiser_common.events.samples import sample_events, sample_workflow_started
from alchemiser_common.schemas import SchemaCatalog, find_schemas_dir
from alchemiser_common.schemas.register import RegistrationRefusedError, register_all
from alchemiser_common.serde import EventSerde, RegistryUnavailableError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def serde(registry_url: str) -> EventSerde:
    register_all(registry_url, SchemaCatalog.discover())
    return EventSerde.from_url(registry_url)


@pytest.mark.parametrize("event", sample_events(), ids=lambda event: event.event_type)
def test_round_trip_when_schema_registered_then_event_equal(
    serde: EventSerde, event: Event
) -> None:
    data = serde.serialize(event)
    assert data[0] == 0  # Confluent framing: magic byte, then the schema id
    assert serde.deserialize(event.TOPIC, data) == event


def test_deserialize_when_bad_magic_byte_then_typed_error(serde: EventSerde) -> None:
    data = bytearray(serde.serialize(sample_workflow_started()))
    data[0] = 7
    with pytest.raises(DeserializationError) as caught:
        serde.deserialize(WorkflowStarted.TOPIC, bytes(data))
    assert caught.value.reason == "bad_magic_byte"


def test_deserialize_when_unknown_schema_id_then_typed_error(serde: EventSerde) -> None:
    body = serde.serialize(sample_workflow_started())[5:]
    data = b"\x00" + struct.pack(">I", 987_654) + body
    with pytest.raises(DeserializationError) as caught:
        serde.deserialize(WorkflowStarted.TOPIC, data)
    assert caught.value.reason == "unknown_schema"


@pytest.mark.parametrize("body", [b"\xff" * 3, b"\x02garbage-that-is-not-avro" * 2])
def test_deserialize_when_body_garbage_then_typed_error(serde: EventSerde, body: bytes) -> None:
    header = serde.serialize(sample_workflow_started())[:5]
    with pytest.raises(DeserializationError) as caught:
        serde.deserialize(WorkflowStarted.TOPIC, header + body)
    assert caught.value.reason in {"undecodable", "invalid_event"}


@pytest.mark.parametrize("data", [None, b"", b"\x00\x00\x00"])
def test_deserialize_when_too_short_then_undecodable(serde: EventSerde, data: bytes | None) -> None:
    with pytest.raises(DeserializationError) as caught:
        serde.deserialize(WorkflowStarted.TOPIC, data)
    assert caught.value.reason == "undecodable"


def test_deserialize_when_topic_unknown_then_typed_error(serde: EventSerde) -> None:
    data = serde.serialize(sample_workflow_started())
    with pytest.raises(DeserializationError) as caught:
        serde.deserialize("no.such.topic.v1", data)
    assert caught.value.reason == "unexpected_event_type"


def test_serialize_when_schema_not_registered_then_refused(registry_server: object) -> None:
    url = registry_server.url  # type: ignore[attr-defined]
    with pytest.raises(SerializationError, match="schemas register"):
        EventSerde.from_url(url).serialize(sample_workflow_started())


def test_serialize_when_registry_down_then_transient_error() -> None:
    serde = EventSerde.from_url("http://127.0.0.1:9")
    with pytest.raises(RegistryUnavailableError):
        serde.serialize(sample_workflow_started())


def test_register_when_run_twice_then_same_ids(registry_server: object) -> None:
    url = registry_server.url  # type: ignore[attr-defined]
    first = register_all(url, SchemaCatalog.discover())
    second = register_all(url, SchemaCatalog.discover())
    assert [r.schema_id for r in first] == [r.schema_id for r in second]
    assert len(first) == len(SchemaCatalog.discover().subjects())


def _copy_with_incompatible_v2(tmp_path: Path) -> Path:
    root = tmp_path / "avro"
    shutil.copytree(find_schemas_dir(), root)
    topic_dir = root / WorkflowStarted.TOPIC
    schema = json.loads((topic_dir / "v1.avsc").read_text())
    schema["fields"].append({"name": "surprise", "type": "string", "doc": "no default"})
    (topic_dir / "v2.avsc").write_text(json.dumps(schema))
    return root


def test_register_when_incompatible_then_409_stops_with_message(
    registry_server: object, tmp_path: Path
) -> None:
    url = registry_server.url  # type: ignore[attr-defined]
    root = _copy_with_incompatible_v2(tmp_path)
    with pytest.raises(RegistrationRefusedError, match="409"):
        register_all(url, SchemaCatalog.discover(root))
    result = CliRunner().invoke(
        build_app(), ["schemas", "register", "--registry", url, "--dir", str(root)]
    )
    assert result.exit_code == 1
    assert "workflow.started.v1-value v2" in result.output
    assert "incompatible" in result.output


def test_deserialize_when_written_with_another_version_then_resolved_into_current(
    registry_server: object, tmp_path: Path
) -> None:
    url = registry_server.url  # type: ignore[attr-defined]
    register_all(url, SchemaCatalog.discover())
    root = tmp_path / "avro"
    shutil.copytree(find_schemas_dir(), root)
    topic_dir = root / WorkflowStarted.TOPIC
    schema = json.loads((topic_dir / "v1.avsc").read_text())
    schema["fields"].append({"name": "note", "type": "string", "default": "-", "doc": "added"})
    (topic_dir / "v2.avsc").write_text(json.dumps(schema))
    register_all(url, SchemaCatalog.discover(root))
    newer, current = EventSerde.from_url(url, root), EventSerde.from_url(url)
    event = sample_workflow_started()
    data = newer.serialize(event)
    assert data[1:5] != current.serialize(event)[1:5]  # written with the other schema id
    assert current.deserialize(WorkflowStarted.TOPIC, data) == event

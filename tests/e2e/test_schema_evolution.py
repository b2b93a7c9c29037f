"""Schema evolution against the running system: a v2 with an added, defaulted field is registered
while the v1 services run, in both directions, and the registry's gate refuses what would break
either side.

One system (registry, paper exchange, strategy, portfolio, execution as processes, all built on
the v1 schemas). In its registry every subject is set to ``FULL`` and gets a v2: v1 plus a
string field with a default. Proven:

* **registry gate**: v2 registers as version 2 (a new id) and checks compatible; then, on the
  same subject, a field added without a default, a required field removed (accepted under
  BACKWARD, refused under FULL: v1 readers could not read it) and a changed field type are
  refused with 409, an invalid schema with 422 (42201), and the subject still has versions 1
  and 2;
* **v2 writer, v1 readers**: triggers written with v2 (under v2's id, the new field set) are
  consumed by strategy and execution, still reading with v1, and their workflows complete, with
  nothing dead-lettered; the test's own v1 serde reads such a trigger as the event it was made
  from (the new field dropped by schema resolution);
* **v1 writers, v2 readers**: after v2 is registered the trigger tool and every service still
  write with v1's id (no service registers or follows ``latest``), and a reader on v2 (the
  ``AvroDeserializer`` the serde uses, with v2 as the reader schema) decodes every record of
  those workflows on every topic, the v1 ones with the new field at its default.
"""

from __future__ import annotations

import copy
import io
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import fastavro
import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer

from alchemiser_common.events import (
    Event,
    RebalancePlanned,
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowStarted,
    to_avro_dict,
)
from alchemiser_common.schemas import SchemaCatalog
from alchemiser_common.serde import subject_for
from alchemiser_common.topics import EVENT_TOPICS, dlq_topic
from alchemiser_common.workflow import WorkflowOutcome, build_trigger
from alchemiser_devtools.system import Record, TradingSystem
from tests.e2e.conftest import running_system, scale

pytestmark = pytest.mark.integration

SESSIONS = (date(2018, 6, 13), date(2018, 6, 14), date(2018, 6, 15), date(2018, 6, 18))
WAIT_S = 120.0
MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
TRIGGERS = subject_for(WorkflowStarted.TOPIC)
#: The field every v2 adds, and its default.
ADDED = "e2e_channel"
DEFAULT = "cron"
#: The value v2 triggers set.
SET = "operator-console"
#: What a workflow emits on its way: the topics read back with v2.
CHAIN = (
    WorkflowStarted.TOPIC,
    SignalGenerated.TOPIC,
    RebalancePlanned.TOPIC,
    TradeExecuted.TOPIC,
    WorkflowCompleted.TOPIC,
)


def v1_schema(subject: str) -> dict[str, Any]:
    """The released v1 schema of ``subject``."""
    return SchemaCatalog.discover().load(subject, 1)


def v2_schema(subject: str) -> dict[str, Any]:
    """v1 plus a string field with a default: compatible in both directions (FULL)."""
    schema = copy.deepcopy(v1_schema(subject))
    schema["fields"].append(
        {"name": ADDED, "type": "string", "default": DEFAULT, "doc": "Added by the e2e test."}
    )
    return schema


@dataclass
class Registry:
    """The Confluent REST API of the system's registry, as raw HTTP."""

    url: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """One request; the response whatever its status."""
        return httpx.request(
            method,
            f"{self.url}{path}",
            content=None if body is None else json.dumps(body),
            headers={"Content-Type": MEDIA_TYPE},
            timeout=10,
        )

    def ok(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request that must succeed; its JSON."""
        response = self.call(method, path, body)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def register(self, subject: str, schema: dict[str, Any] | str) -> httpx.Response:
        """``POST /subjects/{subject}/versions``."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        return self.call("POST", f"/subjects/{subject}/versions", {"schema": text})

    def version_id(self, subject: str, version: int) -> int:
        """The global id of one version of ``subject``."""
        return int(self.ok("GET", f"/subjects/{subject}/versions/{version}")["id"])


def schema_id(value: bytes) -> int:
    """The schema id of a Confluent-framed record."""
    assert value[0] == 0
    return int.from_bytes(value[1:5], "big")


def v2_encoded(trigger: WorkflowStarted, v2_id: int) -> bytes:
    """``trigger`` written with the v2 schema under v2's id, the added field set."""
    schema = fastavro.parse_schema(v2_schema(TRIGGERS))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, to_avro_dict(trigger) | {ADDED: SET})
    return b"\x00" + struct.pack(">I", v2_id) + body.getvalue()


def publish_raw(system: TradingSystem, event: Event, value: bytes) -> None:
    """Produce ``value`` as the trigger tool would produce ``event``: keyed, with its headers."""
    producer = Producer({"bootstrap.servers": system.bootstrap, "enable.idempotence": True})
    producer.produce(
        event.TOPIC,
        value=value,
        key=event.account_id.encode(),
        headers=[
            ("event_type", event.event_type.encode()),
            ("event_id", str(event.event_id).encode()),
            ("correlation_id", str(event.correlation_id).encode()),
        ],
    )
    assert producer.flush(30) == 0


@dataclass
class Evolution:
    """What the module's system went through."""

    system: TradingSystem
    registry: Registry
    v1_ids: dict[str, int] = field(default_factory=dict)
    v2_ids: dict[str, int] = field(default_factory=dict)
    v2_triggers: list[tuple[WorkflowStarted, WorkflowOutcome]] = field(default_factory=list)
    v1_triggers: list[tuple[WorkflowStarted, WorkflowOutcome]] = field(default_factory=list)

    read: dict[str, list[Record]] = field(default_factory=dict)

    def records(self, topic: str) -> list[Record]:
        """Every record of ``topic`` (read once: the tests run after every workflow ended)."""
        if topic not in self.read:
            self.read[topic] = self.system.records(topic)
        return self.read[topic]

    def records_of(self, topic: str, triggers: list[tuple[WorkflowStarted, Any]]) -> list[Record]:
        """The records of ``topic`` belonging to the workflows of ``triggers``."""
        wanted = {str(trigger.correlation_id).encode() for trigger, _ in triggers}
        return [
            record
            for record in self.records(topic)
            if record.headers.get("correlation_id") in wanted
        ]


@pytest.fixture(scope="module")
def system(
    private_broker: str, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TradingSystem]:
    """One trading system for the module (its own databases), stopped after it."""
    workdir: Path = tmp_path_factory.mktemp("evolution")
    with running_system(
        private_broker,
        postgres_server_url,
        workdir,
        api_key="e2e-evolution-key",
        secret_key="e2e-evolution-secret",
    ) as trading:
        yield trading


@pytest.fixture(scope="module")
def evolution(system: TradingSystem) -> Evolution:
    """Every subject at FULL with a v2; workflows triggered with v2 and with v1 after it."""
    registry = Registry(system.registry.url)
    result = Evolution(system, registry)
    for topic in EVENT_TOPICS:
        subject = subject_for(topic)
        result.v1_ids[subject] = registry.version_id(subject, 1)
        registry.ok("PUT", f"/config/{subject}", {"compatibility": "FULL"})
        response = registry.register(subject, v2_schema(subject))
        assert response.status_code == 200, (subject, response.text)
        result.v2_ids[subject] = int(response.json()["id"])
    sessions = iter(SESSIONS)
    for _ in range(scale(1, 2)):
        trigger = build_trigger(
            system.account, requested_by="e2e-evolution-v2", as_of=next(sessions)
        )
        publish_raw(system, trigger, v2_encoded(trigger, result.v2_ids[TRIGGERS]))
        result.v2_triggers.append((trigger, system.wait_for_outcome(trigger, WAIT_S)))
        trigger = system.trigger(next(sessions), rerun=False, requested_by="e2e-evolution-v1")
        result.v1_triggers.append((trigger, system.wait_for_outcome(trigger, WAIT_S)))
    return result


def test_registry_when_v2_adds_a_defaulted_field_then_registered_as_version_2(
    evolution: Evolution,
) -> None:
    registry = evolution.registry
    for subject, v2_id in evolution.v2_ids.items():
        assert v2_id != evolution.v1_ids[subject]
        assert registry.ok("GET", f"/subjects/{subject}/versions") == [1, 2]
        assert registry.version_id(subject, 2) == v2_id
        assert registry.ok("GET", f"/config/{subject}") == {"compatibilityLevel": "FULL"}
        check = registry.ok(
            "POST",
            f"/compatibility/subjects/{subject}/versions/1",
            {"schema": json.dumps(v2_schema(subject))},
        )
        assert check["is_compatible"] is True
        again = registry.register(subject, v2_schema(subject))  # idempotent
        assert again.json() == {"id": v2_id}


def _without(schema: dict[str, Any], name: str) -> dict[str, Any]:
    changed = copy.deepcopy(schema)
    changed["fields"] = [f for f in changed["fields"] if f["name"] != name]
    return changed


def _retyped(schema: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    changed = copy.deepcopy(schema)
    for f in changed["fields"]:
        if f["name"] == name:
            f["type"] = kind
    return changed


def test_registry_when_change_breaks_either_side_then_409_and_invalid_then_422(
    evolution: Evolution,
) -> None:
    registry = evolution.registry
    v2 = v2_schema(TRIGGERS)
    no_default = copy.deepcopy(v2)
    no_default["fields"].append({"name": "e2e_required", "type": "string"})
    incompatible = {
        "field added without a default": no_default,
        "required field removed": _without(v2, "requested_by"),
        "field type changed": _retyped(v2, "requested_by", "int"),
    }
    for what, schema in incompatible.items():
        check = registry.ok(
            "POST",
            f"/compatibility/subjects/{TRIGGERS}/versions/latest",
            {"schema": json.dumps(schema)},
        )
        assert check["is_compatible"] is False, what
        refused = registry.register(TRIGGERS, schema)
        assert refused.status_code == 409, (what, refused.text)
        assert refused.json()["error_code"] == 409, what
    for invalid in ('{"type": "record", "name": "Broken"}', "not json at all"):
        refused = registry.register(TRIGGERS, invalid)
        assert refused.status_code == 422, (invalid, refused.text)
        assert refused.json()["error_code"] == 42201, invalid
    assert registry.ok("GET", f"/subjects/{TRIGGERS}/versions") == [1, 2]
    assert registry.version_id(TRIGGERS, 2) == evolution.v2_ids[TRIGGERS]


def test_v1_services_when_trigger_written_with_v2_then_workflow_completes(
    evolution: Evolution,
) -> None:
    system = evolution.system
    for _trigger, outcome in evolution.v2_triggers:
        assert outcome.succeeded, outcome.event
    (written,) = evolution.records_of(WorkflowStarted.TOPIC, evolution.v2_triggers[:1])
    assert written.value is not None
    assert schema_id(written.value) == evolution.v2_ids[TRIGGERS]
    first, _ = evolution.v2_triggers[0]
    assert system.serde.deserialize(WorkflowStarted.TOPIC, written.value) == first
    signals = {
        record.event.causation_id: record.event
        for record in evolution.records(SignalGenerated.TOPIC)
        if record.event is not None
    }
    for trigger, _ in evolution.v2_triggers:
        assert signals[trigger.event_id].correlation_id == trigger.correlation_id
    for topic in EVENT_TOPICS:
        assert not system.records(dlq_topic(topic)), topic


def test_v1_writers_when_v2_registered_then_keep_writing_v1(evolution: Evolution) -> None:
    for _trigger, outcome in evolution.v1_triggers:
        assert outcome.succeeded, outcome.event
    workflows = evolution.v2_triggers + evolution.v1_triggers
    for topic in CHAIN:
        records = evolution.records_of(topic, workflows)
        assert len(records) == len(workflows), topic  # one per workflow and topic
        v1_id = evolution.v1_ids[subject_for(topic)]
        written_by_v1 = [r for r in records if not _is_v2_trigger(evolution, r)]
        assert written_by_v1, topic
        assert {schema_id(r.value or b"") for r in written_by_v1} == {v1_id}, topic


def _is_v2_trigger(evolution: Evolution, record: Record) -> bool:
    v2_ids = {str(trigger.correlation_id).encode() for trigger, _ in evolution.v2_triggers}
    return record.topic == WorkflowStarted.TOPIC and record.headers.get("correlation_id") in v2_ids


def test_v2_reader_when_reading_v1_records_then_added_field_takes_its_default(
    evolution: Evolution,
) -> None:
    client = SchemaRegistryClient({"url": evolution.registry.url})
    workflows = evolution.v2_triggers + evolution.v1_triggers
    for topic in CHAIN:
        reader = AvroDeserializer(client, json.dumps(v2_schema(subject_for(topic))))
        records = evolution.records_of(topic, workflows)
        assert len(records) == len(workflows), topic
        for record in records:
            decoded = reader(record.value, None)
            expected = SET if _is_v2_trigger(evolution, record) else DEFAULT
            assert decoded[ADDED] == expected, (topic, record.offset)
            assert str(decoded["correlation_id"]).encode() == record.headers["correlation_id"]
    # fastavro's own resolution, v1 writer -> v2 reader, agrees
    (trigger, _), *_ = evolution.v1_triggers
    (record,) = evolution.records_of(WorkflowStarted.TOPIC, evolution.v1_triggers[:1])
    assert record.value is not None
    decoded = fastavro.schemaless_reader(
        io.BytesIO(record.value[5:]),
        fastavro.parse_schema(v1_schema(TRIGGERS)),
        fastavro.parse_schema(v2_schema(TRIGGERS)),
    )
    assert decoded[ADDED] == DEFAULT
    assert decoded["requested_by"] == trigger.requested_by

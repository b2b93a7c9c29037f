"""Durability across restarts and crashes, and concurrent registration, on a private server."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from alchemiser_devtools.registry import RegistryServerProcess

pytestmark = pytest.mark.integration


def record(name: str, *fields: str) -> Schema:
    """An Avro record ``test.durable.<name>`` of optional string fields."""
    body = {
        "type": "record",
        "name": name,
        "namespace": "test.durable",
        "fields": [{"name": f, "type": ["null", "string"], "default": None} for f in fields],
    }
    return Schema(json.dumps(body), "AVRO")


def client_for(server: RegistryServerProcess) -> SchemaRegistryClient:
    """A new client, so nothing is answered from a previous client's cache."""
    return SchemaRegistryClient({"url": server.url})


def snapshot(client: SchemaRegistryClient) -> dict[str, Any]:
    """Everything a client can read back: subjects, versions, ids, schemas and levels."""
    state: dict[str, Any] = {"global": client.get_compatibility(), "subjects": {}}
    for subject in client.get_subjects():
        versions = []
        for number in client.get_versions(subject):
            found = client.get_version(subject, number)
            text = found.schema.schema_str
            versions.append((number, found.schema_id, json.loads(text or "null")))
        try:
            level: str | None = client.get_compatibility(subject)
        except SchemaRegistryError:
            level = None
        state["subjects"][subject] = {"versions": versions, "level": level}
    return state


def populate(client: SchemaRegistryClient) -> list[int]:
    client.set_compatibility(level="FULL_TRANSITIVE")
    client.set_compatibility("orders-value", "FORWARD")
    ids = [
        client.register_schema("orders-value", record("Order", "id")),
        client.register_schema("orders-value", record("Order", "id", "qty")),
        client.register_schema("fills-value", record("Fill", "id")),
        client.register_schema("copies-value", record("Order", "id")),
    ]
    client.delete_subject("fills-value")
    return ids


def test_restart_when_state_written_then_ids_versions_and_levels_unchanged(
    registry_server: RegistryServerProcess,
) -> None:
    ids = populate(client_for(registry_server))
    before = snapshot(client_for(registry_server))

    assert registry_server.stop() == 0  # SIGTERM is a clean exit
    registry_server.start()
    client = client_for(registry_server)

    assert snapshot(client) == before
    assert client.get_subjects(deleted=True) == ["copies-value", "fills-value", "orders-value"]
    assert client.get_compatibility("orders-value") == "FORWARD"
    assert before["global"] == "FULL_TRANSITIVE"
    for schema_id in ids:
        assert client.get_schema(schema_id).schema_str
    assert client.register_schema("orders-value", record("Order", "id", "qty")) == ids[1]
    assert client.register_schema("trades-value", record("Trade", "id")) == max(ids) + 1


def test_restart_when_killed_after_registration_then_registration_survives(
    registry_server: RegistryServerProcess,
) -> None:
    client = client_for(registry_server)
    first = client.register_schema("orders-value", record("Order", "id"))
    second = client.register_schema("orders-value", record("Order", "id", "note"))

    registry_server.kill()
    registry_server.start()
    client = client_for(registry_server)

    assert client.get_versions("orders-value") == [1, 2]
    assert client.get_latest_version("orders-value").schema_id == second
    assert client.lookup_schema("orders-value", record("Order", "id")).schema_id == first
    assert client.register_schema("other-value", record("Other", "x")) == second + 1


def test_register_when_many_clients_register_concurrently_then_ids_and_versions_consistent(
    registry_server: RegistryServerProcess,
) -> None:
    names = [f"Event{uuid.uuid4().hex}" for _ in range(24)]
    client_for(registry_server).set_compatibility("mixed-value", "NONE")

    def register_twice(name: str) -> tuple[int, int]:
        client = client_for(registry_server)
        return (
            client.register_schema("mixed-value", record(name, "id")),
            client.register_schema(f"{name}-value", record(name, "id")),
        )

    def register_shared(index: int) -> int:
        return client_for(registry_server).register_schema(
            f"shared-{index}-value", record("Shared", "id")
        )

    with ThreadPoolExecutor(max_workers=12) as pool:
        pairs = list(pool.map(register_twice, names))
        shared = list(pool.map(register_shared, range(24)))

    client = client_for(registry_server)
    mixed_ids = [mixed for mixed, _ in pairs]
    assert all(mixed == own for mixed, own in pairs)  # same schema, same id in any subject
    assert len(set(mixed_ids)) == len(names)
    assert client.get_versions("mixed-value") == list(range(1, len(names) + 1))
    versioned = {client.get_version("mixed-value", v).schema_id for v in range(1, len(names) + 1)}
    assert versioned == set(mixed_ids)
    assert len(set(shared)) == 1
    assert shared[0] not in mixed_ids

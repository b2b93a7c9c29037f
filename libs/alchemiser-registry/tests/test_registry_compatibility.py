"""Compatibility levels as enforced on registration, and their configuration.

Subject-level cases use the session registry; global-level cases use a private server
(``registry_server``) so they cannot disturb other tests.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from alchemiser_common.avro_compat import CompatibilityLevel
from alchemiser_devtools.registry import RegistryServerProcess

pytestmark = pytest.mark.integration

LEVELS = [level.value for level in CompatibilityLevel]


def record(*fields: dict[str, Any]) -> Schema:
    """An Avro record schema ``test.compat.Thing`` with ``fields``."""
    body = {"type": "record", "name": "Thing", "namespace": "test.compat", "fields": list(fields)}
    return Schema(json.dumps(body), "AVRO")


def field(name: str, kind: str = "int", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **extra}


def new_subject() -> str:
    return f"test-{uuid.uuid4().hex}-value"


def refused(call: Any) -> SchemaRegistryError:
    with pytest.raises(SchemaRegistryError) as caught:
        call()
    return caught.value


def subject_with(client: SchemaRegistryClient, level: str, *schemas: Schema) -> str:
    """A new subject at ``level`` holding ``schemas`` as versions 1, 2, ..."""
    subject = new_subject()
    client.set_compatibility(subject, level)
    for schema in schemas:
        client.register_schema(subject, schema)
    return subject


# BACKWARD_TRANSITIVE: v3 reads v2 data (b is written) but not v1 data (no b, no default).
V1 = record(field("a"))
V2 = record(field("a"), field("b", "string", default="x"))
V3_DROPS_A_AND_B_DEFAULT = record(field("b", "string"))


def test_register_when_backward_and_new_field_has_no_default_then_409(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()  # no subject level: the global default BACKWARD applies
    registry_client.register_schema(subject, V1)

    error = refused(
        lambda: registry_client.register_schema(subject, record(field("a"), field("c", "long")))
    )

    assert error.http_status_code == 409
    assert "version 1" in error.error_message
    assert "c" in error.error_message.split("field(s)", 1)[1]
    assert registry_client.get_versions(subject) == [1]


def test_register_when_backward_and_only_older_version_conflicts_then_accepted(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = subject_with(registry_client, "BACKWARD", V1, V2)

    registry_client.register_schema(subject, V3_DROPS_A_AND_B_DEFAULT)

    assert registry_client.get_versions(subject) == [1, 2, 3]


def test_register_when_backward_transitive_and_only_older_version_conflicts_then_409(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = subject_with(registry_client, "BACKWARD_TRANSITIVE", V1, V2)

    error = refused(lambda: registry_client.register_schema(subject, V3_DROPS_A_AND_B_DEFAULT))

    assert error.http_status_code == 409
    assert "version 1 (backward)" in error.error_message
    assert "version 2" not in error.error_message
    assert "field(s) b" in error.error_message
    assert registry_client.get_versions(subject) == [1, 2]


def test_register_when_forward_then_added_field_accepted_and_removed_field_refused(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = subject_with(registry_client, "FORWARD", record(field("a"), field("b")))

    registry_client.register_schema(subject, record(field("a"), field("b"), field("c")))
    error = refused(lambda: registry_client.register_schema(subject, record(field("a"))))

    assert error.http_status_code == 409
    assert "version 2 (forward)" in error.error_message
    assert registry_client.get_versions(subject) == [1, 2]


def test_register_when_forward_transitive_and_only_older_reader_needs_field_then_409(
    registry_client: SchemaRegistryClient,
) -> None:
    # v2 readers have a default for b, v1 readers have none: dropping b only breaks v1.
    older = record(field("a"), field("b", "string"))
    newer = record(field("a"), field("b", "string", default="x"))
    without_b = record(field("a"))
    forward = subject_with(registry_client, "FORWARD", older, newer)
    transitive = subject_with(registry_client, "FORWARD_TRANSITIVE", older, newer)

    registry_client.register_schema(forward, without_b)
    error = refused(lambda: registry_client.register_schema(transitive, without_b))

    assert error.http_status_code == 409
    assert "version 1 (forward)" in error.error_message
    assert registry_client.get_versions(forward) == [1, 2, 3]


def test_register_when_full_then_only_fields_with_defaults_may_change(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = subject_with(registry_client, "FULL", record(field("a"), field("b")))

    added_required = refused(
        lambda: registry_client.register_schema(subject, record(field("a"), field("b"), field("c")))
    )
    removed_required = refused(lambda: registry_client.register_schema(subject, record(field("a"))))
    registry_client.register_schema(subject, record(field("a"), field("b"), field("c", default=0)))

    assert (added_required.http_status_code, removed_required.http_status_code) == (409, 409)
    assert "(backward)" in added_required.error_message
    assert "(forward)" in removed_required.error_message
    assert registry_client.get_versions(subject) == [1, 2]


def test_register_when_full_transitive_and_only_older_version_conflicts_then_409(
    registry_client: SchemaRegistryClient,
) -> None:
    # v3 drops a: v2 readers default it, v1 readers cannot.
    older = record(field("a"))
    newer = record(field("a", default=0))
    replaced = record(field("c", "string", default=""))
    full = subject_with(registry_client, "FULL", older, newer)
    transitive = subject_with(registry_client, "FULL_TRANSITIVE", older, newer)

    registry_client.register_schema(full, replaced)
    error = refused(lambda: registry_client.register_schema(transitive, replaced))

    assert error.http_status_code == 409
    assert "version 1 (forward)" in error.error_message
    assert registry_client.get_versions(full) == [1, 2, 3]


def test_register_when_none_then_any_valid_schema_is_accepted(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = subject_with(registry_client, "NONE", record(field("a")))

    registry_client.register_schema(subject, record(field("z", "string")))
    registry_client.register_schema(subject, Schema('"string"', "AVRO"))

    assert registry_client.get_versions(subject) == [1, 2, 3]


@pytest.mark.parametrize("level", LEVELS)
def test_set_compatibility_when_subject_level_then_read_back(
    registry_client: SchemaRegistryClient, level: str
) -> None:
    subject = new_subject()

    answer: Any = registry_client.set_compatibility(subject, level)

    assert answer == {"compatibility": level}
    assert registry_client.get_compatibility(subject) == level


def test_get_compatibility_when_subject_has_no_level_then_40408_and_global_on_request(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()
    global_level = registry_client.get_compatibility()

    error = refused(lambda: registry_client.get_compatibility(subject))
    # The client has no defaultToGlobal parameter; its transport sends the query.
    fallback = registry_client._rest_client.get(f"config/{subject}", {"defaultToGlobal": True})

    assert (error.http_status_code, error.error_code) == (404, 40408)
    assert fallback == {"compatibilityLevel": global_level}


def test_delete_config_when_subject_level_removed_then_global_level_applies(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = subject_with(registry_client, "NONE", record(field("a")))
    registry_client.register_schema(subject, record(field("z")))  # allowed under NONE

    old = registry_client.delete_config(subject)
    error = refused(lambda: registry_client.register_schema(subject, record(field("y"))))

    assert old.compatibility_level is not None
    assert old.compatibility_level.value == "NONE"
    assert refused(lambda: registry_client.get_compatibility(subject)).error_code == 40408
    assert error.http_status_code == 409


def test_set_compatibility_when_level_is_invalid_then_422_with_42203(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()

    on_subject = refused(lambda: registry_client.set_compatibility(subject, "SOMETIMES"))
    on_global = refused(lambda: registry_client.set_compatibility(level="SOMETIMES"))

    assert (on_subject.http_status_code, on_subject.error_code) == (422, 42203)
    assert (on_global.http_status_code, on_global.error_code) == (422, 42203)


@pytest.mark.parametrize("level", LEVELS)
def test_set_compatibility_when_global_level_then_read_back_and_subjects_inherit(
    registry_server: RegistryServerProcess, level: str
) -> None:
    client = SchemaRegistryClient({"url": registry_server.url})
    assert client.get_compatibility() == "BACKWARD"

    answer: Any = client.set_compatibility(level=level)

    assert answer == {"compatibility": level}
    assert client.get_compatibility() == level
    fallback = client._rest_client.get("config/any-subject", {"defaultToGlobal": True})
    assert fallback == {"compatibilityLevel": level}


def test_register_when_global_level_none_and_subject_level_backward_then_subject_wins(
    registry_server: RegistryServerProcess,
) -> None:
    client = SchemaRegistryClient({"url": registry_server.url})
    client.set_compatibility(level="NONE")
    free, strict = new_subject(), subject_with(client, "BACKWARD")
    for subject in (free, strict):
        client.register_schema(subject, record(field("a")))

    client.register_schema(free, record(field("c", "long")))
    error = refused(lambda: client.register_schema(strict, record(field("c", "long"))))

    assert error.http_status_code == 409
    assert client.get_versions(free) == [1, 2]

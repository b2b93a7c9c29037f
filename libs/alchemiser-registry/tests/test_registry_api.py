"""The registry's REST API as confluent-kafka's SchemaRegistryClient sees it.

Runs against the session registry (``registry_url``): our server in a child process, or the
registry named by ``ALCHEMISER_TEST_REGISTRY_URL``. Every test uses its own subjects.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

pytestmark = pytest.mark.integration


def record(*fields: dict[str, Any], name: str = "Thing") -> Schema:
    """An Avro record schema with ``fields``, as the client sends it."""
    body = {"type": "record", "name": name, "namespace": "test.registry", "fields": list(fields)}
    return Schema(json.dumps(body), "AVRO")


def parsed(schema: Schema) -> Any:
    """The schema's JSON, to compare schemas whatever their formatting."""
    assert schema.schema_str is not None
    return json.loads(schema.schema_str)


def new_subject() -> str:
    return f"test-{uuid.uuid4().hex}-value"


def refused(call: Any) -> SchemaRegistryError:
    with pytest.raises(SchemaRegistryError) as caught:
        call()
    return caught.value


A = {"name": "a", "type": "int"}
B_DEFAULT = {"name": "b", "type": "string", "default": "x"}


def test_register_when_new_subject_then_version_one_is_readable_every_way(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()
    schema = record(A)

    schema_id = registry_client.register_schema(subject, schema)

    found = registry_client.lookup_schema(subject, schema)
    assert (found.subject, found.version, found.schema_id) == (subject, 1, schema_id)
    by_id = registry_client.get_schema(schema_id)
    assert parsed(by_id) == parsed(schema)
    assert registry_client.get_versions(subject) == [1]
    assert subject in registry_client.get_subjects()
    latest = registry_client.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (1, schema_id)
    pairs = registry_client.get_schema_versions(schema_id)
    assert (subject, 1) in [(pair.subject, pair.version) for pair in pairs]


def test_register_when_second_compatible_schema_then_version_two_is_latest(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()
    first = registry_client.register_schema(subject, record(A))

    second = registry_client.register_schema(subject, record(A, B_DEFAULT))

    assert second != first
    assert registry_client.get_versions(subject) == [1, 2]
    assert registry_client.get_version(subject, 1).schema_id == first
    assert registry_client.get_version(subject, 2).schema_id == second
    assert registry_client.get_latest_version(subject).version == 2
    assert registry_client.get_version(subject, -1).schema_id == second


def test_register_when_same_schema_differs_in_whitespace_and_key_order_then_same_id(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()
    compact = '{"type":"record","name":"Thing","fields":[{"name":"a","type":"int"}]}'
    spaced = (
        '{ "fields" : [ { "type" : "int", "name" : "a" } ],\n'
        '  "name" : "Thing", "type" : "record" }'
    )

    first = registry_client.register_schema(subject, Schema(compact, "AVRO"))
    again = registry_client.register_schema(subject, Schema(spaced, "AVRO"))

    assert again == first
    assert registry_client.get_versions(subject) == [1]
    assert registry_client.lookup_schema(subject, Schema(spaced, "AVRO")).schema_id == first


def test_register_when_same_schema_under_another_subject_then_id_is_global(
    registry_client: SchemaRegistryClient,
) -> None:
    one, other = new_subject(), new_subject()
    name = f"Shared{uuid.uuid4().hex}"  # a schema no other test registered
    schema = record(A, name=name)

    first = registry_client.register_schema(one, schema)
    shared = registry_client.register_schema(other, schema)
    different = registry_client.register_schema(other, record(A, B_DEFAULT, name=name))

    assert shared == first
    assert different not in (first, shared)
    assert different > first
    assert registry_client.get_version(other, 1).schema_id == first
    usages = {(pair.subject, pair.version) for pair in registry_client.get_schema_versions(first)}
    assert {(one, 1), (other, 1)} <= usages


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "record", "name": "Broken", "fields": [',
        '{"type": "record", "name": "NoFields"}',
        '{"type": "record", "name": "T", "fields": [{"name": "a", "type": "no.such.Type"}]}',
        '{"type": "mystery"}',
        "not json at all",
    ],
)
def test_register_when_schema_is_invalid_then_422_with_42201(
    registry_client: SchemaRegistryClient, text: str
) -> None:
    subject = new_subject()

    error = refused(lambda: registry_client.register_schema(subject, Schema(text, "AVRO")))

    assert (error.http_status_code, error.error_code) == (422, 42201)
    assert subject not in registry_client.get_subjects()


def test_register_when_schema_type_is_not_avro_then_422_with_42201(
    registry_client: SchemaRegistryClient,
) -> None:
    json_schema = Schema('{"type": "object"}', "JSON")

    error = refused(lambda: registry_client.register_schema(new_subject(), json_schema))

    assert (error.http_status_code, error.error_code) == (422, 42201)


def test_register_when_schema_has_references_then_422_with_42201(
    registry_client: SchemaRegistryClient,
) -> None:
    reference = SchemaReference("test.registry.Other", new_subject(), 1)
    schema = Schema(record(A).schema_str, "AVRO", references=[reference])

    error = refused(lambda: registry_client.register_schema(new_subject(), schema))

    assert (error.http_status_code, error.error_code) == (422, 42201)


def test_read_when_subject_version_or_id_is_unknown_then_40401_40402_40403(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()
    schema_id = registry_client.register_schema(subject, record(A))
    missing = new_subject()

    codes = [
        refused(lambda: registry_client.get_versions(missing)).error_code,
        refused(lambda: registry_client.get_latest_version(missing)).error_code,
        refused(lambda: registry_client.get_version(missing, 1)).error_code,
        refused(lambda: registry_client.lookup_schema(missing, record(A))).error_code,
        refused(lambda: registry_client.get_version(subject, 2)).error_code,
        refused(lambda: registry_client.lookup_schema(subject, record(A, B_DEFAULT))).error_code,
        refused(lambda: registry_client.get_schema(schema_id + 1_000_000)).error_code,
    ]

    assert codes == [40401, 40401, 40401, 40401, 40402, 40403, 40403]


def test_read_when_version_is_not_a_version_then_422_with_42202(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()
    registry_client.register_schema(subject, record(A))

    error = refused(lambda: registry_client.get_version(subject, 0))

    assert (error.http_status_code, error.error_code) == (422, 42202)


def test_request_when_route_is_unknown_then_json_error_body_with_404(
    registry_client: SchemaRegistryClient,
) -> None:
    # The client reads error_code from the body; -1 would mean the body was not our JSON.
    error = refused(lambda: registry_client.get_mode(new_subject()))

    assert (error.http_status_code, error.error_code) == (404, 404)


def test_test_compatibility_when_candidate_breaks_only_older_version_then_per_version_answers(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()
    registry_client.register_schema(subject, record(A))
    registry_client.register_schema(subject, record(A, B_DEFAULT))
    # Reads v2 data (b is there) but not v1 data (b is missing and has no default).
    candidate = record({"name": "b", "type": "string"})

    against_v1 = registry_client.test_compatibility(subject, candidate, version=1)
    against_v2 = registry_client.test_compatibility(subject, candidate, version=2)
    against_latest = registry_client.test_compatibility(subject, candidate)
    all_under_backward = registry_client.test_compatibility_all_versions(subject, candidate)
    registry_client.set_compatibility(subject, "BACKWARD_TRANSITIVE")
    all_under_transitive = registry_client.test_compatibility_all_versions(subject, candidate)

    assert (against_v1, against_v2, against_latest) == (False, True, True)
    assert (all_under_backward, all_under_transitive) == (True, False)


def test_test_compatibility_when_verbose_then_messages_name_version_and_field(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()
    registry_client.register_schema(subject, record(A))
    candidate = record(A, {"name": "c", "type": "long"})
    path = f"compatibility/subjects/{subject}/versions/latest?verbose=true"

    # The client's test_compatibility returns only the boolean; its transport shows the body.
    answer = registry_client._rest_client.post(path, body=candidate.to_dict())

    assert answer["is_compatible"] is False
    assert any(
        "version 1" in message and "field(s) c " in message for message in answer["messages"]
    )


def test_test_compatibility_when_version_or_subject_missing_then_40402_or_40401(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()
    registry_client.register_schema(subject, record(A))

    missing_version = refused(lambda: registry_client.test_compatibility(subject, record(A), 7))
    missing_subject = refused(
        lambda: registry_client.test_compatibility(new_subject(), record(A), 1)
    )

    assert (missing_version.error_code, missing_subject.error_code) == (40402, 40401)
    assert registry_client.test_compatibility_all_versions(new_subject(), record(A)) is True


def test_delete_subject_when_soft_then_hidden_and_ids_still_resolve(
    registry_client: SchemaRegistryClient, registry_url: str
) -> None:
    subject = new_subject()
    first = registry_client.register_schema(subject, record(A))
    registry_client.register_schema(subject, record(A, B_DEFAULT))

    deleted = registry_client.delete_subject(subject)

    assert deleted == [1, 2]
    assert subject not in registry_client.get_subjects()
    assert subject in registry_client.get_subjects(deleted=True)
    assert refused(lambda: registry_client.get_versions(subject)).error_code == 40401
    assert SchemaRegistryClient({"url": registry_url}).get_schema(first).schema_str
    assert refused(lambda: registry_client.delete_subject(subject)).error_code == 40404
    assert registry_client.register_schema(subject, record(A)) == first


def test_delete_subject_when_permanent_then_only_after_soft_delete(
    registry_client: SchemaRegistryClient,
) -> None:
    subject = new_subject()
    registry_client.register_schema(subject, record(A))

    not_soft_deleted = refused(lambda: registry_client.delete_subject(subject, permanent=True))
    registry_client.delete_subject(subject)
    purged = registry_client.delete_subject(subject, permanent=True)

    assert not_soft_deleted.error_code == 40405
    assert purged == [1]
    assert subject not in registry_client.get_subjects(deleted=True)
    assert refused(lambda: registry_client.delete_subject(subject)).error_code == 40401


def test_delete_version_when_latest_deleted_then_previous_is_latest(
    registry_client: SchemaRegistryClient, registry_url: str
) -> None:
    subject = new_subject()
    first = registry_client.register_schema(subject, record(A))
    registry_client.register_schema(subject, record(A, B_DEFAULT))

    assert registry_client.delete_version(subject, 2) == 2

    assert registry_client.get_versions(subject) == [1]
    fresh = SchemaRegistryClient({"url": registry_url})
    assert fresh.get_latest_version(subject).schema_id == first
    assert refused(lambda: registry_client.delete_version(subject, 2)).error_code == 40406

"""Poison records go to the dead-letter topic with a reason; the partition keeps moving."""

from __future__ import annotations

import io
import struct
import uuid

import fastavro
import pytest

from alchemiser_common.events import SignalGenerated, WorkflowStarted, to_avro_dict
from alchemiser_common.schemas import SchemaCatalog
from alchemiser_common.topics import dlq_topic
from alchemiser_devtools.harness import STAGE_ONE, Pipeline, iter_dlq
from alchemiser_devtools.pipeline import REJECTED_REQUESTER

pytestmark = pytest.mark.integration


def _avro_with_empty_account(pipeline: Pipeline, event: WorkflowStarted) -> bytes:
    """Schema-valid Avro (right schema id) whose values break the model: empty account id."""
    framing = pipeline.serde.serialize(event)[:5]
    record = to_avro_dict(event) | {"account_id": ""}
    schema = fastavro.parse_schema(SchemaCatalog.discover().load(WorkflowStarted.TOPIC + "-value"))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    return framing + body.getvalue()


def test_stage_when_poison_records_then_dead_lettered_with_reason_and_good_ones_handled(
    pipeline: Pipeline,
) -> None:
    stage = pipeline.start(STAGE_ONE, "one")
    serde = pipeline.serde
    good_before = pipeline.trigger()
    valid = serde.serialize(pipeline.trigger())
    conflicting = good_before.model_copy(update={"event_id": uuid.uuid4(), "requested_by": "other"})
    poison = {
        "undecodable": valid[:5] + b"\xff\xff\xff\xff not an avro body",
        "bad_magic_byte": b"\x07" + valid[1:],
        "unknown_schema": b"\x00" + struct.pack(">I", 424_242) + valid[5:],
        "invalid_event": _avro_with_empty_account(pipeline, pipeline.trigger()),
        "handler_rejected": serde.serialize(pipeline.trigger(requested_by=REJECTED_REQUESTER)),
        "conflict": serde.serialize(conflicting),
    }
    good_after = [pipeline.trigger() for _ in range(3)]
    pipeline.produce_raw(
        WorkflowStarted.TOPIC,
        [serde.serialize(good_before), *poison.values(), *(serde.serialize(g) for g in good_after)],
        key=good_before.account_id.encode(),
    )
    wanted = {str(t.correlation_id) for t in [good_before, *good_after]}
    pipeline.wait_for(
        lambda: wanted <= set(pipeline.outputs_by_correlation(SignalGenerated.TOPIC)),
        "the good records behind the poison",
    )
    pipeline.wait_for(
        lambda: len(pipeline.read_all(dlq_topic(WorkflowStarted.TOPIC))) >= len(poison),
        "every poison record in the DLQ",
    )

    dead = pipeline.read_all(dlq_topic(WorkflowStarted.TOPIC))
    headers = list(iter_dlq(dead))
    assert sorted(h["dlq.reason"] for h in headers) == sorted(poison)
    for record, header in zip(dead, headers, strict=True):
        assert record.value() == poison[header["dlq.reason"]]  # the original bytes, unchanged
        assert header["dlq.original_topic"] == WorkflowStarted.TOPIC
        assert header["dlq.original_partition"] == "0"
        assert int(header["dlq.original_offset"]) in range(1, 1 + len(poison))
        assert header["dlq.consumer"] == stage.name
        assert header["dlq.error_class"]
    assert pipeline.effects("one").keys() >= wanted
    pipeline.wait_for(
        lambda: pipeline.committed_offset("one", WorkflowStarted.TOPIC) == 1 + len(poison) + 3,
        "the group offset past every record",
    )
    assert stage.metric("dlq_messages_total", topic=WorkflowStarted.TOPIC, reason="conflict") == 1
    assert stage.metric("dedupe_conflicts_total", event_type="WorkflowStarted") == 1


def test_stage_when_poison_replayed_then_dead_letters_not_repeated_and_bad_keys_refused(
    pipeline: Pipeline,
) -> None:
    stage = pipeline.start(STAGE_ONE, "one")
    serde = pipeline.serde
    good = pipeline.trigger()
    account = good.account_id.encode()
    pipeline.produce_raw(WorkflowStarted.TOPIC, [serde.serialize(good)], key=account)
    pipeline.produce_raw(WorkflowStarted.TOPIC, [b"\x00\x00 garbage"], key=account)
    unkeyed, miskeyed = pipeline.trigger(), pipeline.trigger()
    pipeline.produce_raw(WorkflowStarted.TOPIC, [serde.serialize(unkeyed)], key=b"")
    pipeline.produce_raw(WorkflowStarted.TOPIC, [serde.serialize(miskeyed)], key=b"SOMEONE-ELSE")
    dlq = dlq_topic(WorkflowStarted.TOPIC)
    pipeline.wait_for(lambda: len(pipeline.read_all(dlq)) == 3, "three dead letters")
    reasons = sorted(h["dlq.reason"] for h in iter_dlq(pipeline.read_all(dlq)))
    assert reasons == ["bad_key", "bad_key", "unknown_schema"]
    effects = pipeline.effects("one")
    assert str(good.correlation_id) in effects
    assert not {str(unkeyed.correlation_id), str(miskeyed.correlation_id)} & set(effects)
    assert stage.terminate(timeout=30) == 0

    pipeline.replay_from("one", WorkflowStarted.TOPIC, 0)  # the whole topic again
    replayed = pipeline.start(STAGE_ONE, "one")
    sentinel = pipeline.trigger()
    pipeline.produce([sentinel])
    pipeline.wait_for(
        lambda: (
            str(sentinel.correlation_id) in pipeline.outputs_by_correlation(SignalGenerated.TOPIC)
        ),
        "the sentinel behind the replayed records",
    )
    assert len(pipeline.read_all(dlq)) == 3  # no second dead letter for the same records
    assert len(pipeline.read_all(SignalGenerated.TOPIC)) == 2  # good + sentinel, once each
    assert replayed.metric("dlq_messages_total", topic=WorkflowStarted.TOPIC) == 0

"""Redriven dead letters and replayed records meet a running stage: one effect per workflow.

A real runtime process (``alchemiser_devtools.pipeline``'s stage one, PostgreSQL inbox) consumes
``workflow.started.v1``. Redriving re-produces the dead letters' original bytes: a record the
stage already handled is a duplicate (no second effect), one never handled is handled now, one
still invalid is dead-lettered again. Replaying the topic changes no effect either.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from alchemiser_common.cli import build_app
from alchemiser_common.errors import DeadLetterReason
from alchemiser_common.events import SignalGenerated, WorkflowStarted
from alchemiser_common.runtime.dlq import dead_letter
from alchemiser_common.topics import dlq_topic
from alchemiser_devtools.harness import STAGE_ONE, Pipeline, distinct_ids, iter_dlq
from alchemiser_devtools.pipeline import REJECTED_REQUESTER

pytestmark = pytest.mark.integration

DLQ = dlq_topic(WorkflowStarted.TOPIC)


def _cli(pipeline: Pipeline, *args: str) -> Any:
    env = {
        "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": pipeline.bootstrap,
        "ALCHEMISER_REGISTRY__URL": pipeline.registry_url,
    }
    result = CliRunner().invoke(build_app(), list(args), env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _consumed(pipeline: Pipeline, count: int) -> None:
    pipeline.wait_for(
        lambda: pipeline.committed_offset("one", WorkflowStarted.TOPIC) == count,
        f"stage one past {count} trigger record(s)",
    )


def test_redrive_and_replay_when_stage_running_then_each_workflow_has_one_effect(
    pipeline: Pipeline,
) -> None:
    pipeline.start(STAGE_ONE, "one")
    good, rejected, late = (
        pipeline.trigger(),
        pipeline.trigger(requested_by=REJECTED_REQUESTER),
        pipeline.trigger(),
    )
    pipeline.produce([good, rejected])
    _consumed(pipeline, 2)
    serde = pipeline.serde
    producer = Producer({"bootstrap.servers": pipeline.bootstrap})
    for event in (good, late):  # as if a transient handler failure had dead-lettered them
        record = dead_letter(
            topic=WorkflowStarted.TOPIC,
            partition=0,
            offset=99,
            key=event.account_id.encode(),
            value=serde.serialize(event),
            headers=[],
            reason=DeadLetterReason.HANDLER_ERROR,
            error="database unavailable",
            consumer="stage-one",
        )
        producer.produce(record.topic, record.value, record.key, headers=list(record.headers))
    assert producer.flush(10) == 0

    redriven = _cli(pipeline, "dlq", "redrive", DLQ, "--all", "--yes", "--json")

    assert sorted(row["reason"] for row in redriven) == [
        "handler_error",
        "handler_error",
        "handler_rejected",
    ]
    assert {row["topic"] for row in redriven} == {WorkflowStarted.TOPIC}
    _consumed(pipeline, 5)
    effects = pipeline.effects("one")
    assert effects[str(good.correlation_id)] == 1  # handled before: a duplicate now
    assert effects[str(late.correlation_id)] == 1  # never handled: handled now
    assert str(rejected.correlation_id) not in effects  # still invalid: dead again
    dead = list(iter_dlq(pipeline.read_all(DLQ)))
    assert [header["dlq.reason"] for header in dead] == [
        "handler_rejected",
        "handler_error",
        "handler_error",
        "handler_rejected",
    ]

    replayed = _cli(
        pipeline, "replay", "--topic", WorkflowStarted.TOPIC, "--from", "0", "--yes", "--json"
    )

    assert replayed["records"] == 5  # good, rejected and the three redriven copies
    _consumed(pipeline, 10)
    assert pipeline.effects("one") == effects
    signals = distinct_ids(pipeline.read_all(SignalGenerated.TOPIC))
    assert len(signals) == 2  # good and late: one signal event each, one value each
    assert all(len(values) == 1 for values in signals.values())

"""``alchemiser dlq list|show|redrive`` and ``alchemiser replay`` against a real broker, and the
one-line errors of every reading command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from alchemiser_common.errors import DeadLetterReason
from alchemiser_common.events import WorkflowStarted
from alchemiser_common.runtime.dlq import dead_letter
from alchemiser_common.topics import dlq_topic
from alchemiser_common.workflow import build_trigger
from alchemiser_devtools.embedded import free_port

pytestmark = pytest.mark.integration

STARTED_DLQ = dlq_topic(WorkflowStarted.TOPIC)


def _read(bootstrap: str, topic: str, partition: int, start: int, count: int) -> list[Any]:
    """``count`` records of one partition from ``start``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        records: list[Any] = []
        for _ in range(100):
            records.extend(r for r in consumer.consume(count, timeout=0.2) if r.error() is None)
            if len(records) >= count:
                return records[:count]
        raise AssertionError(f"only {len(records)} of {count} records on {topic}[{partition}]")
    finally:
        consumer.close()


@pytest.fixture
def dead(cluster: Any, account: str) -> Iterator[tuple[WorkflowStarted, Any, bytes]]:
    """A valid trigger dead-lettered on workflow.started.v1.dlq: (event, position, value)."""
    trigger = build_trigger(account, requested_by="dlq-test", rerun=True)
    value = cluster.serde.serialize(trigger)
    record = dead_letter(
        topic=WorkflowStarted.TOPIC,
        partition=0,
        offset=41,
        key=account.encode(),
        value=value,
        headers=[
            ("event_type", b"WorkflowStarted"),
            ("correlation_id", str(trigger.correlation_id).encode()),
        ],
        reason=DeadLetterReason.HANDLER_ERROR,
        error=RuntimeError("database was down"),
        consumer="strategy",
    )
    position = cluster.produce_raw(record.topic, record.value, record.key, record.headers)
    yield trigger, position, value


def test_dlq_list_and_show_when_dead_letter_then_reason_error_class_and_origin(
    cluster: Any, run: Any, dead: Any
) -> None:
    trigger, position, _value = dead

    listed = run("dlq", "list", "--topic", WorkflowStarted.TOPIC, "--json")
    shown = run("dlq", "show", STARTED_DLQ, str(position.offset), "-p", "0", "--json")
    table = run("dlq", "list", "--topic", STARTED_DLQ)

    assert listed.exit_code == 0, listed.output
    (row,) = (r for r in json.loads(listed.stdout) if r["offset"] == position.offset)
    assert row["topic"] == STARTED_DLQ
    assert row["reason"] == "handler_error" and row["error_class"] == "RuntimeError"
    assert (row["original_topic"], row["original_partition"], row["original_offset"]) == (
        WorkflowStarted.TOPIC,
        0,
        41,
    )
    assert row["correlation_id"] == str(trigger.correlation_id)
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["event"]["requested_by"] == "dlq-test"  # decoded with the original's schema
    assert document["headers"]["dlq.error_message"] == "database was down"
    assert document["dead_letter"]["consumer"] == "strategy"
    assert table.exit_code == 0, table.output
    assert f"{STARTED_DLQ}:" in table.stdout and "handler_error" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80


def test_dlq_redrive_when_offset_given_then_original_bytes_and_key_on_original_topic(
    cluster: Any, run: Any, dead: Any, account: str
) -> None:
    trigger, position, value = dead

    result = run(
        "dlq",
        "redrive",
        STARTED_DLQ,
        "--offset",
        str(position.offset),
        "-p",
        "0",
        "--yes",
        "--json",
    )

    assert result.exit_code == 0, result.output
    (redriven,) = json.loads(result.stdout)
    assert redriven["dead_letter"] == f"{STARTED_DLQ}[0]@{position.offset}"
    assert redriven["reason"] == "handler_error"
    assert (redriven["topic"], redriven["partition"]) == (WorkflowStarted.TOPIC, 0)
    (record,) = _read(cluster.bootstrap, WorkflowStarted.TOPIC, 0, redriven["offset"], 1)
    assert record.value() == value  # the event bytes, unchanged: the inbox dedupes them
    assert record.key() == account.encode()
    headers = dict(record.headers())
    assert headers["redrive.source"] == f"{STARTED_DLQ}:0:{position.offset}".encode()
    assert headers["correlation_id"] == str(trigger.correlation_id).encode()
    assert not [name for name in headers if name.startswith("dlq.")]


def test_dlq_redrive_when_not_confirmed_or_nothing_chosen_then_nothing_produced(
    cluster: Any, run: Any, dead: Any
) -> None:
    _trigger, position, _value = dead

    declined = run(
        "dlq", "redrive", STARTED_DLQ, "-o", str(position.offset), "-p", "0", input="n\n"
    )
    unchosen = run("dlq", "redrive", STARTED_DLQ)
    missing = run("dlq", "redrive", STARTED_DLQ, "-o", "999999", "--yes")

    assert declined.exit_code == 1 and "nothing redriven" in declined.stderr
    assert unchosen.exit_code == 2
    assert (
        unchosen.stderr.strip() == "error: say which dead letters: --offset O (repeatable) or --all"
    )
    assert missing.exit_code == 2
    assert missing.stderr.startswith(f"error: no dead letter at offset 999999 of {STARTED_DLQ}")


def test_replay_when_range_given_then_records_reproduced_in_order_on_the_same_partition(
    cluster: Any, run: Any, kafka_topic_factory: Any
) -> None:
    topic = kafka_topic_factory("replay", partitions=2)
    values = [f"record-{n}".encode() for n in range(5)]
    for value in values:
        cluster.produce_raw(topic, value, b"acct", [("event_id", value)], partition=0)
    cluster.produce_raw(topic, b"other", b"acct", partition=1)

    result = run(
        "replay", "--topic", topic, "--from", "1", "--to", "3", "-p", "0", "--yes", "--json"
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records"] == 3
    assert summary["partitions"] == [
        {"partition": 0, "records": 3, "from": 1, "to": 3, "new_from": 5, "new_to": 7}
    ]
    copies = _read(cluster.bootstrap, topic, 0, 5, 3)
    assert [record.value() for record in copies] == values[1:4]
    assert [dict(record.headers())["event_id"] for record in copies] == values[1:4]
    assert [dict(record.headers())["replay.source"] for record in copies] == [
        f"{topic}:0:{n}".encode() for n in (1, 2, 3)
    ]
    assert {record.key() for record in copies} == {b"acct"}

    everything = run("replay", "--topic", topic, "--from", "0", "--yes")
    assert everything.exit_code == 0, everything.output
    assert "replayed" in everything.stdout and "9 record(s) replayed" in everything.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "50", "-p", "0"], "--from 50 is past the end of {topic}[0]"),
        (["--from", "3", "--to", "1"], "--to 1 is before --from 3"),
        (["--from", "0", "--to", "9", "-p", "0"], "--to 9 is past the end of {topic}[0]"),
        (["--from", "0", "-p", "4"], "{topic} has partitions 0..0; there is no partition 4"),
    ],
)
def test_replay_when_offsets_bad_then_one_line_and_exit_2(
    cluster: Any, run: Any, kafka_topic_factory: Any, args: list[str], message: str
) -> None:
    topic = kafka_topic_factory("replay")
    cluster.produce_raw(topic, b"only", b"acct")

    result = run("replay", "--topic", topic, *args, "--yes")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: " + message.format(topic=topic)), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["workflow", "list"],
        ["workflow", "show", str(uuid.uuid4())],
        ["tail"],
        ["dlq", "list"],
        ["dlq", "redrive", STARTED_DLQ, "--all", "--yes"],
        ["replay", "--topic", WorkflowStarted.TOPIC, "--from", "0", "--yes"],
    ],
)
def test_command_when_broker_unreachable_then_one_line_naming_it_and_exit_2(
    run: Any, args: list[str]
) -> None:
    servers = f"127.0.0.1:{free_port()}"

    result = run(*args, "--bootstrap-servers", servers, "--timeout", "1")

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: no Kafka broker answered at {servers} within 1 s")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_command_when_broker_unreachable_in_a_real_process_then_librdkafka_stays_quiet(
    cluster: Any,
) -> None:
    servers = f"127.0.0.1:{free_port()}"
    completed = subprocess.run(
        [sys.executable, "-m", "alchemiser_common.cli", "dlq", "list", "--timeout", "2"],
        env={**os.environ, **cluster.env, "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": servers},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 2
    (line,) = completed.stderr.splitlines()  # nothing from librdkafka, no traceback
    assert line.startswith(f"error: no Kafka broker answered at {servers} within 2 s")
    assert line.endswith("check ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS or --bootstrap-servers")


def test_workflow_list_when_registry_unreachable_then_one_line_naming_it_and_exit_2(
    cluster: Any, run: Any, account: str
) -> None:
    cluster.produce([build_trigger(account, requested_by="registry-test", rerun=True)])
    registry = f"http://127.0.0.1:{free_port()}"

    result = run("workflow", "list", "--registry", registry, "--timeout", "2")

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: no schema registry answered at {registry}")
    assert len(result.stderr.strip().splitlines()) == 1

"""The workflow trigger: publishes WorkflowStarted and waits for the workflow's outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date

import pytest

from alchemiser_common.events import WorkflowCompleted, WorkflowStarted
from alchemiser_common.events.samples import sample_workflow_completed
from alchemiser_common.kafka.clients import KafkaProducer
from alchemiser_common.schemas import SchemaCatalog
from alchemiser_common.schemas.register import register_all
from alchemiser_common.serde import EventSerde
from alchemiser_common.settings import KafkaSettings
from alchemiser_common.topics import create_topics
from alchemiser_common.workflow import (
    WorkflowTimeoutError,
    build_trigger,
    publish,
    session_workflow_id,
    wait_for_outcome,
)
from alchemiser_devtools.embedded import EmbeddedBroker
from alchemiser_devtools.harness import Pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    register_all(registry_url, SchemaCatalog.discover())
    with EmbeddedBroker(log_dir=tmp_path_factory.mktemp("broker")) as running:
        create_topics(
            {"bootstrap.servers": running.bootstrap_servers}, partitions=1, replication_factor=1
        )
        yield running.bootstrap_servers


def _kafka(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap, fetch_wait_max_ms=10)


def test_publish_when_trigger_built_then_on_topic_as_root_event(
    broker: str, registry_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    serde = EventSerde.from_url(registry_url)
    trigger = build_trigger("ACCT1", requested_by="test", as_of=date(2018, 6, 15))
    publish(trigger, _kafka(broker), serde)
    harness = Pipeline(broker, registry_url, "unused", tmp_path_factory.mktemp("h"))
    (record,) = harness.read_all(WorkflowStarted.TOPIC)
    event = serde.deserialize(WorkflowStarted.TOPIC, record.value())
    assert event == trigger
    assert event.causation_id is None
    assert record.key() == b"ACCT1"


def test_wait_when_workflow_completes_then_outcome_returned(broker: str, registry_url: str) -> None:
    serde = EventSerde.from_url(registry_url)
    trigger = build_trigger("ACCT1", requested_by="test")
    completed = sample_workflow_completed(trigger)

    def finish_later() -> None:
        producer = KafkaProducer(_kafka(broker))
        producer.produce(
            completed.TOPIC,
            value=serde.serialize(completed),
            key=b"ACCT1",
            headers=[("correlation_id", str(trigger.correlation_id).encode())],
        )
        producer.flush(10)

    timer = threading.Timer(4.0, finish_later)  # after the waiter joined its group
    timer.start()
    outcome = wait_for_outcome(trigger.correlation_id, _kafka(broker), serde, timeout_s=30)
    timer.join()
    assert outcome.succeeded
    assert isinstance(outcome.event, WorkflowCompleted)
    assert outcome.event.correlation_id == trigger.correlation_id


def test_wait_when_outcome_published_before_the_wait_then_outcome_returned(
    broker: str, registry_url: str
) -> None:
    # a repeated trigger of a session whose workflow already finished: the outcome is old news
    serde = EventSerde.from_url(registry_url)
    trigger = build_trigger("ACCT1", requested_by="test", as_of=date(2018, 6, 15))
    completed = sample_workflow_completed(trigger)
    producer = KafkaProducer(_kafka(broker))
    producer.produce(
        completed.TOPIC,
        value=serde.serialize(completed),
        key=b"ACCT1",
        headers=[("correlation_id", str(trigger.correlation_id).encode())],
    )
    assert producer.flush(10) == 0

    outcome = wait_for_outcome(trigger.correlation_id, _kafka(broker), serde, timeout_s=30)

    assert outcome.succeeded
    assert outcome.event == completed


def test_wait_when_nothing_happens_then_times_out(broker: str, registry_url: str) -> None:
    serde = EventSerde.from_url(registry_url)
    trigger = build_trigger("ACCT1", requested_by="test")
    with pytest.raises(WorkflowTimeoutError, match="did not finish"):
        wait_for_outcome(trigger.correlation_id, _kafka(broker), serde, timeout_s=2)


def test_cli_start_when_as_of_invalid_then_exit_2() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alchemiser_common.cli",
            "workflow",
            "start",
            "--account",
            "A",
            "--as-of",
            "2018-13-45",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
        check=False,
    )
    assert result.returncode == 2
    assert "error:" in result.stderr


def test_cli_start_when_broker_up_then_prints_started(broker: str, registry_url: str) -> None:
    env = {
        **os.environ,
        "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": broker,
        "ALCHEMISER_REGISTRY__URL": registry_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "alchemiser_common.cli", "workflow", "start", "--account", "A"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("workflow ")
    assert result.stdout.strip().endswith("started")


def test_cli_start_when_same_session_twice_then_one_workflow_and_rerun_another(
    broker: str, registry_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {
        **os.environ,
        "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": broker,
        "ALCHEMISER_REGISTRY__URL": registry_url,
    }
    command = [sys.executable, "-m", "alchemiser_common.cli", "workflow", "start"]
    session = ["--account", "A", "--as-of", "2018-06-15", "--json"]

    def run(*extra: str) -> dict[str, object]:
        result = subprocess.run(
            [*command, *session, *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        document: dict[str, object] = json.loads(result.stdout)
        return document

    first, second, rerun = run(), run(), run("--rerun")

    assert first == second
    assert first["workflow_id"] == str(session_workflow_id("A", date(2018, 6, 15)))
    assert rerun["rerun"] is True
    assert rerun["workflow_id"] != first["workflow_id"]
    harness = Pipeline(broker, registry_url, "unused", tmp_path_factory.mktemp("h"))
    records = harness.read_all(WorkflowStarted.TOPIC)
    assert len(records) == 3
    assert records[0].value() == records[1].value()  # the same event, byte for byte
    assert records[2].value() != records[0].value()

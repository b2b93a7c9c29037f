"""The workflow trigger: publishes WorkflowStarted and waits for the workflow's outcome."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from alchemiser_common.events import (
    Event,
    FailureStep,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from alchemiser_common.events.samples import sample_workflow_completed, sample_workflow_failed
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
    timeout_event_id,
    wait_for_outcome,
    workflow_state,
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


# -- the command against the embedded broker and registry ------------------------------------

_SESSION = date(2018, 6, 15)
_COMMAND = [sys.executable, "-m", "alchemiser_common.cli", "workflow", "start"]


def _env(bootstrap: str, registry_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "ALCHEMISER_REGISTRY__URL": registry_url,
    }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_COMMAND, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def _one_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """stdout is exactly one JSON document (json.loads refuses a second one)."""
    document: dict[str, Any] = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def _produce(bootstrap: str, serde: EventSerde, event: Event) -> None:
    producer = KafkaProducer(_kafka(bootstrap))
    producer.produce(
        event.TOPIC,
        value=serde.serialize(event),
        key=event.account_id.encode(),
        headers=[("correlation_id", str(event.correlation_id).encode())],
    )
    assert producer.flush(10) == 0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_cli_start_when_same_session_twice_then_running_one_refused_and_rerun_another(
    broker: str, registry_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = _env(broker, registry_url)
    session = ["--account", "A", "--as-of", "2018-06-15", "--json"]
    serde = EventSerde.from_url(registry_url)
    harness = Pipeline(broker, registry_url, "unused", tmp_path_factory.mktemp("h"))

    first = _cli(env, *session)
    refused = _cli(env, *session)
    assert first.returncode == 0, first.stderr
    started = _one_json(first)
    assert started["status"] == "started"
    assert started["workflow_id"] == str(session_workflow_id("A", _SESSION))
    # the workflow has no outcome yet: running, not triggered a second time
    assert refused.returncode == 1, refused.stderr
    assert _one_json(refused)["status"] == "running"
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"workflow {started['workflow_id']} is already running (started ")
    assert line.endswith("use --wait to follow it or --rerun for a second run")
    assert len(harness.read_all(WorkflowStarted.TOPIC)) == 1

    # once it finished, the same session's trigger is the same event again (deduplicated)
    trigger = build_trigger("A", requested_by="cli", as_of=_SESSION)
    _produce(broker, serde, sample_workflow_completed(trigger))
    again, rerun = _cli(env, *session), _cli(env, *session, "--rerun")

    assert again.returncode == 0, again.stderr
    assert _one_json(again) == started
    assert rerun.returncode == 0, rerun.stderr
    rerun_document = _one_json(rerun)
    assert rerun_document["rerun"] is True
    assert rerun_document["workflow_id"] != started["workflow_id"]
    records = harness.read_all(WorkflowStarted.TOPIC)
    assert len(records) == 3
    assert records[0].value() == records[1].value()  # the same event, byte for byte
    assert records[2].value() != records[0].value()


def test_cli_start_when_wait_and_workflow_completes_then_exit_0_with_outcome_document(
    broker: str, registry_url: str
) -> None:
    serde = EventSerde.from_url(registry_url)
    trigger = build_trigger("A", requested_by="cli", as_of=_SESSION)
    completed = sample_workflow_completed(trigger)
    timer = threading.Timer(6.0, _produce, args=(broker, serde, completed))
    timer.start()
    try:
        result = _cli(
            _env(broker, registry_url),
            *("--account", "A", "--as-of", "2018-06-15", "--wait", "--timeout", "60", "--json"),
        )
    finally:
        timer.join()

    assert result.returncode == 0, result.stderr
    document = _one_json(result)
    assert document["status"] == "completed"
    assert document["workflow_id"] == str(trigger.correlation_id)
    assert document["event"] == completed.model_dump(mode="json")
    assert "started" in result.stderr  # the start line, on stderr with --json


def test_cli_start_when_wait_and_workflow_failed_then_exit_1(
    broker: str, registry_url: str
) -> None:
    serde = EventSerde.from_url(registry_url)
    trigger = build_trigger("A", requested_by="cli", as_of=_SESSION)
    failed = sample_workflow_failed(trigger)
    _produce(broker, serde, trigger)
    _produce(broker, serde, failed)  # it finished before: --wait reports that outcome

    env = _env(broker, registry_url)
    session = ("--account", "A", "--as-of", "2018-06-15", "--wait", "--timeout", "30")
    text, as_json = _cli(env, *session), _cli(env, *session, "--json")

    assert text.returncode == 1, text.stderr
    assert text.stdout.strip().splitlines()[-1] == f"failed at execution: {failed.reason}"
    assert as_json.returncode == 1, as_json.stderr
    document = _one_json(as_json)
    assert document["status"] == "failed"
    assert document["event"]["event_id"] == str(failed.event_id)


def test_cli_start_when_wait_times_out_then_exit_2_and_one_timeout_failure(
    broker: str, registry_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = _env(broker, registry_url)
    session = ("--account", "A", "--as-of", "2018-06-15")
    serde = EventSerde.from_url(registry_url)
    harness = Pipeline(broker, registry_url, "unused", tmp_path_factory.mktemp("h"))
    workflow_id = session_workflow_id("A", _SESSION)

    assert _cli(env, *session).returncode == 0
    followed = _cli(env, *session, "--wait", "--timeout", "2", "--json")

    # the workflow was running: --wait followed it (no second trigger) and gave up after 2 s
    assert followed.returncode == 2, followed.stderr
    assert "already running" in followed.stderr and "following it" in followed.stderr
    document = _one_json(followed)
    assert document["status"] == "timeout"
    assert document["workflow_id"] == str(workflow_id)
    (record,) = harness.read_all(WorkflowFailed.TOPIC)
    failure = serde.deserialize(WorkflowFailed.TOPIC, record.value())
    assert isinstance(failure, WorkflowFailed)
    assert document["event"] == failure.model_dump(mode="json")
    assert failure.event_id == timeout_event_id(workflow_id)
    assert (failure.failure_step, failure.reason) == (FailureStep.TRIGGER, "timeout")
    assert failure.details == {"timed_out_after_s": "2"}
    trigger = build_trigger("A", requested_by="cli", as_of=_SESSION)
    assert failure.causation_id == trigger.event_id
    assert len(harness.read_all(WorkflowStarted.TOPIC)) == 1

    # a second wait finds the workflow ended (timed out): reported again, not failed twice
    again = _cli(env, *session, "--wait", "--timeout", "2")
    assert again.returncode == 2, again.stderr
    assert again.stdout.strip().splitlines()[-1].startswith("timed out")
    (again_record,) = harness.read_all(WorkflowFailed.TOPIC)
    assert again_record.value() == record.value()
    state = workflow_state(workflow_id, _kafka(broker), serde)
    assert state.outcome is not None and state.outcome.timed_out


def test_cli_start_when_broker_unreachable_then_one_line_and_exit_2(registry_url: str) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    env = _env(address, registry_url)

    began = time.monotonic()
    text = _cli(env, "--account", "A")
    as_json = _cli(env, "--account", "A", "--json")
    elapsed = time.monotonic() - began

    assert text.returncode == as_json.returncode == 2
    for result in (text, as_json):
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: Kafka broker at {address} is unreachable")
    assert text.stdout == ""
    assert _one_json(as_json)["status"] == "error"
    assert elapsed < 40  # two runs, each bounded by the 5 s probe


def test_cli_start_when_registry_unreachable_then_one_line_and_exit_2(broker: str) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"

    began = time.monotonic()
    result = _cli(_env(broker, url), "--account", "A", "--json")
    elapsed = time.monotonic() - began

    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: schema registry at {url} is unreachable")
    assert _one_json(result)["status"] == "error"
    assert elapsed < 20


def test_cli_start_when_account_not_given_then_alchemiser_account_id_is_used(
    broker: str, registry_url: str
) -> None:
    env = {**_env(broker, registry_url), "ALCHEMISER_ACCOUNT_ID": "PA9"}

    result = _cli(env, "--as-of", "2018-06-15", "--json")

    assert result.returncode == 0, result.stderr
    document = _one_json(result)
    assert document["account_id"] == "PA9"
    assert document["workflow_id"] == str(session_workflow_id("PA9", _SESSION))

"""The topic catalog, ``create_topics`` and the ``alchemiser topics`` command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alchemiser_common.kafka import BrokerUnreachableError, KafkaAdmin
from alchemiser_common.settings import KafkaSettings
from alchemiser_common.topics import (
    ALL_TOPICS,
    DLQ_TOPICS,
    EVENT_TOPICS,
    create_topics,
    dlq_topic,
    is_dlq_topic,
)
from alchemiser_devtools.broker import TopicFactory
from alchemiser_devtools.embedded import EmbeddedBroker, free_port

CLI = str(Path(sys.executable).parent / "alchemiser")


@pytest.fixture
def fresh_broker() -> Iterator[EmbeddedBroker]:
    """A broker of its own: these tests create the real catalog names."""
    with EmbeddedBroker() as broker:
        yield broker


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALCHEMISER_")}
    clean["COLUMNS"] = "200"
    return subprocess.run(
        [CLI, "topics", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**clean, **(env or {})},
        check=False,
    )


def test_catalog_when_read_then_six_event_topics_each_with_a_dlq_twin() -> None:
    assert EVENT_TOPICS == (
        "workflow.started.v1",
        "strategy.signal.generated.v1",
        "portfolio.rebalance.planned.v1",
        "execution.order.settled.v1",
        "workflow.completed.v1",
        "workflow.failed.v1",
    )
    assert tuple(f"{topic}.dlq" for topic in EVENT_TOPICS) == DLQ_TOPICS
    assert set(ALL_TOPICS) == set(EVENT_TOPICS) | set(DLQ_TOPICS)
    assert len(set(ALL_TOPICS)) == 12


def test_dlq_topic_when_given_a_dlq_topic_then_value_error() -> None:
    assert dlq_topic("workflow.failed.v1") == "workflow.failed.v1.dlq"
    assert is_dlq_topic("workflow.failed.v1.dlq")
    assert not is_dlq_topic("workflow.failed.v1")
    with pytest.raises(ValueError, match="already a dead-letter topic"):
        dlq_topic("workflow.failed.v1.dlq")


@pytest.mark.integration
def test_create_topics_when_run_twice_then_second_reports_all_existing(
    fresh_broker: EmbeddedBroker,
) -> None:
    settings = KafkaSettings(bootstrap_servers=fresh_broker.bootstrap_servers)

    first = create_topics(settings, partitions=3, replication_factor=1)
    second = create_topics(settings, partitions=5, replication_factor=1)

    assert set(first.created) == set(ALL_TOPICS) and first.existing == ()
    assert second.created == () and set(second.existing) == set(ALL_TOPICS)
    assert {status.partitions for status in second.topics} == {3}  # untouched by the 2nd call
    metadata = KafkaAdmin(settings).list_topics(timeout=5)
    for topic in EVENT_TOPICS:
        assert len(metadata.topics[topic].partitions) == 3
        assert len(metadata.topics[dlq_topic(topic)].partitions) == 3


@pytest.mark.integration
def test_create_topics_when_some_exist_then_only_missing_are_created(
    kafka_settings: KafkaSettings, kafka_topic_factory: TopicFactory
) -> None:
    existing = kafka_topic_factory("partial", partitions=2)
    missing = f"{existing}.new"

    report = create_topics(
        kafka_settings, topics=[existing, missing], partitions=4, replication_factor=1
    )

    assert report.existing == (existing,)
    assert report.created == (missing,)
    assert [(s.name, s.partitions) for s in report.topics] == [(existing, 2), (missing, 4)]
    KafkaAdmin(kafka_settings).delete_topics([missing])


def test_create_topics_when_no_broker_then_unreachable_error_within_bound() -> None:
    servers = f"127.0.0.1:{free_port()}"
    started = time.monotonic()

    with pytest.raises(BrokerUnreachableError, match=servers):
        create_topics({"bootstrap.servers": servers}, partitions=1, replication_factor=1, timeout=1)

    assert time.monotonic() - started < 5


@pytest.mark.integration
def test_cli_create_when_run_twice_then_exit_0_and_second_run_reports_existing(
    fresh_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    env = {
        "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": fresh_broker.bootstrap_servers,
        "ALCHEMISER_TOPICS__PARTITIONS": "2",
    }
    first = _cli("create", cwd=tmp_path, env=env)
    second = _cli("create", cwd=tmp_path, env=env)

    assert first.returncode == 0, first.stderr
    assert "12 created, 0 existed" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "0 created, 12 existed" in second.stdout
    metadata = KafkaAdmin({"bootstrap.servers": fresh_broker.bootstrap_servers}).list_topics(5)
    assert {len(metadata.topics[name].partitions) for name in ALL_TOPICS} == {2}

    listed = _cli("list", "--bootstrap-servers", fresh_broker.bootstrap_servers, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in ALL_TOPICS)
    assert "missing catalog topics" not in listed.stdout


@pytest.mark.integration
def test_cli_create_when_options_given_then_they_override_settings(
    fresh_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    env = {
        "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "ALCHEMISER_TOPICS__PARTITIONS": "2",
    }
    result = _cli(
        "create", "-b", fresh_broker.bootstrap_servers, "--partitions", "4", cwd=tmp_path, env=env
    )

    assert result.returncode == 0, result.stderr
    metadata = KafkaAdmin({"bootstrap.servers": fresh_broker.bootstrap_servers}).list_topics(5)
    assert {len(metadata.topics[name].partitions) for name in ALL_TOPICS} == {4}


def test_cli_create_when_broker_dead_then_exit_1_quickly_naming_the_servers(tmp_path: Path) -> None:
    servers = f"127.0.0.1:{free_port()}"
    started = time.monotonic()

    result = _cli("create", "--bootstrap-servers", servers, "--timeout", "2", cwd=tmp_path)

    assert result.returncode == 1
    assert time.monotonic() - started < 15
    assert f"no Kafka broker answered at {servers}" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_create_when_settings_invalid_then_exit_2_naming_the_variable(tmp_path: Path) -> None:
    result = _cli("create", cwd=tmp_path, env={"ALCHEMISER_TOPICS__PARTITIONS": "zero"})

    assert result.returncode == 2
    assert "ALCHEMISER_TOPICS__PARTITIONS" in result.stderr

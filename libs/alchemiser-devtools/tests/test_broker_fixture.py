"""The test-broker selection and fixtures of ``alchemiser_devtools.broker``."""

from __future__ import annotations

import pytest

from alchemiser_common.kafka import KafkaAdmin
from alchemiser_common.settings import KafkaSettings
from alchemiser_devtools.broker import (
    BrokerKind,
    KafkaTestBroker,
    TopicFactory,
    select_broker_kind,
)


@pytest.mark.parametrize(
    ("env", "docker", "expected"),
    [
        ({"KAFKA_BOOTSTRAP_SERVERS": "k:9092"}, True, BrokerKind.EXTERNAL),
        ({}, True, BrokerKind.TESTCONTAINERS),
        ({}, False, BrokerKind.EMBEDDED),
        ({"KAFKA_BOOTSTRAP_SERVERS": "  "}, False, BrokerKind.EMBEDDED),
        (
            {"ALCHEMISER_TEST_BROKER": "embedded", "KAFKA_BOOTSTRAP_SERVERS": "k:1"},
            True,
            BrokerKind.EMBEDDED,
        ),
        ({"ALCHEMISER_TEST_BROKER": "TestContainers"}, False, BrokerKind.TESTCONTAINERS),
    ],
)
def test_select_broker_kind_when_environment_varies_then_first_applicable_wins(
    env: dict[str, str], docker: bool, expected: BrokerKind
) -> None:
    assert select_broker_kind(env, lambda: docker) is expected


def test_select_broker_kind_when_bootstrap_set_then_docker_not_probed() -> None:
    def fail() -> bool:
        raise AssertionError("docker must not be probed")

    assert select_broker_kind({"KAFKA_BOOTSTRAP_SERVERS": "k:9092"}, fail) is BrokerKind.EXTERNAL


def test_select_broker_kind_when_choice_unknown_then_usage_error() -> None:
    with pytest.raises(pytest.UsageError, match="ALCHEMISER_TEST_BROKER"):
        select_broker_kind({"ALCHEMISER_TEST_BROKER": "redpanda"}, lambda: False)


def test_honours_transactions_when_embedded_then_false_else_true() -> None:
    assert not KafkaTestBroker("h:1", BrokerKind.EMBEDDED).honours_transactions
    assert KafkaTestBroker("h:1", BrokerKind.EXTERNAL).honours_transactions
    assert KafkaTestBroker("h:1", BrokerKind.TESTCONTAINERS).honours_transactions


@pytest.mark.integration
def test_topic_factory_when_called_then_unique_topics_with_requested_partitions(
    kafka_settings: KafkaSettings, kafka_topic_factory: TopicFactory
) -> None:
    first = kafka_topic_factory("fixture", partitions=3)
    second = kafka_topic_factory("fixture")

    assert first != second
    assert first.startswith("fixture.")
    topics = KafkaAdmin(kafka_settings).list_topics(timeout=5).topics
    assert len(topics[first].partitions) == 3
    assert len(topics[second].partitions) == 1
    assert kafka_settings.fetch_wait_max_ms == 10

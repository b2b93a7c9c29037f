"""The harness's topic reader: every record up to each partition's end, however slow the
broker, or an error; never a silently short answer."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from alchemiser_devtools.broker import TopicFactory
from alchemiser_devtools.harness import read_topic, read_topics

pytestmark = pytest.mark.integration


def _produce(bootstrap: str, topic: str, partitions: int, count: int) -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap})
    values = [f"{topic}-{n}".encode() for n in range(count)]
    for n, value in enumerate(values):
        producer.produce(topic, value=value, partition=n % partitions)
    assert producer.flush(10) == 0
    return values


def test_read_topics_when_several_topics_and_partitions_then_every_record_in_partition_order(
    kafka_bootstrap_servers: str, kafka_topic_factory: TopicFactory
) -> None:
    spread = kafka_topic_factory("harness-spread", partitions=3)
    single = kafka_topic_factory("harness-single")
    empty = kafka_topic_factory("harness-empty")
    produced = _produce(kafka_bootstrap_servers, spread, 3, 30)
    produced += _produce(kafka_bootstrap_servers, single, 1, 5)

    records = read_topics(kafka_bootstrap_servers, [spread, single, empty])

    assert sorted(r.value() for r in records) == sorted(produced)
    for topic, partition in {(r.topic(), r.partition()) for r in records}:
        offsets = [r.offset() for r in records if (r.topic(), r.partition()) == (topic, partition)]
        assert offsets == list(range(len(offsets)))
    assert [r.value() for r in read_topic(kafka_bootstrap_servers, single)] == produced[30:]
    assert read_topic(kafka_bootstrap_servers, empty) == []


def test_read_topics_when_topic_missing_then_empty(kafka_bootstrap_servers: str) -> None:
    assert read_topic(kafka_bootstrap_servers, "harness-no-such-topic") == []


def test_read_topics_when_end_not_reached_in_time_then_raises_naming_partitions(
    kafka_bootstrap_servers: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory("harness-late")
    _produce(kafka_bootstrap_servers, topic, 1, 3)

    with pytest.raises(AssertionError, match=f"did not reach the end of .*{topic}"):
        read_topics(kafka_bootstrap_servers, [topic], timeout_s=0)

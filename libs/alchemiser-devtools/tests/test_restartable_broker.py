"""The restartable broker: tansu on S3 storage survives a kill -9 and comes back on its port."""

from __future__ import annotations

import os
import socket
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from alchemiser_common.kafka import consumer_config, producer_config
from alchemiser_devtools.broker import RestartableBroker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

_WAIT_S = 30.0  # per wait below; each ends as soon as its condition holds
_DOWN_S = 3.0


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _refused(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return False
    except OSError:
        return True


def _create_topic(servers: str) -> str:
    name = f"restart.{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": servers})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(10)
    return name


def _poll_values(consumer: Consumer, count: int, timeout: float = _WAIT_S) -> list[bytes]:
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(values) < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            assert not error.fatal(), error
            continue
        values.append(message.value() or b"")
    return values


def _produce_all(producer: Producer, topic: str, values: list[bytes]) -> list[KafkaError]:
    errors: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error)

    for value in values:
        producer.produce(topic, value=value, on_delivery=on_delivery)
    return errors


def test_restartable_broker_when_killed_then_records_and_committed_offsets_survive_restart(
    restartable_broker: RestartableBroker,
) -> None:
    settings = restartable_broker.settings
    servers = restartable_broker.bootstrap_servers
    first_pid = restartable_broker.broker.pid
    assert first_pid is not None
    topic = _create_topic(servers)
    group = f"restart-{uuid.uuid4().hex[:8]}"
    producer = Producer(producer_config(settings))
    errors = _produce_all(producer, topic, [f"r{i}".encode() for i in range(10)])
    assert producer.flush(_WAIT_S) == 0
    assert errors == []
    consumer = Consumer(consumer_config(settings, group_id=group))
    consumer.subscribe([topic])
    assert _poll_values(consumer, 5)[:5] == [f"r{i}".encode() for i in range(5)]
    consumer.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    consumer.close()

    restartable_broker.kill()
    assert not restartable_broker.is_running
    assert _process_gone(first_pid)
    assert _refused(servers)
    time.sleep(_DOWN_S)
    restartable_broker.start()

    assert restartable_broker.bootstrap_servers == servers
    assert restartable_broker.broker.pid not in {None, first_pid}
    resumed = Consumer(consumer_config(settings, group_id=group))
    try:
        committed = resumed.committed([TopicPartition(topic, 0)], timeout=_WAIT_S)
        assert committed[0].offset == 5
        resumed.assign([TopicPartition(topic, 0)])  # no offset: resume at the committed one
        assert _poll_values(resumed, 5) == [f"r{i}".encode() for i in range(5, 10)]
    finally:
        resumed.close()
    reader = Consumer(consumer_config(settings, group_id=f"reader-{uuid.uuid4().hex[:8]}"))
    try:
        reader.assign([TopicPartition(topic, 0, 0)])
        assert _poll_values(reader, 10) == [f"r{i}".encode() for i in range(10)]
    finally:
        reader.close()


def test_restartable_broker_when_restarted_then_connected_producer_and_consumer_carry_on(
    restartable_broker: RestartableBroker,
) -> None:
    settings = restartable_broker.settings
    topic = _create_topic(restartable_broker.bootstrap_servers)
    producer = Producer(producer_config(settings))
    consumer = Consumer(consumer_config(settings, group_id=f"carry-on-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic])
    try:
        errors = _produce_all(producer, topic, [b"before"])
        assert producer.flush(_WAIT_S) == 0
        assert _poll_values(consumer, 1) == [b"before"]
        consumer.commit(asynchronous=False)

        restartable_broker.kill()
        errors += _produce_all(producer, topic, [b"during"])  # queued until the broker is back
        assert _poll_values(consumer, 1, _DOWN_S) == []
        restartable_broker.start()
        errors += _produce_all(producer, topic, [b"after"])

        assert producer.flush(_WAIT_S) == 0
        assert errors == []
        assert _poll_values(consumer, 2) == [b"during", b"after"]
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=_WAIT_S)
        assert committed[0].offset == 3
    finally:
        consumer.close()

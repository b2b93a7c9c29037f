"""The client wrappers against a real broker: round trip and transactional offsets."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition

from alchemiser_common.kafka import KafkaConsumer, KafkaProducer, take_records
from alchemiser_common.settings import KafkaSettings
from alchemiser_devtools.broker import TopicFactory

pytestmark = pytest.mark.integration

# Joining a group takes ~3 s on tansu; this leaves room without hiding a hang.
_FIRST_RECORD_TIMEOUT_S = 20.0


def _next_record(consumer: KafkaConsumer, timeout: float = _FIRST_RECORD_TIMEOUT_S) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = consumer.poll(0.1)
        if message is None:
            continue
        assert message.error() is None, message.error()
        return message
    raise AssertionError(f"no record within {timeout} s")


def _produce_plain(settings: KafkaSettings, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(settings)
    for value in values:
        producer.produce(topic, value, key=b"acct-1")
    assert producer.close(10) == 0


def _committed(consumer: KafkaConsumer, topic: str) -> int:
    [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    return committed.offset


def test_produce_consume_when_round_trip_then_key_value_headers_arrive_and_delivery_reported(
    kafka_settings: KafkaSettings, kafka_topic_factory: TopicFactory, kafka_group_id: str
) -> None:
    topic = kafka_topic_factory("roundtrip")
    reports: list[tuple[KafkaError | None, Message]] = []
    producer = KafkaProducer(kafka_settings)
    producer.produce(
        topic,
        b"payload-1",
        key=b"acct-1",
        headers=[("event_type", b"WorkflowStarted")],
        on_delivery=lambda err, msg: reports.append((err, msg)),
    )
    assert producer.flush(10) == 0
    assert len(reports) == 1 and reports[0][0] is None

    consumer = KafkaConsumer(kafka_settings, group_id=kafka_group_id)
    consumer.subscribe([topic])
    try:
        message = _next_record(consumer)
    finally:
        consumer.close()

    assert message.topic() == topic
    assert message.key() == b"acct-1"
    assert message.value() == b"payload-1"
    assert message.headers() == [("event_type", b"WorkflowStarted")]
    assert message.offset() == reports[0][1].offset()


def test_transaction_when_committed_then_group_offset_advances_and_when_aborted_then_not(
    kafka_settings: KafkaSettings, kafka_topic_factory: TopicFactory, kafka_group_id: str
) -> None:
    source = kafka_topic_factory("txn-in")
    sink = kafka_topic_factory("txn-out")
    _produce_plain(kafka_settings, source, [b"first", b"second"])
    consumer = KafkaConsumer(kafka_settings, group_id=kafka_group_id)
    producer = KafkaProducer(kafka_settings, transactional_id=f"{kafka_group_id}-txn")
    consumer.subscribe([source])
    try:
        producer.init_transactions(10)
        first = _next_record(consumer)
        assert first.value() == b"first"
        first_offset = first.offset()
        assert first_offset is not None
        assert _committed(consumer, source) < 0  # nothing committed yet

        producer.begin_transaction()
        producer.produce(sink, b"out-1", key=first.key())
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 10
        )
        producer.commit_transaction(10)
        assert _committed(consumer, source) == first_offset + 1

        second = _next_record(consumer)
        assert second.value() == b"second"
        producer.begin_transaction()
        producer.produce(sink, b"out-2", key=second.key())
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 10
        )
        producer.abort_transaction(10)
        assert _committed(consumer, source) == first_offset + 1

        # Rewinding to the committed offset redelivers the record whose transaction aborted.
        for committed in consumer.committed(consumer.assignment(), timeout=10):
            consumer.seek(committed)
        again = _next_record(consumer)
        assert (again.offset(), again.value()) == (second.offset(), b"second")
    finally:
        consumer.close()
        producer.close(5)


def _assigned_reader(settings: KafkaSettings, group_id: str, topic: str) -> KafkaConsumer:
    consumer = KafkaConsumer(settings, group_id=group_id)
    consumer.assign_from_beginning([topic])
    return consumer


def test_take_records_when_a_lone_record_arrives_then_it_comes_before_the_timeout(
    kafka_settings: KafkaSettings, kafka_topic_factory: TopicFactory, kafka_group_id: str
) -> None:
    # consume(200, 60) would hold the lone record for the whole minute
    topic = kafka_topic_factory("take-lone")
    consumer = _assigned_reader(kafka_settings, kafka_group_id, topic)
    producing = threading.Timer(0.5, _produce_plain, (kafka_settings, topic, [b"only"]))
    try:
        producing.start()
        started = time.monotonic()
        records = take_records(consumer, 200, 60.0)
        waited = time.monotonic() - started
    finally:
        producing.join()
        consumer.close()

    assert [record.value() for record in records] == [b"only"]
    assert waited < 30.0


def test_take_records_when_records_are_fetched_then_at_most_the_batch_comes_in_order(
    kafka_settings: KafkaSettings, kafka_topic_factory: TopicFactory, kafka_group_id: str
) -> None:
    topic = kafka_topic_factory("take-batch")
    _produce_plain(kafka_settings, topic, [b"r0", b"r1", b"r2", b"r3", b"r4"])
    consumer = _assigned_reader(kafka_settings, kafka_group_id, topic)
    taken: list[bytes] = []
    try:
        deadline = time.monotonic() + _FIRST_RECORD_TIMEOUT_S
        while len(taken) < 5 and time.monotonic() < deadline:
            batch = take_records(consumer, 3, 1.0)
            assert len(batch) <= 3
            taken.extend(record.value() for record in batch if record.error() is None)
        assert take_records(consumer, 3, 0.2) == []
    finally:
        consumer.close()

    assert taken == [b"r0", b"r1", b"r2", b"r3", b"r4"]

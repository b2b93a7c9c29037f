"""The loop's Kafka error contract (retriable, abortable, fatal), with scripted Kafka clients.

Real brokers cannot be made to fail on cue, so the consumer and producer here are in-memory
doubles that raise real ``KafkaException``s with librdkafka's flags; the inbox is a real SQLite
database and the serde a JSON stand-in (the Avro serde has its own tests).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import DeadLetterReason, DeserializationError, TransientError
from alchemiser_common.events import (
    Event,
    SignalGenerated,
    WorkflowStarted,
    event_class_for_topic,
)
from alchemiser_common.events.samples import sample_signal_generated, sample_workflow_started
from alchemiser_common.inbox import InboxStore, inbox_store_for
from alchemiser_common.observability import Metrics
from alchemiser_common.runtime.handlers import (
    EventHandlerRegistry,
    Handler,
    HandlerContext,
    HandlerRegistration,
    HandlerResult,
    InvalidEventError,
    NotReadyError,
)
from alchemiser_common.runtime.inputs import dedupe_key
from alchemiser_common.runtime.loop import LoopConfig, ProcessingLoop, ProtocolStep
from alchemiser_common.runtime.transactions import MAX_RETRIABLE_ATTEMPTS, FatalRuntimeError
from alchemiser_common.serde import EventSerde

TOPIC = WorkflowStarted.TOPIC
CONSUMER = "loop-errors"


@dataclass
class Record:
    """A consumed record, shaped like confluent-kafka's ``Message``."""

    _value: bytes
    _offset: int
    _topic: str = TOPIC
    _key: bytes = sample_workflow_started().account_id.encode()
    _partition: int = 0

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return []

    def error(self) -> None:
        return None


@dataclass
class ScriptedConsumer:
    """Partition 0 of the input topic; remembers seeks; committed offset fixed at 0."""

    batches: list[list[Record]] = field(default_factory=list)
    seeks: list[tuple[str, int, int]] = field(default_factory=list)
    position_offset: int = 0
    committed_failures: list[BaseException] = field(default_factory=list)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Record]:
        return self.batches.pop(0) if self.batches else []

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, 0)]

    def position(self, partitions: Sequence[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(p.topic, p.partition, self.position_offset) for p in partitions]

    def committed(self, partitions: Sequence[TopicPartition], timeout: float = 0) -> list[Any]:
        if self.committed_failures:
            raise self.committed_failures.pop(0)
        return [TopicPartition(p.topic, p.partition, 0) for p in partitions]

    def seek(self, partition: TopicPartition) -> None:
        self.seeks.append((partition.topic, partition.partition, partition.offset))

    def consumer_group_metadata(self) -> object:
        return object()

    def get_watermark_offsets(self, partition: TopicPartition) -> tuple[int, int] | None:
        return None


@dataclass
class ScriptedProducer:
    """Records calls; ``failures[method]`` lists exceptions to raise on successive calls."""

    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    committed_batches: list[list[tuple[str, bytes]]] = field(default_factory=list)
    offsets_sent: list[list[tuple[str, int, int]]] = field(default_factory=list)
    unacknowledged: list[int] = field(default_factory=list)
    _open: list[tuple[str, bytes]] = field(default_factory=list)

    def _maybe_fail(self, method: str) -> None:
        self.calls.append(method)
        queue = self.failures.get(method)
        if queue:
            raise queue.pop(0)

    def begin_transaction(self) -> None:
        self._maybe_fail("begin_transaction")
        self._open = []

    def produce(self, topic: str, value: bytes | None = None, **_: Any) -> None:
        self._maybe_fail("produce")
        self._open.append((topic, value or b""))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        """Scripted as the others; ``unacknowledged`` outputs are left after it."""
        self._maybe_fail("flush")
        return self.unacknowledged.pop(0) if self.unacknowledged else 0

    def send_offsets_to_transaction(self, offsets: Sequence[TopicPartition], *_: Any) -> None:
        self._maybe_fail("send_offsets_to_transaction")
        self.offsets_sent.append([(p.topic, p.partition, p.offset) for p in offsets])

    def commit_transaction(self, timeout: float = 0) -> None:
        self._maybe_fail("commit_transaction")
        self.committed_batches.append(self._open)

    def abort_transaction(self, timeout: float = 0) -> None:
        self._maybe_fail("abort_transaction")
        self._open = []


def _kafka_error(**flags: bool) -> KafkaException:
    return KafkaException(KafkaError(KafkaError._STATE, "scripted", **flags))


class JsonSerde:
    """A stand-in for the Avro serde: the loop only needs bytes out and events back."""

    def serialize(self, event: Event) -> bytes:
        return event.model_dump_json().encode()

    def deserialize(self, topic: str, data: bytes | None) -> Event:
        try:
            return event_class_for_topic(topic).model_validate_json(data or b"", strict=False)
        except ValidationError as err:  # the Avro serde's contract: one typed error
            raise DeserializationError(DeadLetterReason.UNDECODABLE, str(err)) from err


@pytest.fixture
def serde() -> EventSerde:
    return JsonSerde()  # type: ignore[return-value]


@pytest.fixture
def inbox(sqlite_url: str) -> InboxStore:
    store = inbox_store_for(create_engine_from_url(sqlite_url))
    store.migrate()
    return store


def _handler(calls: list[Event]) -> Callable[[Event, HandlerContext], list[Event]]:
    def handle(event: Event, _context: HandlerContext) -> list[Event]:
        calls.append(event)
        return [sample_signal_generated(event)]

    return handle


def _loop(
    serde: EventSerde,
    inbox: InboxStore,
    consumer: ScriptedConsumer,
    producer: ScriptedProducer,
    handler: Handler[WorkflowStarted],
    metrics: Metrics | None = None,
    pause_at: Callable[[ProtocolStep], None] = lambda step: None,
) -> ProcessingLoop:
    registry = EventHandlerRegistry()
    registry.register(HandlerRegistration(WorkflowStarted, handler))
    return ProcessingLoop(
        config=LoopConfig(consumer_name=CONSUMER, backoff_initial_s=0.001, backoff_max_s=0.001),
        consumer=consumer,  # type: ignore[arg-type]
        producer=producer,  # type: ignore[arg-type]
        serde=serde,
        inbox=inbox,
        registry=registry,
        metrics=metrics or Metrics(),
        pause_at=pause_at,
    )


def _records(serde: EventSerde, count: int = 2) -> list[Record]:
    base = sample_workflow_started()
    events = [base.model_copy(update={"correlation_id": uuid.uuid4()}) for _ in range(count)]
    return [Record(serde.serialize(event), offset) for offset, event in enumerate(events)]


def test_commit_when_retriable_error_then_same_call_retried_and_committed(
    serde: EventSerde, inbox: InboxStore
) -> None:
    producer = ScriptedProducer(failures={"commit_transaction": [_kafka_error(retriable=True)]})
    calls: list[Event] = []
    loop = _loop(serde, inbox, ScriptedConsumer(), producer, _handler(calls))
    loop.process_batch(_records(serde))
    assert producer.calls.count("commit_transaction") == 2
    assert "abort_transaction" not in producer.calls
    assert len(producer.committed_batches) == 1
    assert len(producer.committed_batches[0]) == 2


def test_commit_when_abort_required_then_aborted_rewound_and_redelivery_reemits_same_bytes(
    serde: EventSerde, inbox: InboxStore
) -> None:
    consumer = ScriptedConsumer()
    producer = ScriptedProducer(
        failures={"commit_transaction": [_kafka_error(txn_requires_abort=True)]}
    )
    calls: list[Event] = []
    loop = _loop(serde, inbox, consumer, producer, _handler(calls))
    records = _records(serde)
    loop.process_batch(records)
    assert "abort_transaction" in producer.calls
    assert consumer.seeks == [(TOPIC, 0, 0)]  # back to the committed offset
    assert producer.committed_batches == []
    assert producer._open == []  # the aborted transaction's records were discarded

    loop.process_batch(records)  # the redelivery after the rewind
    assert len(calls) == 2  # handlers ran once per input, not again
    (committed,) = producer.committed_batches
    expected = [
        (out.topic, out.value)
        for record in records
        for out in (inbox.get(CONSUMER, _key(serde, record)) or _missing()).outputs
    ]
    assert committed == expected


def test_commit_when_outputs_produced_then_acknowledged_before_the_offsets_are_sent(
    serde: EventSerde, inbox: InboxStore
) -> None:
    producer = ScriptedProducer()
    loop = _loop(serde, inbox, ScriptedConsumer(), producer, _handler([]))
    loop.process_batch(_records(serde))
    assert producer.calls == [
        "begin_transaction",
        "produce",
        "produce",
        "flush",
        "send_offsets_to_transaction",
        "commit_transaction",
    ]


def test_commit_when_outputs_not_acknowledged_then_aborted_rewound_and_offsets_never_sent(
    serde: EventSerde, inbox: InboxStore
) -> None:
    consumer = ScriptedConsumer()
    producer = ScriptedProducer(unacknowledged=[1])
    calls: list[Event] = []
    loop = _loop(serde, inbox, consumer, producer, _handler(calls))
    records = _records(serde)
    loop.process_batch(records)
    assert "send_offsets_to_transaction" not in producer.calls
    assert "abort_transaction" in producer.calls
    assert consumer.seeks == [(TOPIC, 0, 0)]
    assert producer.committed_batches == []

    loop.process_batch(records)  # the redelivery: the stored outputs, the handlers not again
    assert len(calls) == 2
    (committed,) = producer.committed_batches
    assert len(committed) == 2
    assert producer.offsets_sent == [[(TOPIC, 0, 2)]]


def _key(serde: EventSerde, record: Record) -> str:
    return dedupe_key(serde.deserialize(TOPIC, record.value()))


def _missing() -> Any:
    raise AssertionError("inbox row missing")


def test_commit_when_fatal_error_then_fatal_runtime_error(
    serde: EventSerde, inbox: InboxStore
) -> None:
    producer = ScriptedProducer(failures={"commit_transaction": [_kafka_error(fatal=True)]})
    loop = _loop(serde, inbox, ScriptedConsumer(), producer, _handler([]))
    with pytest.raises(FatalRuntimeError, match="fatal Kafka error"):
        loop.process_batch(_records(serde))


def test_send_offsets_when_retriable_forever_then_fatal_after_bounded_attempts(
    serde: EventSerde, inbox: InboxStore
) -> None:
    errors: list[BaseException] = [
        _kafka_error(retriable=True) for _ in range(MAX_RETRIABLE_ATTEMPTS)
    ]
    producer = ScriptedProducer(failures={"send_offsets_to_transaction": errors})
    loop = _loop(serde, inbox, ScriptedConsumer(), producer, _handler([]))
    with pytest.raises(FatalRuntimeError, match="kept failing"):
        loop.process_batch(_records(serde))
    assert producer.calls.count("send_offsets_to_transaction") == MAX_RETRIABLE_ATTEMPTS


def test_handler_when_it_keeps_failing_then_input_dead_lettered_and_others_handled(
    serde: EventSerde, inbox: InboxStore
) -> None:
    records = _records(serde, 3)
    poisoned = serde.deserialize(TOPIC, records[1].value()).correlation_id
    calls: list[Event] = []

    def handler(event: Event, context: HandlerContext) -> list[Event]:
        if event.correlation_id == poisoned:
            raise RuntimeError("a bug")
        return _handler(calls)(event, context)

    producer = ScriptedProducer()
    loop = _loop(serde, inbox, ScriptedConsumer(), producer, handler)
    loop.process_batch(records)
    (committed,) = producer.committed_batches
    topics = [topic for topic, _ in committed]
    assert topics == [SignalGenerated.TOPIC, TOPIC + ".dlq", SignalGenerated.TOPIC]
    assert committed[1][1] == records[1].value()


def test_run_when_transient_error_then_rewound_retried_and_counted(
    serde: EventSerde, inbox: InboxStore
) -> None:
    records = _records(serde, 1)
    consumer = ScriptedConsumer(batches=[records, records])
    attempts: list[Event] = []
    metrics = Metrics()
    loop_ref: list[ProcessingLoop] = []

    def handler(event: Event, context: HandlerContext) -> list[Event]:
        attempts.append(event)
        if len(attempts) == 1:
            raise TransientError("database briefly gone")
        loop_ref[0].stop()
        return [sample_signal_generated(event)]

    producer = ScriptedProducer()
    loop = _loop(serde, inbox, consumer, producer, handler, metrics)
    loop_ref.append(loop)
    loop.run()
    assert len(attempts) == 2
    assert consumer.seeks == [(TOPIC, 0, 0)]
    assert metrics.registry.get_sample_value("inbox_retry_total") == 1
    assert len(producer.committed_batches) == 1
    assert "begin_transaction" in producer.calls


def test_rewind_when_committed_offsets_unreadable_then_retried_until_read_and_nothing_lost(
    serde: EventSerde, inbox: InboxStore
) -> None:
    """A broker outage during a rewind: the committed offsets time out twice, the loop waits
    (it must not consume on from an unknown position), then rewinds and handles the record."""
    records = _records(serde, 1)
    timed_out = KafkaException(KafkaError(KafkaError._TIMED_OUT, "Failed to get committed"))
    consumer = ScriptedConsumer(batches=[records, records], committed_failures=[timed_out] * 2)
    attempts: list[Event] = []
    loop_ref: list[ProcessingLoop] = []

    def handler(event: Event, context: HandlerContext) -> list[Event]:
        attempts.append(event)
        if len(attempts) == 1:
            raise TransientError("database briefly gone")
        loop_ref[0].stop()
        return [sample_signal_generated(event)]

    producer = ScriptedProducer()
    loop = _loop(serde, inbox, consumer, producer, handler)
    loop_ref.append(loop)
    loop.run()  # no exception: the unreadable offsets were waited out
    assert consumer.committed_failures == []
    assert consumer.seeks == [(TOPIC, 0, 0)]  # one seek, once the offsets were read
    assert len(attempts) == 2
    assert len(producer.committed_batches) == 1


# -- commit protocol v2: handlers outside the transaction, prefixes, state, races -----------


def test_handler_when_one_input_fails_then_others_run_once_and_are_not_redone(
    serde: EventSerde, inbox: InboxStore
) -> None:
    records = _records(serde, 3)
    poisoned = serde.deserialize(TOPIC, records[0].value()).correlation_id
    runs: list[str] = []

    def handler(event: WorkflowStarted, _context: HandlerContext) -> list[Event]:
        runs.append(str(event.correlation_id))
        if event.correlation_id == poisoned:
            raise RuntimeError("a bug")
        return [sample_signal_generated(event)]

    producer = ScriptedProducer()
    _loop(serde, inbox, ScriptedConsumer(), producer, handler).process_batch(records)

    assert runs.count(str(poisoned)) == 3  # handler_attempts, then dead-lettered
    assert len(runs) == 3 + 2  # every other input ran exactly once
    (committed,) = producer.committed_batches
    assert [topic for topic, _ in committed] == [
        TOPIC + ".dlq",
        SignalGenerated.TOPIC,
        SignalGenerated.TOPIC,
    ]


def test_handler_when_transient_mid_batch_then_prefix_committed_and_rest_redelivered(
    serde: EventSerde, inbox: InboxStore
) -> None:
    records = _records(serde, 3)
    second = serde.deserialize(TOPIC, records[1].value()).correlation_id
    failures = [TransientError("broker briefly gone")]

    def handler(event: WorkflowStarted, _context: HandlerContext) -> list[Event]:
        if event.correlation_id == second and failures:
            raise failures.pop()
        return [sample_signal_generated(event)]

    consumer, producer = ScriptedConsumer(), ScriptedProducer()
    loop = _loop(serde, inbox, consumer, producer, handler)
    with pytest.raises(TransientError):
        loop.process_batch(records)
    (first,) = producer.committed_batches
    assert [topic for topic, _ in first] == [SignalGenerated.TOPIC]  # only input 0
    assert producer.offsets_sent == [[(TOPIC, 0, 1)]]  # the prefix's offset, not the batch's

    loop.process_batch(records[1:])  # what the rewind redelivers
    assert len(producer.committed_batches) == 2
    assert [topic for topic, _ in producer.committed_batches[1]] == [SignalGenerated.TOPIC] * 2
    assert producer.offsets_sent[1] == [(TOPIC, 0, 3)]


def test_stop_when_requested_mid_batch_then_current_input_committed_and_rest_rewound(
    serde: EventSerde, inbox: InboxStore
) -> None:
    records = _records(serde, 3)
    loop_ref: list[ProcessingLoop] = []
    runs: list[Event] = []

    def handler(event: WorkflowStarted, _context: HandlerContext) -> list[Event]:
        runs.append(event)
        loop_ref[0].stop()  # SIGTERM arrives while the first input is handled
        return [sample_signal_generated(event)]

    consumer, producer = ScriptedConsumer(), ScriptedProducer()
    loop_ref.append(_loop(serde, inbox, consumer, producer, handler))
    loop_ref[0].process_batch(records)

    assert len(runs) == 1
    assert producer.offsets_sent == [[(TOPIC, 0, 1)]]
    assert consumer.seeks == [(TOPIC, 0, 0)]  # back to the committed offset for the rest


def test_state_when_unit_of_work_fails_then_that_input_dead_lettered_and_others_commit(
    serde: EventSerde, inbox: InboxStore
) -> None:
    state = sa.Table("loop_state", sa.MetaData(), sa.Column("cid", sa.String, primary_key=True))
    state.create(inbox.engine)
    records = _records(serde, 3)
    bad = serde.deserialize(TOPIC, records[1].value()).correlation_id

    def handler(event: WorkflowStarted, _context: HandlerContext) -> HandlerResult:
        def write(connection: Connection) -> None:
            connection.execute(state.insert().values(cid=str(event.correlation_id)))
            if event.correlation_id == bad:
                raise ValueError("state rejected")

        return HandlerResult([sample_signal_generated(event)], write)

    producer = ScriptedProducer()
    _loop(serde, inbox, ScriptedConsumer(), producer, handler).process_batch(records)

    (committed,) = producer.committed_batches
    assert [topic for topic, _ in committed] == [
        SignalGenerated.TOPIC,
        TOPIC + ".dlq",
        SignalGenerated.TOPIC,
    ]
    with inbox.engine.connect() as connection:
        rows = set(connection.execute(sa.select(state.c.cid)).scalars())
    assert str(bad) not in rows
    assert len(rows) == 2
    assert inbox.get(CONSUMER, _key(serde, records[1])) is None  # its row rolled back too


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def race_database_url(request: pytest.FixtureRequest) -> str:
    """An empty SQLite file, or a fresh PostgreSQL database (integration)."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


def test_loops_when_two_race_for_same_inputs_then_one_effect_and_same_bytes_emitted(
    serde: EventSerde, race_database_url: str
) -> None:
    engine = create_engine_from_url(race_database_url)
    state = sa.Table(
        f"race_state_{uuid.uuid4().hex[:8]}", sa.MetaData(), sa.Column("cid", sa.String)
    )
    state.create(engine)
    records = _records(serde, 10)
    barrier = threading.Barrier(2, timeout=10)
    recorded = threading.Barrier(2, timeout=10)

    def both_recorded(step: ProtocolStep) -> None:
        # neither marks its rows published before the other has recorded: the loser must
        # then re-emit the winner's stored outputs (a published row would re-emit nothing)
        if step is ProtocolStep.AFTER_DB_COMMIT:
            recorded.wait()

    def handler(event: WorkflowStarted, _context: HandlerContext) -> HandlerResult:
        def write(connection: Connection) -> None:
            connection.execute(state.insert().values(cid=str(event.correlation_id)))

        # distinct bytes per racer: the loser must re-emit the winner's, not its own
        signal = sample_signal_generated(event).model_copy(update={"event_id": uuid.uuid4()})
        return HandlerResult([signal], write)

    producers = [ScriptedProducer(), ScriptedProducer()]
    errors: list[BaseException] = []

    def race(producer: ScriptedProducer) -> None:
        store = inbox_store_for(create_engine_from_url(race_database_url))
        store.migrate()
        loop = _loop(serde, store, ScriptedConsumer(), producer, handler, pause_at=both_recorded)
        try:
            barrier.wait()
            loop.process_batch(records)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=race, args=(p,)) for p in producers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    with engine.connect() as connection:
        effects = list(connection.execute(sa.select(state.c.cid)).scalars())
    assert sorted(effects) == sorted({str(cid) for cid in effects})  # one effect per input
    assert len(effects) == len(records)
    first, second = (p.committed_batches[0] for p in producers)
    assert first == second  # the loser re-emitted the winner's stored bytes


# -- hardening: keys, replay-stable dead letters, per-partition retries -------------------


def test_decode_when_key_empty_or_not_the_account_then_dead_lettered_as_bad_key(
    serde: EventSerde, inbox: InboxStore
) -> None:
    good, empty, other = _records(serde, 3)
    empty._key = b""
    other._key = b"SOMEONE-ELSE"
    calls: list[Event] = []
    producer = ScriptedProducer()
    _loop(serde, inbox, ScriptedConsumer(), producer, _handler(calls)).process_batch(
        [good, empty, other]
    )

    (committed,) = producer.committed_batches
    assert [topic for topic, _ in committed] == [SignalGenerated.TOPIC] + [TOPIC + ".dlq"] * 2
    assert len(calls) == 1  # neither badly keyed record reached the handler
    assert [value for _, value in committed[1:]] == [empty.value(), other.value()]


def test_replay_when_records_were_dead_lettered_then_no_second_dead_letter(
    serde: EventSerde, inbox: InboxStore
) -> None:
    good = _records(serde, 1)[0]
    garbage = Record(b"\x00\x00\x00\x00\x01 not avro", 1)
    rejected = Record(good.value(), 2, _key=b"WRONG")
    producer = ScriptedProducer()
    loop = _loop(serde, inbox, ScriptedConsumer(), producer, _handler([]))

    loop.process_batch([good, garbage, rejected])
    loop.process_batch([good, garbage, rejected])  # the whole topic replayed

    first, second = producer.committed_batches
    assert [topic for topic, _ in first] == [SignalGenerated.TOPIC] + [TOPIC + ".dlq"] * 2
    assert second == []  # published outputs and dead letters are not produced again
    assert inbox.get(CONSUMER, "dead:workflow.started.v1:0:1") is not None


def test_replay_when_dead_letter_not_yet_published_then_same_bytes_reemitted(
    serde: EventSerde, inbox: InboxStore
) -> None:
    garbage = Record(b"\x00 not avro at all", 0)
    producer = ScriptedProducer(
        failures={"commit_transaction": [_kafka_error(txn_requires_abort=True)]}
    )
    loop = _loop(serde, inbox, ScriptedConsumer(), producer, _handler([]))

    loop.process_batch([garbage])  # recorded, then the Kafka transaction aborted
    loop.process_batch([garbage])  # redelivered

    (committed,) = producer.committed_batches
    stored = inbox.get(CONSUMER, "dead:workflow.started.v1:0:0")
    assert stored is not None
    assert committed == [(out.topic, out.value) for out in stored.outputs]


def test_handler_when_not_ready_then_only_its_partition_waits_and_others_commit(
    serde: EventSerde, inbox: InboxStore
) -> None:
    blocked = Record(_records(serde, 1)[0].value(), 0)
    behind_it = Record(_records(serde, 1)[0].value(), 1)
    other = _records(serde, 1)[0]
    other._partition = 1
    waiting = serde.deserialize(TOPIC, blocked.value()).correlation_id

    def handler(event: WorkflowStarted, _context: HandlerContext) -> list[Event]:
        if event.correlation_id == waiting:
            raise NotReadyError("waiting for another event")
        return [sample_signal_generated(event)]

    producer = ScriptedProducer()
    loop = _loop(serde, inbox, ScriptedConsumer(), producer, handler)
    with pytest.raises(NotReadyError):
        loop.process_batch([blocked, other, behind_it])

    (committed,) = producer.committed_batches
    assert [topic for topic, _ in committed] == [SignalGenerated.TOPIC]  # partition 1 went on
    assert producer.offsets_sent == [[(TOPIC, 1, 1)]]  # partition 0 not committed at all
    assert inbox.get(CONSUMER, _key(serde, behind_it)) is None  # nothing behind it handled


def test_handler_when_rejected_with_reason_then_dead_letter_carries_it(
    serde: EventSerde, inbox: InboxStore
) -> None:
    def handler(event: WorkflowStarted, _context: HandlerContext) -> list[Event]:
        raise InvalidEventError("no such workflow", reason=DeadLetterReason.UNKNOWN_WORKFLOW)

    producer = ScriptedProducer()
    metrics = Metrics()
    _loop(serde, inbox, ScriptedConsumer(), producer, handler, metrics).process_batch(
        _records(serde, 1)
    )

    labels = {"topic": TOPIC, "reason": "unknown_workflow"}
    assert metrics.registry.get_sample_value("dlq_messages_total", labels) == 1

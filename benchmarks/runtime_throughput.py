"""Runtime throughput: the processing loop (PostgreSQL inbox) beside a bare copy loop.

Both run against the same embedded broker in the same run, over the same pre-produced input:

* **bare**: confluent-kafka consume -> produce with a transactional producer, offsets sent to
  the transaction, one transaction per batch (no decoding, no database);
* **runtime**: :class:`~alchemiser_common.runtime.loop.ProcessingLoop` with Avro decode, the
  PostgreSQL inbox (one lookup and one short recording transaction per batch), a handler,
  Avro encode of the output, and the same Kafka transaction per batch.

Targets, per runtime instance on PostgreSQL: at least 10,000 events/s
(:data:`TARGET_EVENTS_PER_S`), and at least 0.2 of the bare loop measured in the same run
(:data:`TARGET_RATIO_TO_BARE`: the runtime's own cost, whatever the machine's speed).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, Producer
from sqlalchemy.engine import make_url

from alchemiser_common.db import create_engine_from_url
from alchemiser_common.events import Event, SignalGenerated, WorkflowStarted
from alchemiser_common.events.samples import sample_signal_generated, sample_workflow_started
from alchemiser_common.inbox import inbox_store_for
from alchemiser_common.kafka.clients import KafkaConsumer, KafkaProducer
from alchemiser_common.observability import Metrics
from alchemiser_common.runtime.handlers import (
    EventHandlerRegistry,
    HandlerContext,
    HandlerRegistration,
)
from alchemiser_common.runtime.loop import LoopConfig, ProcessingLoop
from alchemiser_common.schemas import SchemaCatalog
from alchemiser_common.schemas.register import register_all
from alchemiser_common.serde import EventSerde
from alchemiser_common.settings import KafkaSettings
from alchemiser_common.topics import create_topics
from alchemiser_devtools.embedded import EmbeddedBroker
from alchemiser_devtools.registry import RegistryServerProcess

EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
BATCH = 500
TARGET_EVENTS_PER_S = 10_000
TARGET_RATIO_TO_BARE = 0.2
POSTGRES_URL = os.environ.get(
    "ALCHEMISER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _fresh_database() -> str:
    url = make_url(POSTGRES_URL)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = make_url(POSTGRES_URL).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def _produce_inputs(bootstrap: str, serde: EventSerde) -> None:
    base = sample_workflow_started()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for _ in range(EVENTS):
        event = base.model_copy(update={"event_id": uuid.uuid4(), "correlation_id": uuid.uuid4()})
        producer.produce(WorkflowStarted.TOPIC, serde.serialize(event), event.account_id.encode())
        producer.poll(0)
    producer.flush(30)


def _bare_loop(bootstrap: str) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bare-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "fetch.wait.max.ms": 10,
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "bench-bare"})
    producer.init_transactions(30)
    consumer.subscribe([WorkflowStarted.TOPIC])
    copied = 0
    started: float | None = None
    while copied < EVENTS:
        records = [r for r in consumer.consume(BATCH, timeout=1.0) if r.error() is None]
        if not records:
            continue
        started = started or time.perf_counter()
        producer.begin_transaction()
        for record in records:
            producer.produce("bench.copy", record.value(), record.key())
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata()
        )
        producer.commit_transaction(30)
        copied += len(records)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return copied / elapsed


def _runtime_loop(bootstrap: str, serde: EventSerde, database_url: str) -> float:
    engine = create_engine_from_url(database_url)
    inbox = inbox_store_for(engine)
    inbox.migrate()
    # The handler builds a realistic output (a validated SignalGenerated of the usual size) from
    # a payload computed once: the benchmark measures the runtime, not strategy evaluation.
    template = sample_signal_generated()
    payload = template.model_dump(
        include={
            "signal_hash",
            "market_snapshot_id",
            "as_of",
            "signals",
            "strategy_allocations",
            "consolidated_portfolio",
        }
    )

    def handler(event: WorkflowStarted, _context: HandlerContext) -> list[Event]:
        return [
            SignalGenerated.caused_by(
                event, source=template.source, occurred_at=template.occurred_at, **payload
            )
        ]

    registry = EventHandlerRegistry()
    registry.register(HandlerRegistration(WorkflowStarted, handler))
    metrics = Metrics()
    settings = KafkaSettings(bootstrap_servers=bootstrap, fetch_wait_max_ms=10)
    consumer = KafkaConsumer(settings, group_id=f"bench-runtime-{uuid.uuid4().hex[:6]}")
    producer = KafkaProducer(settings, transactional_id="bench-runtime")
    producer.init_transactions()
    loop = ProcessingLoop(
        config=LoopConfig(consumer_name="bench", batch_size=BATCH, poll_timeout_s=0.2),
        consumer=consumer,
        producer=producer,
        serde=serde,
        inbox=inbox,
        registry=registry,
        metrics=metrics,
    )
    consumer.subscribe([WorkflowStarted.TOPIC])
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()

    def handled() -> float:
        value = metrics.registry.get_sample_value(
            "event_consumed_total",
            {"topic": WorkflowStarted.TOPIC, "event_type": "WorkflowStarted", "outcome": "handled"},
        )
        return value or 0.0

    while handled() == 0:
        time.sleep(0.005)
    started = time.perf_counter()
    first = handled()
    while handled() < EVENTS:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    loop.stop()
    thread.join(30)
    consumer.close()
    engine.dispose()
    return (EVENTS - first) / elapsed


def main() -> dict[str, Any]:
    """Run both loops, print events/s and their ratio, and return the figures."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        registry = RegistryServerProcess(Path(tmp) / "registry").start()
        database_url = _fresh_database()
        try:
            register_all(registry.url, SchemaCatalog.discover())
            create_topics(
                {"bootstrap.servers": broker.bootstrap_servers},
                topics=(WorkflowStarted.TOPIC, SignalGenerated.TOPIC, "bench.copy"),
                partitions=1,
                replication_factor=1,
            )
            serde = EventSerde.from_url(registry.url)
            _produce_inputs(broker.bootstrap_servers, serde)
            bare = _bare_loop(broker.bootstrap_servers)
            runtime = _runtime_loop(broker.bootstrap_servers, serde, database_url)
        finally:
            registry.stop()
            _drop_database(database_url)
    ratio = runtime / bare
    print(f"runtime throughput ({EVENTS} events, batch {BATCH}, PostgreSQL inbox)")
    print(f"  bare confluent-kafka copy loop : {bare:10,.0f} events/s")
    print(f"  alchemiser processing loop     : {runtime:10,.0f} events/s")
    print(f"  ratio runtime / bare           : {ratio:10.3f}")
    absolute = _verdict(runtime, TARGET_EVENTS_PER_S)
    relative = _verdict(ratio, TARGET_RATIO_TO_BARE)
    print(f"  target >= {TARGET_EVENTS_PER_S:,} events/s      : {absolute}")
    print(f"  target ratio >= {TARGET_RATIO_TO_BARE}            : {relative}")
    return {
        "events": EVENTS,
        "batch": BATCH,
        "bare_events_per_s": round(bare),
        "runtime_events_per_s": round(runtime),
        "ratio_to_bare": round(ratio, 4),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "target_ratio_to_bare": TARGET_RATIO_TO_BARE,
    }


def _verdict(value: float, target: float) -> str:
    return "meets" if value >= target else "MISSES"


if __name__ == "__main__":
    main()

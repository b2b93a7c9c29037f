"""The broker's bare round trip: produce one record, consume it, then the next.

The floor under every hop of a workflow: plain confluent-kafka, no serde, no database, no
transaction. One idempotent producer (``acks=all``, ``linger.ms=0``) and one consumer assigned
to the end of a one-partition topic (no group join; ``read_committed`` and
``fetch.wait.max.ms=10`` as the services use), both created once and warmed up; each sample is
the ``perf_counter`` time from ``produce()`` to ``poll()`` returning that record. One record in
flight at a time, like a workflow's events.

:func:`bare_roundtrips_ms` runs against a broker that is already up (the workflow benchmark
calls it on its stack's broker, so both figures come from the same broker in the same run).
``BENCH_ROUNDTRIPS`` sets the number of samples (default 500).
"""

from __future__ import annotations

import logging
import os
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from alchemiser_common.topics import create_topics

__all__ = ["ROUNDTRIPS", "TOPIC", "bare_roundtrips_ms"]

ROUNDTRIPS = int(os.environ.get("BENCH_ROUNDTRIPS", "500"))
WARMUP = 20
"""Round trips not counted: the producer id, the first fetch, the offset lookup."""
TOPIC = "bench.roundtrip"
RECORD_TIMEOUT_S = 5.0
"""A record not back within this is a broken broker, not a slow one: the benchmark fails."""
FETCH_WAIT_MAX_MS = 10  # what the stack gives the services (ALCHEMISER_KAFKA__FETCH_WAIT_MAX_MS)
_WATERMARK_TIMEOUT_S = 10.0

_quiet = logging.getLogger("benchmarks.roundtrip.kafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def _await(consumer: Consumer, payload: bytes) -> None:
    deadline = time.perf_counter() + RECORD_TIMEOUT_S
    while (remaining := deadline - time.perf_counter()) > 0:
        record = consumer.poll(remaining)
        if record is not None and record.error() is None and record.value() == payload:
            return
    raise RuntimeError(f"{TOPIC}: a record was not consumed within {RECORD_TIMEOUT_S:g} s")


def bare_roundtrips_ms(bootstrap: str, count: int = ROUNDTRIPS) -> list[float]:
    """``count`` produce -> consume round trips on ``bootstrap``'s broker, in milliseconds."""
    create_topics(
        {"bootstrap.servers": bootstrap}, topics=(TOPIC,), partitions=1, replication_factor=1
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,
            "logger": _quiet,
        }
    )
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-roundtrip-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,
            "logger": _quiet,
        }
    )
    samples: list[float] = []
    try:
        _low, high = consumer.get_watermark_offsets(
            TopicPartition(TOPIC, 0), timeout=_WATERMARK_TIMEOUT_S
        )
        consumer.assign([TopicPartition(TOPIC, 0, high)])
        for index in range(WARMUP + count):
            payload = f"{index}".encode()
            started = time.perf_counter()
            producer.produce(TOPIC, payload)
            producer.poll(0)
            _await(consumer, payload)
            if index >= WARMUP:
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        consumer.close()
        producer.flush(RECORD_TIMEOUT_S)
    return samples

"""Test harness: run services (or runtime stages) as real processes against a real broker,
the registry server and a real database, then inspect topics, metrics and effects.

Used by the runtime's own tests and by every service's integration tests::

    harness = Pipeline(bootstrap, registry_url, database_url, tmp_path)
    strategy = harness.start_module("alchemiser_strategy", "strategy", ALCHEMISER_...="...")
    harness.produce([harness.trigger()])
    harness.wait_for(lambda: ..., "a signal")
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from confluent_kafka import Consumer, Producer, TopicPartition

from alchemiser_common.events import Event, WorkflowStarted
from alchemiser_common.events.samples import sample_workflow_started
from alchemiser_common.kafka import records_to_end
from alchemiser_common.schemas import find_schemas_dir
from alchemiser_common.serde import EventSerde
from alchemiser_devtools.pipeline import EFFECTS

STAGE_ONE = "alchemiser_devtools.pipeline:STAGE_ONE"
STAGE_TWO = "alchemiser_devtools.pipeline:STAGE_TWO"
#: Upper bound for any wait in these tests: group joins take ~3 s and a killed member is
#: noticed after the 6 s session timeout, so 60 s is generous but still stops by itself.
WAIT_S = 60.0


@dataclass
class StageProcess:
    """One runtime process and its captured output."""

    name: str
    process: subprocess.Popen[str]
    log_path: Path

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return lines

    def metrics_url(self) -> str:
        """The /metrics URL, read from the 'running' log line."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if line.get("message") == "running":
                    return f"http://127.0.0.1:{line['metrics_port']}/metrics"
            time.sleep(0.2)
        raise AssertionError(f"{self.name} never logged 'running':\n{self.log_path.read_text()}")

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample scraped from the process's /metrics."""
        from prometheus_client.parser import text_string_to_metric_families

        body = httpx.get(self.metrics_url(), timeout=5).text
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    def kill(self) -> None:
        """SIGKILL, the crash."""
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@dataclass
class Pipeline:
    """Broker, registry and database of one test, and the stages started for it."""

    bootstrap: str
    registry_url: str
    database_url: str
    workdir: Path
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    processes: list[StageProcess] = field(default_factory=list)

    @property
    def serde(self) -> EventSerde:
        return EventSerde.from_url(self.registry_url)

    def service_name(self, stage: str) -> str:
        return f"stage-{stage}-{self.prefix}"

    def start(self, register: str, stage: str, **env: str) -> StageProcess:
        """Start ``module:function`` on the generic runtime entry point as its own process."""
        return self._spawn(["-m", "alchemiser_common.runtime", register], stage, env)

    def start_module(self, module: str, stage: str, **env: str) -> StageProcess:
        """Start ``python -m module`` (a service) as its own process."""
        return self._spawn(["-m", module], stage, env)

    def environment(self, stage: str, **env: str) -> dict[str, str]:
        """The environment a process of ``stage`` runs with (settings pointing at this test)."""
        return {
            **os.environ,
            "ALCHEMISER_SERVICE_NAME": self.service_name(stage),
            "ALCHEMISER_INSTANCE_ID": "0",
            "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "ALCHEMISER_KAFKA__FETCH_WAIT_MAX_MS": "10",
            "ALCHEMISER_REGISTRY__URL": self.registry_url,
            "ALCHEMISER_DATABASE__URL": self.database_url,
            "ALCHEMISER_OBSERVABILITY__METRICS_PORT": "0",
            "ALCHEMISER_RUNTIME__POLL_TIMEOUT_MS": "100",
            "ALCHEMISER_RUNTIME__BACKOFF_MAX_MS": "1000",
            "ALCHEMISER_SCHEMAS_DIR": str(find_schemas_dir()),
            "PYTHONUNBUFFERED": "1",
            **env,
        }

    def _spawn(self, args: list[str], stage: str, env: dict[str, str]) -> StageProcess:
        name = self.service_name(stage)
        log_path = self.workdir / f"{name}-{len(self.processes)}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, *args],
                env=self.environment(stage, **env),
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        stage_process = StageProcess(name, process, log_path)
        self.processes.append(stage_process)
        return stage_process

    def stop_all(self) -> None:
        for stage in self.processes:
            if stage.process.poll() is None:
                stage.process.kill()
                stage.process.wait(timeout=10)

    # -- producing and reading -----------------------------------------------------------
    def trigger(
        self, requested_by: str = "test", correlation_id: uuid.UUID | None = None
    ) -> WorkflowStarted:
        """A new WorkflowStarted for a new workflow."""
        base = sample_workflow_started()
        return base.model_copy(
            update={
                "event_id": uuid.uuid4(),
                "correlation_id": correlation_id or uuid.uuid4(),
                "requested_by": requested_by,
            }
        )

    def produce_raw(self, topic: str, values: list[bytes], key: bytes = b"acct") -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap})
        for value in values:
            producer.produce(topic, value=value, key=key)
        assert producer.flush(10) == 0

    def produce(self, events: list[Event]) -> None:
        """Produce ``events`` as a real producer would: each keyed by its account."""
        serde = self.serde
        producer = Producer({"bootstrap.servers": self.bootstrap})
        for event in events:
            producer.produce(
                event.TOPIC, value=serde.serialize(event), key=event.account_id.encode()
            )
        assert producer.flush(10) == 0

    def read_all(self, topic: str) -> list[Any]:
        """Every record on ``topic`` (all partitions), from the beginning."""
        return read_topic(self.bootstrap, topic)

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if predicate():
                return
            for stage in self.processes:
                code = stage.process.poll()
                if code not in (None, 0, -9, -15):
                    raise AssertionError(
                        f"{stage.name} exited {code}:\n{stage.log_path.read_text()}"
                    )
            time.sleep(0.3)
        logs = "\n".join(f"--- {s.name}\n{s.log_path.read_text()[-4000:]}" for s in self.processes)
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def outputs_by_correlation(self, topic: str) -> dict[str, list[Any]]:
        """Records on ``topic`` grouped by their correlation id header."""
        grouped: dict[str, list[Any]] = {}
        for record in self.read_all(topic):
            headers = dict(record.headers() or [])
            grouped.setdefault(headers.get("correlation_id", b"?").decode(), []).append(record)
        return grouped

    def effects(self, stage: str) -> dict[str, int]:
        """Effects recorded per correlation id by ``stage``."""
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    sa.select(EFFECTS.c.correlation_id, sa.func.count())
                    .where(EFFECTS.c.stage == stage)
                    .group_by(EFFECTS.c.correlation_id)
                ).all()
        finally:
            engine.dispose()
        return {correlation_id: count for correlation_id, count in rows}

    def committed_offset(self, stage: str, topic: str, partition: int = 0) -> int:
        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": self.service_name(stage)}
        )
        try:
            (tp,) = consumer.committed([TopicPartition(topic, partition)], timeout=10)
            return int(tp.offset)
        finally:
            consumer.close()

    def replay_from(self, stage: str, topic: str, offset: int = 0, partition: int = 0) -> None:
        """Reset ``stage``'s group offset (no member may be running): a replay from ``offset``."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.service_name(stage),
                "enable.auto.commit": False,
            }
        )
        try:
            consumer.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=False)
        finally:
            consumer.close()


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record on ``topic`` (all partitions) from the beginning to its end as of now."""
    return read_topics(bootstrap, [topic])


def read_topics(bootstrap: str, topics: list[str], timeout_s: float = WAIT_S) -> list[Any]:
    """Every record on ``topics`` (all partitions) from the beginning up to the end each
    partition had when it was reached (the consumer's end-of-partition event), in offset order
    per partition; a broker that honours transactions shows committed records only. A slow
    broker delays the answer but never shortens it: a read that does not reach every end
    within ``timeout_s`` raises. A topic that does not exist reads empty."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10).topics  # a topic not there has no records
        pending = {(t, p) for t in topics if t in metadata for p in metadata[t].partitions}
        consumer.assign([TopicPartition(t, p, 0) for t, p in sorted(pending)])

        def unreached(left: set[tuple[str, int]]) -> AssertionError:
            return AssertionError(f"read of {topics} did not reach the end of {sorted(left)}")

        return list(records_to_end(consumer, pending, timeout_s, unreached))
    finally:
        consumer.close()


def wait_for_file(path: Path, pipeline: Pipeline) -> None:
    pipeline.wait_for(path.exists, f"pause file {path}")


def distinct_ids(records: list[Any]) -> dict[bytes, set[bytes]]:
    """event_id -> the set of distinct values carried by records with that id."""
    by_id: dict[bytes, set[bytes]] = {}
    for record in records:
        event_id = dict(record.headers() or []).get("event_id", b"?")
        by_id.setdefault(event_id, set()).add(record.value())
    return by_id


def iter_dlq(records: list[Any]) -> Iterator[dict[str, str]]:
    for record in records:
        yield {
            name: value.decode()
            for name, value in (record.headers() or [])
            if name.startswith("dlq.")
        }

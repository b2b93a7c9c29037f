"""``--mode pipeline``: the real services over Kafka, the code that trades live.

:func:`start_stack` starts the embedded stack of ``alchemiser dev`` (broker, registry, paper
exchange on SQLite, strategy, portfolio and execution as separate processes) with the
backtest's strategies and the exchange's cost model; :class:`PipelineWorkflow` publishes each
session's trigger and reads the workflow topics until its outcome arrives. One producer and
one reader serve the whole backtest (the reader starts at the topics' beginning once and keeps
its place), so a session costs the workflow itself and nothing more.

The backtest reads and restores the account on the exchange's own database file (SQLite
allows a second process), never through the services.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_NOT_AVAILABLE, Message, TopicPartition

from alchemiser_backtest.runner import Outcome
from alchemiser_common.events import (
    SignalGenerated,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from alchemiser_common.kafka.clients import KafkaConsumer, KafkaProducer, take_records
from alchemiser_common.serde import EventSerde
from alchemiser_common.topics import DLQ_TOPICS
from alchemiser_devtools.stack import TRADING_SERVICES, Stack, StackError

__all__ = ["WORKFLOW_TIMEOUT_S", "PipelineWorkflow", "start_stack"]

WORKFLOW_TIMEOUT_S = 120.0
"""A session's workflow that has no outcome after this long stops the backtest."""
_DELIVERY_TIMEOUT_S = 30.0
_READ_BATCH = 200
_READ_WAIT_S = 0.05
_DEAD_LETTER_WAIT_MS = 100
_CLOCK_SLACK_MS = 50
_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())
_log.propagate = False
_QUIET = {"log_level": 0}


def start_stack(
    run_dir: Path,
    dataset_dir: Path,
    *,
    strategies_dir: Path,
    weights: Mapping[str, str],
    exchange_env: Mapping[str, str],
    execution_env: Mapping[str, str],
    kafka_address: str | None = None,
    registry_address: str | None = None,
) -> Stack:
    """The started stack under ``run_dir`` (stopped again if it fails to start); on the given
    Kafka cluster and schema registry instead of its own when they are given."""
    strategy = {
        "ALCHEMISER_STRATEGY__STRATEGIES_DIR": str(strategies_dir),
        "ALCHEMISER_STRATEGY__WEIGHTS": json.dumps(dict(weights)),
    }
    quiet = {"ALCHEMISER_OBSERVABILITY__LOG_LEVEL": "WARNING"}
    stack = Stack(
        run_dir,
        dataset_dir=dataset_dir,
        extra_env={
            "exchange": dict(exchange_env),
            "strategy": {**strategy, **quiet},
            "portfolio": quiet,
            "execution": {**execution_env, **quiet},
        },
        kafka_address=kafka_address,
        registry_address=registry_address,
        services=TRADING_SERVICES,  # a backtest keeps its own books: no ledger
        # on a given cluster: consumer groups, transactional ids and inboxes of this run only
        service_suffix=None if kafka_address is None else f"backtest-{uuid.uuid4().hex[:12]}",
    )
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    return stack


def _produced_before(record: Message, since_ms: int) -> bool:
    """Whether ``record``'s producer stamped it before ``since_ms`` (epoch milliseconds)."""
    kind, stamp = record.timestamp()
    return bool(kind != TIMESTAMP_NOT_AVAILABLE and stamp < since_ms)


class PipelineWorkflow:
    """Publishes triggers to a started stack and waits for their outcomes (see the module)."""

    def __init__(self, stack: Stack, timeout_s: float = WORKFLOW_TIMEOUT_S) -> None:
        self._stack = stack
        self._timeout_s = timeout_s
        self._serde = EventSerde.from_url(stack.registry_url)
        self._producer = KafkaProducer(
            stack.kafka,
            overrides={
                **_QUIET,
                "linger.ms": 0,
                "message.timeout.ms": int(_DELIVERY_TIMEOUT_S * 1000),
            },
            logger=_log,
        )
        self._reader = self._reader_from_end(
            stack, [SignalGenerated.TOPIC, WorkflowCompleted.TOPIC, WorkflowFailed.TOPIC], {}
        )
        # A dead letter is rare and ends the run: it is looked for at a slower pace, sparing
        # the broker a fast fetch loop over six more partitions.
        self._dead_letters = self._reader_from_end(
            stack, list(DLQ_TOPICS), {"fetch.wait.max.ms": _DEAD_LETTER_WAIT_MS}
        )

    @staticmethod
    def _reader_from_end(
        stack: Stack, topics: list[str], overrides: dict[str, int]
    ) -> KafkaConsumer:
        """A consumer of ``topics`` from their current ends, resolved now (before any trigger
        is published): a given cluster may hold an earlier backtest's events of the same
        workflow ids."""
        reader = KafkaConsumer(
            stack.kafka,
            group_id=f"alchemiser-backtest-{uuid.uuid4().hex}",
            overrides={**_QUIET, **overrides},
            logger=_log,
        )
        ends = []
        for partition in reader.assign_from_beginning(topics):
            marks = reader.get_watermark_offsets(partition)
            offset = marks[1] if marks is not None else OFFSET_BEGINNING
            ends.append(TopicPartition(partition.topic, partition.partition, offset))
        reader.client.assign(ends)
        return reader

    def close(self) -> None:
        """Close the Kafka clients (the stack is the caller's to stop)."""
        self._producer.close()
        self._reader.close()
        self._dead_letters.close()

    def _publish(self, trigger: WorkflowStarted) -> list[str]:
        """Send ``trigger`` without waiting for the broker's acknowledgement (the wait for the
        outcome covers it); the returned list receives a delivery error if there is one."""
        errors: list[str] = []

        def delivered(error: object, _message: object) -> None:
            if error is not None:
                errors.append(str(error))

        self._producer.produce(
            trigger.TOPIC,
            value=self._serde.serialize(trigger),
            key=trigger.account_id.encode(),
            headers=[
                ("event_type", trigger.event_type.encode()),
                ("event_id", str(trigger.event_id).encode()),
                ("correlation_id", str(trigger.correlation_id).encode()),
            ],
            on_delivery=delivered,
        )
        return errors

    def _check_delivery(self, trigger: WorkflowStarted, errors: list[str]) -> None:
        """Serve the trigger's delivery report; a failed delivery stops the backtest."""
        self._producer.poll(0)
        if errors:
            raise StackError(f"could not publish the trigger of {trigger.as_of}: {errors[0]}")

    def run(self, trigger: WorkflowStarted) -> Outcome:
        """Publish ``trigger`` and wait for its workflow's outcome."""
        wanted = str(trigger.correlation_id).encode()
        # records produced before this trigger (an earlier backtest's on a given cluster, with
        # the same workflow ids) are not this run's: their producers stamped them earlier
        since_ms = int(time.time() * 1000) - _CLOCK_SLACK_MS
        delivery_errors = self._publish(trigger)
        signal: SignalGenerated | None = None
        ended: Outcome | None = None
        deadline = time.monotonic() + self._timeout_s
        checked = time.monotonic()
        while True:
            self._check_delivery(trigger, delivery_errors)
            # not consume(_READ_BATCH, ...): it would hold the outcome until the wait ends
            records = take_records(self._dead_letters, _READ_BATCH, 0)
            records += take_records(self._reader, _READ_BATCH, _READ_WAIT_S)
            for record in records:
                if record.error() is not None:
                    continue
                headers = {
                    name: value if isinstance(value, bytes) else str(value).encode()
                    for name, value in cast("list[tuple[str, bytes | str]]", record.headers() or [])
                }
                if headers.get("correlation_id") != wanted or _produced_before(record, since_ms):
                    continue
                topic = str(record.topic())
                if topic in DLQ_TOPICS:
                    reason = (headers.get("dlq.reason") or b"?").decode(errors="replace")
                    return Outcome(f"failed: dead-lettered: {reason}", signal)
                event = self._serde.deserialize(topic, record.value())
                if isinstance(event, SignalGenerated):
                    signal = event
                elif isinstance(event, WorkflowFailed):
                    ended = Outcome(f"failed: {event.failure_step.value}: {event.reason}", None)
                    if event.failure_step.value == "strategy":
                        return ended
                elif isinstance(event, WorkflowCompleted):
                    ended = Outcome("completed", None)
            # the signal's topic may be read after the outcome's: an outcome past the strategy
            # step waits for its signal (the allocations of the session)
            if ended is not None and signal is not None:
                return Outcome(ended.outcome, signal)
            now = time.monotonic()
            if now > deadline:
                raise StackError(
                    f"the workflow of {trigger.as_of} did not finish within "
                    f"{self._timeout_s:.0f} s; see the service logs in {self._stack.run_dir}"
                )
            if now - checked > 1.0:
                self._stack.check_alive()
                checked = now

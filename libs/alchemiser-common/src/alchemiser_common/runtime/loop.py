"""The processing loop and its commit protocol: exactly one effect per input.

Kafka delivers at least once (and the embedded broker even shows aborted records), so the loop
is correct under plain at-least-once delivery and uses transactions to narrow duplicates:

* the consumer runs with ``enable.auto.commit=false`` and ``isolation.level=read_committed``;
* one transactional producer per process commits the outputs and the input offsets together;
* the inbox table (primary key ``(consumer, dedupe_key)``) makes the database effect of an input
  happen once, and stores the serialised outputs so a redelivered input re-emits them byte for
  byte (same event ids) instead of running again.

See :meth:`ProcessingLoop.process_batch` for the protocol, step by step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog

from alchemiser_common.errors import AlchemiserError, TransientError
from alchemiser_common.events import Event
from alchemiser_common.inbox import (
    Claim,
    ClaimOutcome,
    ClaimRequest,
    InboxBatch,
    InboxStore,
    StoredOutput,
)
from alchemiser_common.kafka.clients import KafkaConsumer, KafkaProducer
from alchemiser_common.observability.logging import bind_event_context
from alchemiser_common.observability.metrics import Metrics
from alchemiser_common.observability.tracing import consume_span, inject_headers
from alchemiser_common.runtime.dlq import DeadLetterReason
from alchemiser_common.runtime.handlers import (
    EventHandlerRegistry,
    HandlerContext,
    InvalidEventError,
)
from alchemiser_common.runtime.inputs import Input, content_hash, decode, dedupe_key
from alchemiser_common.runtime.transactions import (
    AbortRequiredError,
    FatalRuntimeError,
    KafkaTransaction,
)
from alchemiser_common.serde import EventSerde

__all__ = [
    "FatalRuntimeError",
    "LoopConfig",
    "ProcessingLoop",
    "ProtocolStep",
    "content_hash",
    "dedupe_key",
]

_log = structlog.get_logger("alchemiser.runtime")


class ProtocolStep(StrEnum):
    """Named points of the commit protocol, used by the crash tests' pause hook."""

    BEFORE_DB_COMMIT = "before_db_commit"
    AFTER_DB_COMMIT = "after_db_commit"
    AFTER_KAFKA_COMMIT = "after_kafka_commit"


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """Tunables of the loop."""

    consumer_name: str
    batch_size: int = 100
    poll_timeout_s: float = 0.5
    handler_attempts: int = 3
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0


class ProcessingLoop:
    """Consume, handle, record and produce, with one documented commit protocol."""

    def __init__(
        self,
        *,
        config: LoopConfig,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        serde: EventSerde,
        inbox: InboxStore,
        registry: EventHandlerRegistry,
        metrics: Metrics,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        pause_at: Callable[[ProtocolStep], None] = lambda step: None,
    ) -> None:
        self._config = config
        self._consumer = consumer
        self._serde = serde
        self._inbox = inbox
        self._registry = registry
        self._metrics = metrics
        self._now = now
        self._pause_at = pause_at
        self._stopping = threading.Event()
        self._transaction = KafkaTransaction(consumer, producer)
        self._backoff_s = config.backoff_initial_s
        self._unpublished: list[str] = []
        self._after_commit: list[Callable[[], None]] = []

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish the current batch and return (safe from a signal handler)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping.is_set()

    def on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        """Rebalance callback: a revoked partition must not keep an open transaction."""
        if self._transaction.open:
            _log.warning("partitions revoked mid-transaction; aborting", count=len(partitions))
            self._abort_and_rewind()
        for partition in partitions:
            self._metrics.forget_partition(partition.topic, partition.partition)

    def run(self) -> None:
        """Process batches until :meth:`stop`; raise :class:`FatalRuntimeError` on fatal errors."""
        while not self._stopping.is_set():
            records = self._consumer.consume(
                num_messages=self._config.batch_size, timeout=self._config.poll_timeout_s
            )
            batch = [record for record in records if self._usable(record)]
            if not batch:
                continue
            try:
                self.process_batch(batch)
                self._backoff_s = self._config.backoff_initial_s
            except TransientError as err:
                delay = self._backoff_s
                self._backoff_s = min(self._backoff_s * 2, self._config.backoff_max_s)
                self._metrics.inbox_retry.inc()
                _log.warning(
                    "infrastructure unavailable; aborting, the batch will be reprocessed",
                    error=str(err),
                    retry_in_s=round(delay, 2),
                )
                self._abort_and_rewind()
                self._stopping.wait(delay)

    def _usable(self, record: Any) -> bool:
        error = record.error()
        if error is None:
            return True
        # Per-record errors (unknown topic not created yet, partition EOF, ...) are reported
        # and librdkafka carries on; only an error librdkafka flags fatal ends the process.
        if error.fatal():
            raise FatalRuntimeError(f"fatal consumer error: {error}")
        _log.warning("consumer error; librdkafka keeps retrying", error=str(error))
        return False

    # -- the commit protocol ---------------------------------------------------------------
    def process_batch(self, records: Sequence[Any]) -> None:
        """Handle a batch of records: one database transaction, then one Kafka transaction.

        1. Decode every record (a record that cannot be decoded becomes a dead-letter output).
        2. Open ONE database transaction for the batch and claim every input's inbox row
           ``(consumer, event_type:correlation_id)`` with one multi-row insert; the primary key
           decides. NEW: run the handlers (their state writes use the same transaction) and
           serialise their outputs. DUPLICATE (same content hash): the stored outputs, or nothing
           if they are known to be published. CONFLICT (different content hash): a dead-letter
           output with reason ``conflict``. Store the outputs with their rows and commit: state,
           inbox rows and outputs become durable together. A handler that rejects its input
           (``InvalidEventError``) or keeps failing rolls the batch back; the batch is redone
           with that input dead-lettered.
        3. ``begin_transaction`` and produce every output, in input order.
        4. ``send_offsets_to_transaction`` with the consumer's positions (last processed + 1)
           and its group metadata.
        5. ``commit_transaction``: outputs and offsets become visible together.
        6. Mark the batch's inbox rows published, so a later duplicate re-emits nothing. A crash
           before this step only means a duplicate re-emits the stored (identical) outputs.

        Error classes: a transient infrastructure error (database or registry down) raises
        :class:`TransientError`; :meth:`run` aborts any open transaction, rewinds to the
        committed offsets and retries after a backoff. A Kafka error that is retriable retries
        the same call; one that requires abort aborts and rewinds (the redelivered inputs find
        their inbox rows and re-emit the same bytes); a fatal (or fenced) one raises
        :class:`FatalRuntimeError`. A crash anywhere leaves either nothing committed or inbox
        rows whose stored outputs are re-emitted: one effect per input.
        """
        inputs = [decode(record, self._serde, self._registry) for record in records]
        results = self._database_phase(inputs)
        self._kafka_phase([output for outputs in results for output in outputs])

    def _database_phase(self, inputs: Sequence[Input]) -> list[list[StoredOutput]]:
        """Step 2, redone with a failing input dead-lettered until the batch commits."""
        poisoned: dict[int, tuple[str, str | BaseException]] = {}
        attempts: dict[int, int] = {}
        while True:
            try:
                return self._database_transaction(inputs, poisoned)
            except _HandlerFailedError as failed:
                index, error = failed.index, failed.error
                if isinstance(error, InvalidEventError):
                    poisoned[index] = (DeadLetterReason.HANDLER_REJECTED, error)
                    continue
                attempts[index] = attempts.get(index, 0) + 1
                if attempts[index] >= self._config.handler_attempts:
                    _log.error(
                        "handler failed repeatedly; dead-lettering",
                        attempts=attempts[index],
                        error=repr(error),
                    )
                    poisoned[index] = (DeadLetterReason.HANDLER_ERROR, error)
                else:
                    _log.warning(
                        "handler failed; retrying", attempt=attempts[index], error=repr(error)
                    )

    def _database_transaction(
        self, inputs: Sequence[Input], poisoned: dict[int, tuple[str, str | BaseException]]
    ) -> list[list[StoredOutput]]:
        consumer = self._config.consumer_name
        results: list[list[StoredOutput]] = [[] for _ in inputs]
        self._unpublished = []
        self._after_commit = []
        seen: dict[str, tuple[str, ClaimOutcome]] = {}
        with self._inbox.batch(consumer) as batch:
            claims = batch.claim_many(
                [
                    ClaimRequest(
                        dedupe_key=item.dedupe_key,
                        content_hash=content_hash(item.event),
                        event_id=str(item.event.event_id),
                        topic=item.topic,
                        partition=item.partition,
                        offset=item.offset,
                    )
                    for index, item in enumerate(inputs)
                    if item.event is not None and index not in poisoned
                ]
            )
            for index, item in enumerate(inputs):
                failure = item.failure or poisoned.get(index)
                if failure is not None or item.event is None:
                    reason, error = failure or ("undecodable", "no event")
                    results[index] = self._dead(item, reason, error)
                    continue
                event, key, digest = item.event, item.dedupe_key, content_hash(item.event)
                if key in seen:  # a second copy inside this batch
                    first_digest, first_outcome = seen[key]
                    conflicting = digest != first_digest or first_outcome is ClaimOutcome.CONFLICT
                    results[index] = (
                        self._conflict(item) if conflicting else self._duplicate_in_flight(item)
                    )
                    continue
                claim = claims[key]
                seen[key] = (digest, claim.outcome)
                if claim.outcome is ClaimOutcome.CONFLICT:
                    results[index] = self._conflict(item)
                elif claim.outcome is ClaimOutcome.DUPLICATE:
                    results[index] = self._duplicate(item, claim)
                else:
                    results[index] = self._handle(index, item, event, batch)
            self._pause_at(ProtocolStep.BEFORE_DB_COMMIT)
        self._pause_at(ProtocolStep.AFTER_DB_COMMIT)
        return results

    def _handle(
        self, index: int, item: Input, event: Event, batch: InboxBatch
    ) -> list[StoredOutput]:
        started = time.perf_counter()
        context = HandlerContext(
            consumer=self._config.consumer_name, connection=batch.connection, now=self._now
        )
        outputs: list[StoredOutput] = []
        with (
            bind_event_context(
                event_id=str(event.event_id),
                event_type=event.event_type,
                correlation_id=str(event.correlation_id),
                causation_id=str(event.causation_id) if event.causation_id else None,
                account_id=event.account_id,
            ),
            consume_span(item.topic, event.event_type, item.headers),
        ):
            try:
                for handler in self._registry.handlers_for(event.event_type):
                    outputs.extend(self._stored(produced) for produced in handler(event, context))
            except TransientError:
                raise
            except Exception as err:
                raise _HandlerFailedError(index, err) from err
        batch.record_outputs(item.dedupe_key, outputs)
        self._unpublished.append(item.dedupe_key)
        elapsed_ms = (time.perf_counter() - started) * 1000
        self._after_commit.append(lambda: self._observe_handled(item, event, elapsed_ms))
        return outputs

    def _observe_handled(self, item: Input, event: Event, elapsed_ms: float) -> None:
        self._metrics.event_handler_latency_ms.labels(
            topic=item.topic, event_type=event.event_type
        ).observe(elapsed_ms)
        self._count(item, "handled")

    def _duplicate(self, item: Input, claim: Claim) -> list[StoredOutput]:
        self._after_commit.append(lambda: self._count_duplicate(item))
        if claim.stored_published:
            return []
        self._unpublished.append(item.dedupe_key)
        _log.info("duplicate input; re-emitting stored outputs", outputs=len(claim.stored_outputs))
        return list(claim.stored_outputs)

    def _duplicate_in_flight(self, item: Input) -> list[StoredOutput]:
        self._after_commit.append(lambda: self._count_duplicate(item))
        return []

    def _count_duplicate(self, item: Input) -> None:
        assert item.event is not None
        self._metrics.dedupe_hits.labels(
            consumer=self._config.consumer_name, event_type=item.event.event_type
        ).inc()
        self._count(item, "duplicate")

    def _conflict(self, item: Input) -> list[StoredOutput]:
        event = item.event
        assert event is not None

        def count() -> None:
            self._metrics.dedupe_conflicts.labels(
                consumer=self._config.consumer_name, event_type=event.event_type
            ).inc()

        self._after_commit.append(count)
        return self._dead(
            item,
            DeadLetterReason.CONFLICT,
            f"a different {event.event_type} was already handled for workflow "
            f"{event.correlation_id}",
        )

    def _dead(self, item: Input, reason: str, error: str | BaseException) -> list[StoredOutput]:
        def count() -> None:
            self._metrics.dlq_messages.labels(topic=item.topic, reason=str(reason)).inc()
            self._count(item, "dead_lettered")

        self._after_commit.append(count)
        _log.warning(
            "dead-lettering record",
            topic=item.topic,
            partition=item.partition,
            offset=item.offset,
            reason=str(reason),
            error=str(error),
        )
        return [item.dead_letter(reason, error, self._config.consumer_name)]

    def _kafka_phase(self, outputs: Sequence[StoredOutput]) -> None:
        """Steps 3-6: produce, send offsets, commit, mark published."""
        try:
            self._transaction.begin()
            for output in outputs:
                self._transaction.produce(output)
            positions = self._transaction.commit()
        except AbortRequiredError as err:
            _log.warning("transaction must abort; rewinding to committed offsets", error=str(err))
            self._abort_and_rewind()
            return
        self._metrics.transactions.labels(outcome="committed").inc()
        self._mark_published()
        # Exact on Apache Kafka as of the last fetch; indicative only on the embedded broker,
        # whose watermarks are wrong (PLATFORM.md).
        for topic, partition, lag in self._transaction.lag(positions):
            self._metrics.set_consumer_lag(topic, partition, lag)
        for observe in self._after_commit:
            observe()
        self._after_commit = []
        for output in outputs:
            event_type = dict(output.headers).get("event_type", b"dead_letter").decode()
            self._metrics.event_published.labels(topic=output.topic, event_type=event_type).inc()
        self._pause_at(ProtocolStep.AFTER_KAFKA_COMMIT)

    def _abort_and_rewind(self) -> None:
        """Abort the open Kafka transaction (if any) and seek back to the committed offsets."""
        if self._transaction.abort():
            self._metrics.transactions.labels(outcome="aborted").inc()
        self._after_commit = []
        self._transaction.rewind()

    def _mark_published(self) -> None:
        """Step 6 (an optimisation, not part of correctness): remember the outputs are out."""
        try:
            self._inbox.mark_published(self._config.consumer_name, self._unpublished)
        except TransientError as err:
            _log.warning(
                "could not mark inputs published; a redelivery will re-emit", error=str(err)
            )
        self._unpublished = []

    def _count(self, item: Input, outcome: str) -> None:
        event_type = item.event.event_type if item.event is not None else "unknown"
        self._metrics.event_consumed.labels(
            topic=item.topic, event_type=event_type, outcome=outcome
        ).inc()

    def _stored(self, event: Event) -> StoredOutput:
        headers = [
            ("event_type", event.event_type.encode()),
            ("event_id", str(event.event_id).encode()),
            ("correlation_id", str(event.correlation_id).encode()),
        ]
        return StoredOutput(
            topic=event.TOPIC,
            key=event.account_id.encode(),
            value=self._serde.serialize(event),
            headers=tuple(inject_headers(headers)),
        )


class _HandlerFailedError(AlchemiserError):
    """Internal: the handler of input ``index`` raised; the batch's database work is undone."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(f"handler failed on input {index}: {error!r}")
        self.index = index
        self.error = error

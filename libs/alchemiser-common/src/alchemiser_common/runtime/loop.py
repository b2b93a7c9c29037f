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

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog

from alchemiser_common.errors import AlchemiserError, DeserializationError, TransientError
from alchemiser_common.events import Event
from alchemiser_common.events.hashing import canonical_json
from alchemiser_common.inbox import ClaimOutcome, InboxStore, StoredOutput
from alchemiser_common.kafka.clients import (
    KafkaConsumer,
    KafkaErrorClass,
    KafkaProducer,
    classify_kafka_error,
)
from alchemiser_common.observability.logging import bind_event_context
from alchemiser_common.observability.metrics import Metrics
from alchemiser_common.observability.tracing import consume_span, inject_headers
from alchemiser_common.runtime.dlq import DeadLetterReason, dead_letter
from alchemiser_common.runtime.handlers import (
    EventHandlerRegistry,
    HandlerContext,
    InvalidEventError,
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

#: How long one blocking Kafka call may take before we treat it as failed. It must stay well
#: below ``transaction.timeout.ms`` (60 s) so a slow call cannot outlive its transaction.
KAFKA_CALL_TIMEOUT_S = 30.0
#: How often a retriable Kafka error is retried before it is treated as fatal.
MAX_RETRIABLE_ATTEMPTS = 5


class FatalRuntimeError(AlchemiserError):
    """The process must exit non-zero (fenced, fatal producer error); Kubernetes restarts it."""


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


def dedupe_key(event: Event) -> str:
    """The inbox key of an input: one effect per (event type, workflow)."""
    return f"{event.event_type}:{event.correlation_id}"


def content_hash(event: Event) -> str:
    """sha256 of the event's canonical content; a different hash for one key is a conflict."""
    return hashlib.sha256(canonical_json(event.model_dump(mode="python"))).hexdigest()


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
        self._producer = producer
        self._serde = serde
        self._inbox = inbox
        self._registry = registry
        self._metrics = metrics
        self._now = now
        self._pause_at = pause_at
        self._stopping = threading.Event()
        self._in_transaction = False
        self._backoff_s = config.backoff_initial_s
        self._unpublished: list[str] = []

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
        if self._in_transaction:
            _log.warning("partitions revoked mid-transaction; aborting", count=len(partitions))
            self._abort_and_rewind(rewind=False)

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
                self._abort_and_rewind(rewind=True)
                self._stopping.wait(delay)

    def _usable(self, record: Any) -> bool:
        error = record.error()
        if error is None:
            return True
        if classify_kafka_error(error) is KafkaErrorClass.FATAL:
            raise FatalRuntimeError(f"fatal consumer error: {error}")
        _log.warning("consumer error; continuing", error=str(error))
        return False

    # -- the commit protocol ---------------------------------------------------------------
    def process_batch(self, records: Sequence[Any]) -> None:
        """Handle a batch of records in one Kafka transaction. The commit protocol:

        1. ``begin_transaction`` on the process's transactional producer.
        2. Per record, in offset order: decode (failures become dead-letter outputs); open one
           database transaction and claim the inbox row ``(consumer, event_type:correlation_id)``
           by its primary key. NEW: run the handlers, serialise their outputs, store them with
           the row, and commit the database transaction (state, inbox row and outputs together).
           DUPLICATE (same content hash): take the stored outputs, do nothing else. CONFLICT
           (different content hash): a dead-letter output with reason ``conflict``.
        3. Produce every output of the record into the Kafka transaction.
        4. ``send_offsets_to_transaction`` with the consumer's positions (last processed + 1) and
           its group metadata.
        5. ``commit_transaction``: outputs and offsets become visible together.
        6. Mark the batch's inbox rows published, so a later duplicate re-emits nothing. A crash
           before this step only means a duplicate re-emits the stored (identical) outputs.

        Error classes: a transient infrastructure error in step 2 (database or registry down)
        raises :class:`TransientError`; :meth:`run` aborts, rewinds to the committed offsets and
        retries after a backoff — records whose database commit already happened are then found
        in the inbox and re-emitted. A Kafka error that is retriable retries the same call; one
        that requires abort aborts and rewinds; a fatal (or fenced) one raises
        :class:`FatalRuntimeError`. A crash anywhere leaves either nothing committed (the batch is
        redelivered) or inbox rows whose stored outputs are re-emitted: one effect per input.
        """
        self._kafka_call(self._producer.begin_transaction)
        self._in_transaction = True
        self._unpublished = []
        produced: list[StoredOutput] = []
        try:
            for record in records:
                for output in self._process_record(record):
                    self._produce(output)
                    produced.append(output)
            positions = self._consumer.position(self._consumer.assignment())
            metadata = self._consumer.consumer_group_metadata()
            self._kafka_call(
                lambda: self._producer.send_offsets_to_transaction(
                    positions, metadata, KAFKA_CALL_TIMEOUT_S
                )
            )
            self._kafka_call(lambda: self._producer.commit_transaction(KAFKA_CALL_TIMEOUT_S))
        except _AbortRequiredError as err:
            _log.warning("transaction must abort; rewinding to committed offsets", error=str(err))
            self._abort_and_rewind(rewind=True)
            return
        self._in_transaction = False
        self._metrics.transactions.labels(outcome="committed").inc()
        self._mark_published()
        for output in produced:
            event_type = dict(output.headers).get("event_type", b"dead_letter").decode()
            self._metrics.event_published.labels(topic=output.topic, event_type=event_type).inc()
        self._pause_at(ProtocolStep.AFTER_KAFKA_COMMIT)

    def _process_record(self, record: Any) -> list[StoredOutput]:
        topic, partition, offset = record.topic(), record.partition(), record.offset()
        headers: list[tuple[str, bytes]] = list(record.headers() or [])

        def to_dlq(
            reason: DeadLetterReason | str, error: BaseException | str
        ) -> list[StoredOutput]:
            self._metrics.dlq_messages.labels(topic=topic, reason=str(reason)).inc()
            self._metrics.event_consumed.labels(
                topic=topic, event_type="unknown", outcome="dead_lettered"
            ).inc()
            _log.warning(
                "dead-lettering record",
                topic=topic,
                partition=partition,
                offset=offset,
                reason=str(reason),
                error=str(error),
            )
            return [
                dead_letter(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    key=record.key(),
                    value=record.value(),
                    headers=headers,
                    reason=reason,
                    error=error,
                    consumer=self._config.consumer_name,
                )
            ]

        try:
            event = self._serde.deserialize(topic, record.value())
        except DeserializationError as err:
            return to_dlq(err.reason, err)
        if not self._registry.registrations_for(event.event_type):
            return to_dlq(
                DeadLetterReason.UNEXPECTED_EVENT_TYPE, f"no handler for {event.event_type}"
            )

        with (
            bind_event_context(
                event_id=str(event.event_id),
                event_type=event.event_type,
                correlation_id=str(event.correlation_id),
                causation_id=str(event.causation_id) if event.causation_id else None,
                account_id=event.account_id,
            ),
            consume_span(topic, event.event_type, headers),
        ):
            return self._handle_with_retries(event, record, to_dlq)

    def _handle_with_retries(
        self,
        event: Event,
        record: Any,
        to_dlq: Callable[[DeadLetterReason | str, BaseException | str], list[StoredOutput]],
    ) -> list[StoredOutput]:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._handle_once(event, record, to_dlq)
            except TransientError:
                raise
            except InvalidEventError as err:
                return to_dlq(DeadLetterReason.HANDLER_REJECTED, err)
            except Exception as err:  # a bug in a handler: bounded retries, then the DLQ
                if attempt >= self._config.handler_attempts:
                    _log.exception("handler failed repeatedly; dead-lettering", attempts=attempt)
                    return to_dlq(DeadLetterReason.HANDLER_ERROR, err)
                _log.warning("handler failed; retrying", attempt=attempt, error=repr(err))

    def _handle_once(
        self,
        event: Event,
        record: Any,
        to_dlq: Callable[[DeadLetterReason | str, BaseException | str], list[StoredOutput]],
    ) -> list[StoredOutput]:
        consumer = self._config.consumer_name
        started = time.perf_counter()
        with self._inbox.transaction(
            consumer,
            dedupe_key(event),
            content_hash(event),
            event_id=str(event.event_id),
            topic=record.topic(),
            partition=record.partition(),
            offset=record.offset(),
        ) as tx:
            if tx.outcome is ClaimOutcome.DUPLICATE:
                self._metrics.dedupe_hits.labels(
                    consumer=consumer, event_type=event.event_type
                ).inc()
                self._count(event, record, "duplicate")
                if tx.stored_published or dedupe_key(event) in self._unpublished:
                    _log.info("duplicate input; its outputs are already published or in flight")
                    return []
                _log.info(
                    "duplicate input; re-emitting stored outputs", outputs=len(tx.stored_outputs)
                )
                self._unpublished.append(dedupe_key(event))
                return list(tx.stored_outputs)
            if tx.outcome is ClaimOutcome.CONFLICT:
                self._metrics.dedupe_conflicts.labels(
                    consumer=consumer, event_type=event.event_type
                ).inc()
                return to_dlq(
                    DeadLetterReason.CONFLICT,
                    f"a different {event.event_type} was already handled for workflow "
                    f"{event.correlation_id}",
                )
            context = HandlerContext(consumer=consumer, connection=tx.connection, now=self._now)
            outputs: list[StoredOutput] = []
            for handler in self._registry.handlers_for(event.event_type):
                for produced in handler(event, context):
                    outputs.append(self._stored(produced))
            tx.record_outputs(outputs)
            self._pause_at(ProtocolStep.BEFORE_DB_COMMIT)
        self._unpublished.append(dedupe_key(event))
        self._pause_at(ProtocolStep.AFTER_DB_COMMIT)
        self._metrics.event_handler_latency_ms.labels(
            topic=record.topic(), event_type=event.event_type
        ).observe((time.perf_counter() - started) * 1000)
        self._count(event, record, "handled")
        return outputs

    def _mark_published(self) -> None:
        """Step 6 (an optimisation, not part of correctness): remember the outputs are out."""
        try:
            self._inbox.mark_published(self._config.consumer_name, self._unpublished)
        except TransientError as err:
            _log.warning(
                "could not mark inputs published; a redelivery will re-emit", error=str(err)
            )
        self._unpublished = []

    def _count(self, event: Event, record: Any, outcome: str) -> None:
        self._metrics.event_consumed.labels(
            topic=record.topic(), event_type=event.event_type, outcome=outcome
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

    # -- Kafka calls and their error classes ---------------------------------------------
    def _produce(self, output: StoredOutput) -> None:
        while True:
            try:
                self._producer.produce(
                    output.topic, value=output.value, key=output.key, headers=list(output.headers)
                )
                break
            except BufferError:
                self._producer.poll(0.1)  # the local queue is full: let deliveries drain
            except Exception as err:
                self._raise_classified(err)
        self._producer.poll(0)

    def _kafka_call(self, call: Callable[[], None]) -> None:
        for _attempt in range(MAX_RETRIABLE_ATTEMPTS):
            try:
                call()
                return
            except Exception as err:
                if self._classify(err) is not KafkaErrorClass.RETRIABLE:
                    self._raise_classified(err)
                _log.warning("retriable Kafka error; retrying the same call", error=str(err))
        raise FatalRuntimeError("a retriable Kafka call kept failing; exiting to be restarted")

    @staticmethod
    def _classify(err: Exception) -> KafkaErrorClass | None:
        kafka_error = err.args[0] if err.args else None
        if kafka_error is None or not hasattr(kafka_error, "code"):
            return None
        return classify_kafka_error(kafka_error)

    def _raise_classified(self, err: Exception) -> None:
        kind = self._classify(err)
        if kind is KafkaErrorClass.ABORTABLE or kind is KafkaErrorClass.RETRIABLE:
            raise _AbortRequiredError(str(err)) from err
        raise FatalRuntimeError(f"fatal Kafka error: {err}") from err

    def _abort_and_rewind(self, *, rewind: bool) -> None:
        try:
            self._producer.abort_transaction(KAFKA_CALL_TIMEOUT_S)
        except Exception as err:
            if self._classify(err) is KafkaErrorClass.FATAL or self._classify(err) is None:
                raise FatalRuntimeError(f"abort_transaction failed: {err}") from err
        self._in_transaction = False
        self._metrics.transactions.labels(outcome="aborted").inc()
        if rewind:
            self._rewind()

    def _rewind(self) -> None:
        assignment = self._consumer.assignment()
        if not assignment:
            return
        for committed in self._consumer.committed(assignment, timeout=KAFKA_CALL_TIMEOUT_S):
            if committed.offset < 0:
                committed.offset = _OFFSET_BEGINNING
            self._consumer.seek(committed)


_OFFSET_BEGINNING = -2


class _AbortRequiredError(AlchemiserError):
    """Internal: a Kafka error that requires aborting the transaction and rewinding."""

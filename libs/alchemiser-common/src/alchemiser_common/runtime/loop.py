"""The processing loop and its commit protocol (v2): exactly one effect per input.

Kafka delivers at least once (and the embedded broker even shows aborted records), so the loop
is correct under plain at-least-once delivery and uses transactions to narrow duplicates:

* the consumer runs with ``enable.auto.commit=false`` and ``isolation.level=read_committed``;
* one transactional producer per process commits the outputs and the input offsets together;
* the inbox table (primary key ``(consumer, dedupe_key)``) makes the effect of an input happen
  once, and stores the serialised outputs so a redelivered input re-emits them byte for byte
  (same event ids) instead of running again.

The protocol, per batch (:meth:`ProcessingLoop.process_batch`), with a fresh
:class:`~alchemiser_common.runtime.checkpoint.Checkpoint`:

1. **Decode** every record. One that cannot be decoded, or has no handler, is dead-lettered.
2. **Look up** the batch's inbox keys (one read, no transaction kept open). A committed row
   with the same content hash is a DUPLICATE: its stored outputs are re-emitted (nothing if
   they are known to be published). Another hash is a CONFLICT: dead-lettered, alert metric.
3. **Handle** the remaining inputs in order with **no database transaction open**, each with
   its typed handler; serialise its outputs. A handler that rejects its input
   (``InvalidEventError``) or keeps failing (``handler_attempts``) dead-letters that input
   alone. A ``TransientError``, a stop request or the spent time budget
   (:data:`MAX_BATCH_HANDLING_S`) ends the batch early: the inputs handled so far (a prefix)
   are committed, the rest is consumed again.
4. **Record**: ONE short database transaction inserts the handled inputs' inbox rows
   (``ON CONFLICT DO NOTHING``; the primary key decides), runs each handler's unit of work in
   its own SAVEPOINT and stores the outputs. A row another instance inserted first (a lost
   race) becomes DUPLICATE and re-emits that instance's stored outputs; a failed unit of work
   dead-letters its input alone.
5. **Kafka transaction**: ``begin_transaction``, produce every output in input order,
   ``send_offsets_to_transaction`` with the prefix's offsets (last processed + 1 per
   partition) and the group metadata, ``commit_transaction``.
6. **Mark published** the inbox rows whose outputs were produced, so a later duplicate
   re-emits nothing. A crash before this only means a duplicate re-emits identical bytes.

Error classes: a transient infrastructure error (database or registry down) raises
:class:`TransientError`; :meth:`ProcessingLoop.run` aborts any open transaction, rewinds to
the committed offsets and retries after a backoff. A Kafka error that is retriable retries the
same call; one that requires abort aborts and rewinds (the redelivered inputs find their inbox
rows and re-emit the same bytes); a fatal (or fenced) one raises :class:`FatalRuntimeError`. A
crash anywhere leaves either nothing recorded or inbox rows whose stored outputs are
re-emitted: one effect per input. Handlers with external effects (orders) must be idempotent
by their own ids, since a handler may run again after a crash before step 4.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog

from alchemiser_common.errors import DeadLetterReason, TransientError
from alchemiser_common.events import Event, WorkflowCompleted, WorkflowFailed
from alchemiser_common.inbox import Claim, ClaimOutcome, InboxEntry, InboxStore, StoredOutput
from alchemiser_common.kafka.clients import KafkaConsumer, KafkaProducer, take_records
from alchemiser_common.observability.logging import bind_event_context
from alchemiser_common.observability.metrics import Metrics
from alchemiser_common.observability.tracing import consume_span, inject_headers
from alchemiser_common.runtime.checkpoint import Checkpoint
from alchemiser_common.runtime.handlers import (
    EventHandlerRegistry,
    HandlerContext,
    HandlerResult,
    InvalidEventError,
    NotReadyError,
)
from alchemiser_common.runtime.inputs import Input, decode
from alchemiser_common.runtime.limits import MAX_BATCH_HANDLING_S
from alchemiser_common.runtime.progress import LoopProgress
from alchemiser_common.runtime.transactions import (
    AbortRequiredError,
    FatalRuntimeError,
    KafkaTransaction,
)
from alchemiser_common.serde import EventSerde

__all__ = [
    "MAX_BATCH_HANDLING_S",
    "FatalRuntimeError",
    "LoopConfig",
    "ProcessingLoop",
    "ProtocolStep",
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
    max_batch_handling_s: float = MAX_BATCH_HANDLING_S


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
        progress: LoopProgress | None = None,
    ) -> None:
        self._config = config
        self._consumer = consumer
        self._serde = serde
        self._inbox = inbox
        self._registry = registry
        self._metrics = metrics
        self._context = HandlerContext(consumer=config.consumer_name, now=now)
        self._pause_at = pause_at
        self._stopping = threading.Event()
        self.progress = progress or LoopProgress()
        self._transaction = KafkaTransaction(consumer, producer, self.progress)
        self._backoff_s = config.backoff_initial_s

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish the current input, commit what is done and return."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping.is_set()

    @property
    def stop_requested(self) -> threading.Event:
        """The event :meth:`stop` sets (to wait on)."""
        return self._stopping

    def on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        """Rebalance callback: a revoked partition must not keep an open transaction."""
        if self._transaction.open:
            _log.warning("partitions revoked mid-transaction; aborting", count=len(partitions))
            self._abort_and_rewind()
        for partition in partitions:
            self._metrics.forget_partition(partition.topic, partition.partition)

    def _take(self) -> list[Any]:
        """The next batch: what the client has already fetched (up to ``batch_size``), else the
        first record to arrive within ``poll_timeout_s`` plus whatever came with it (see
        :func:`~alchemiser_common.kafka.take_records`: a lone record is not held for the whole
        poll timeout on every hop of a workflow)."""
        return take_records(self._consumer, self._config.batch_size, self._config.poll_timeout_s)

    def run(self) -> None:
        """Process batches until :meth:`stop`; raise :class:`FatalRuntimeError` on fatal errors."""
        while not self._stopping.is_set():
            records = self._take()
            self.progress.polled()
            batch = [record for record in records if self._usable(record)]
            if not batch:
                continue
            try:
                self.process_batch(batch)
                self._backoff_s = self._config.backoff_initial_s
            except TransientError as err:
                delay = self._backoff_s
                if isinstance(err, NotReadyError):
                    # a wait for another event, not an outage: retry soon, without growing
                    # the backoff, so a queue of waiting inputs drains at the pace of events
                    delay = self._config.backoff_initial_s
                    _log.info(
                        "an input waits for another event; its partition is retried later",
                        reason=str(err),
                        retry_in_s=round(delay, 2),
                    )
                else:
                    self._backoff_s = min(self._backoff_s * 2, self._config.backoff_max_s)
                    self._metrics.inbox_retry.inc()
                    _log.warning(
                        "infrastructure unavailable; what was handled is committed, the rest "
                        "will be reprocessed",
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

    # -- the commit protocol (see the module docstring) ------------------------------------
    def process_batch(self, records: Sequence[Any]) -> None:
        """Run steps 1-6 of the protocol for ``records`` (see the module docstring).

        Raises :class:`TransientError` after committing what was handled: a transient failure
        stops its input's partition (the inputs of other partitions go on); :meth:`run` then
        rewinds to the committed offsets and backs off.
        """
        checkpoint = Checkpoint([decode(r, self._serde, self._registry) for r in records])
        transient = self._handle_all(checkpoint)
        if checkpoint.processed:
            self._record(checkpoint)
            self._commit(checkpoint)
            if not checkpoint.complete and transient is None:
                self._transaction.rewind()  # the rest is consumed again by the next poll
        if transient is not None:
            raise transient

    # step 2 and 3
    def _handle_all(self, checkpoint: Checkpoint) -> TransientError | None:
        """Handle the inputs in order; the first transient failure, if any."""
        inputs = checkpoint.inputs
        hashes = {item.dead_key: item.value_hash for item in inputs}
        hashes.update({item.dedupe_key: item.content_hash for item in inputs if item.event})
        existing = self._inbox.lookup(self._config.consumer_name, hashes)
        seen: dict[str, tuple[str, ClaimOutcome]] = {}
        blocked: set[tuple[str, int]] = set()
        first_transient: TransientError | None = None
        deadline = time.monotonic() + self._config.max_batch_handling_s
        for index, item in enumerate(inputs):
            if checkpoint.processed and (self._stopping.is_set() or time.monotonic() > deadline):
                _log.info("ending the batch early", handled=index, left=len(inputs) - index)
                break
            partition = (item.topic, item.partition)
            if partition in blocked:
                continue
            transient = self._handle_one(checkpoint, index, item, existing, seen)
            if transient is not None:
                blocked.add(partition)
                first_transient = first_transient or transient
                continue
            checkpoint.processed.add(index)
        return first_transient

    def _handle_one(
        self,
        checkpoint: Checkpoint,
        index: int,
        item: Input,
        existing: dict[str, Claim],
        seen: dict[str, tuple[str, ClaimOutcome]],
    ) -> TransientError | None:
        """Process input ``index``; a transient failure is returned (it stops the partition)."""
        dead = existing.get(item.dead_key)
        if dead is not None:  # this very record was dead-lettered before: not again
            checkpoint.emit(index, self._claimed(checkpoint, item, item.dead_key, dead))
            return None
        if item.event is None:
            reason, error = item.failure or (DeadLetterReason.UNDECODABLE, "no event")
            self._dead(checkpoint, index, item, reason, error)
            return None
        key, digest = item.dedupe_key, item.content_hash
        if key in seen:  # a second copy inside this batch
            first_digest, first_outcome = seen[key]
            if digest != first_digest or first_outcome is ClaimOutcome.CONFLICT:
                self._conflict(checkpoint, index, item)
            else:
                self._count_duplicate(checkpoint, item)
            return None
        claim = existing.get(key)
        if claim is not None:
            seen[key] = (digest, claim.outcome)
            if claim.outcome is ClaimOutcome.CONFLICT:
                self._conflict(checkpoint, index, item)
            else:
                checkpoint.emit(index, self._claimed(checkpoint, item, key, claim))
            return None
        outcome = self._run_handler(checkpoint, index, item, item.event)
        if isinstance(outcome, InboxEntry):
            seen[key] = (digest, ClaimOutcome.NEW)
            checkpoint.entries[index] = outcome
            return None
        return outcome

    def _run_handler(
        self, checkpoint: Checkpoint, index: int, item: Input, event: Event
    ) -> InboxEntry | TransientError | None:
        """Run the handler (bounded retries): the entry to record, the transient failure that
        ends the batch, or ``None`` when the input was dead-lettered."""
        handler = self._registry.handler_for(event)
        assert handler is not None  # decode() dead-letters events without one
        started = time.perf_counter()
        attempt = 0
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
            while True:
                attempt += 1
                try:
                    result = handler(event, self._context)
                    if not isinstance(result, HandlerResult):
                        result = HandlerResult(events=tuple(result))
                    outputs = tuple(self._stored(produced) for produced in result.events)
                    break
                except TransientError as err:
                    return err
                except InvalidEventError as err:
                    self._dead(checkpoint, index, item, err.reason, err)
                    return None
                except Exception as err:
                    if attempt < self._config.handler_attempts:
                        _log.warning("handler failed; retrying", attempt=attempt, error=repr(err))
                        continue
                    _log.error("handler failed repeatedly; dead-lettering", attempts=attempt)
                    self._dead(checkpoint, index, item, DeadLetterReason.HANDLER_ERROR, err)
                    return None
        elapsed_ms = (time.perf_counter() - started) * 1000
        checkpoint.tally.handled(item.topic, event.event_type, elapsed_ms)
        for produced in result.events:
            if isinstance(produced, WorkflowCompleted | WorkflowFailed):
                checkpoint.tally.workflows_finished[workflow_labels(produced)] += 1
        return InboxEntry(
            dedupe_key=item.dedupe_key,
            content_hash=item.content_hash,
            event_id=str(event.event_id),
            topic=item.topic,
            partition=item.partition,
            offset=item.offset,
            outputs=outputs,
            state=result.state,
        )

    # step 4
    def _record(self, checkpoint: Checkpoint) -> None:
        """Record the batch's entries; dead letters found only now are recorded after them."""
        entries = dict(checkpoint.entries)
        if not entries:
            self._pause_at(ProtocolStep.BEFORE_DB_COMMIT)
            self._pause_at(ProtocolStep.AFTER_DB_COMMIT)
            return
        claims = self._inbox.record(
            self._config.consumer_name,
            list(entries.values()),
            before_commit=lambda: self._pause_at(ProtocolStep.BEFORE_DB_COMMIT),
        )
        self._pause_at(ProtocolStep.AFTER_DB_COMMIT)
        self._apply_claims(checkpoint, entries, claims)
        late = {
            index: checkpoint.entries[index]
            for index in entries
            if checkpoint.entries[index] is not entries[index]
        }
        if late:  # a failed unit of work or a lost race to a different input: dead letters
            claims = self._inbox.record(self._config.consumer_name, list(late.values()))
            self._apply_claims(checkpoint, late, claims)

    def _apply_claims(
        self, checkpoint: Checkpoint, entries: dict[int, InboxEntry], claims: dict[str, Claim]
    ) -> None:
        for index, entry in entries.items():
            item, claim = checkpoint.inputs[index], claims[entry.dedupe_key]
            if claim.outcome is ClaimOutcome.NEW:
                checkpoint.emit(index, entry.outputs)
                checkpoint.published_keys.append(entry.dedupe_key)
            elif claim.outcome is ClaimOutcome.STATE_FAILED:
                assert claim.error is not None
                self._dead(checkpoint, index, item, DeadLetterReason.HANDLER_ERROR, claim.error)
            elif claim.outcome is ClaimOutcome.CONFLICT and entry.dedupe_key != item.dead_key:
                self._conflict(checkpoint, index, item)
            else:
                _log.info("another instance recorded this input first", key=entry.dedupe_key)
                checkpoint.emit(index, self._claimed(checkpoint, item, entry.dedupe_key, claim))

    # steps 5 and 6
    def _commit(self, checkpoint: Checkpoint) -> None:
        outputs = checkpoint.ordered_outputs()
        try:
            self._transaction.begin()
            for output in outputs:
                self._transaction.produce(output)
            positions = self._transaction.commit(checkpoint.offsets())
        except AbortRequiredError as err:
            _log.warning("transaction must abort; rewinding to committed offsets", error=str(err))
            self._abort_and_rewind()
            return
        self._metrics.transactions.labels(outcome="committed").inc()
        self._mark_published(checkpoint.published_keys)
        # Exact on Apache Kafka as of the last fetch; indicative only on the embedded broker,
        # whose high watermarks are wrong.
        for topic, partition, lag in self._transaction.lag(positions):
            self._metrics.set_consumer_lag(topic, partition, lag)
        for output in outputs:
            event_type = dict(output.headers).get("event_type", b"dead_letter").decode()
            checkpoint.tally.published[(output.topic, event_type)] += 1
        checkpoint.tally.apply(self._metrics)
        self._pause_at(ProtocolStep.AFTER_KAFKA_COMMIT)

    def _abort_and_rewind(self) -> None:
        """Abort the open Kafka transaction (if any) and seek back to the committed offsets.

        While the broker is unreachable the committed offsets cannot be read: the rewind is
        retried with the loop's backoff until it succeeds (consuming on from an unknown
        position could skip records) or the loop is asked to stop (the next start resumes
        from the committed offsets anyway).
        """
        if self._transaction.abort():
            self._metrics.transactions.labels(outcome="aborted").inc()
        delay = self._config.backoff_initial_s
        while True:
            try:
                self._transaction.rewind()
                return
            except AbortRequiredError as err:
                if self._stopping.is_set():
                    return
                _log.warning(
                    "committed offsets unreadable (broker unreachable?); rewind retried",
                    error=str(err),
                    retry_in_s=round(delay, 2),
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, self._config.backoff_max_s)

    def _mark_published(self, keys: Sequence[str]) -> None:
        """Step 6 (an optimisation, not part of correctness): remember the outputs are out."""
        try:
            self._inbox.mark_published(self._config.consumer_name, keys)
        except TransientError as err:
            _log.warning(
                "could not mark inputs published; a redelivery will re-emit", error=str(err)
            )

    # -- outcomes ----------------------------------------------------------------------------
    def _claimed(
        self, checkpoint: Checkpoint, item: Input, key: str, claim: Claim
    ) -> list[StoredOutput]:
        """The outputs of an input whose ``key`` already has a row: its stored outputs."""
        self._count_duplicate(checkpoint, item)
        if claim.stored_published:
            return []
        checkpoint.published_keys.append(key)
        _log.info("duplicate input; re-emitting stored outputs", outputs=len(claim.stored_outputs))
        return list(claim.stored_outputs)

    def _count_duplicate(self, checkpoint: Checkpoint, item: Input) -> None:
        event_type = item.event.event_type if item.event is not None else "unknown"
        checkpoint.tally.dedupe_hits[(self._config.consumer_name, event_type)] += 1
        checkpoint.tally.consumed[(item.topic, event_type, "duplicate")] += 1

    def _conflict(self, checkpoint: Checkpoint, index: int, item: Input) -> None:
        event = item.event
        assert event is not None
        checkpoint.tally.dedupe_conflicts[(self._config.consumer_name, event.event_type)] += 1
        self._dead(
            checkpoint,
            index,
            item,
            DeadLetterReason.CONFLICT,
            f"a different {event.event_type} was already handled for workflow "
            f"{event.correlation_id}",
        )

    def _dead(
        self,
        checkpoint: Checkpoint,
        index: int,
        item: Input,
        reason: DeadLetterReason,
        error: str | BaseException,
    ) -> None:
        """Dead-letter input ``index``: its DLQ record is recorded under the record's own
        inbox key (:attr:`Input.dead_key`), so a redelivery re-emits nothing new."""
        event_type = item.event.event_type if item.event is not None else "unknown"
        checkpoint.tally.dlq_messages[(item.topic, reason.value)] += 1
        checkpoint.tally.consumed[(item.topic, event_type, "dead_lettered")] += 1
        _log.warning(
            "dead-lettering record",
            topic=item.topic,
            partition=item.partition,
            offset=item.offset,
            reason=reason.value,
            error=str(error),
        )
        record = item.dead_letter(reason, error, self._config.consumer_name)
        event_id = str(item.event.event_id) if item.event is not None else "-"
        checkpoint.emit(index, [])
        checkpoint.entries[index] = InboxEntry(
            dedupe_key=item.dead_key,
            content_hash=item.value_hash,
            event_id=event_id,
            topic=item.topic,
            partition=item.partition,
            offset=item.offset,
            outputs=(record,),
        )

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


_REASON_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def workflow_labels(ended: WorkflowCompleted | WorkflowFailed) -> tuple[str, str, str]:
    """The ``workflows_finished_total`` labels (outcome, failure_step, reason) of an ending."""
    if isinstance(ended, WorkflowFailed):
        return ("failed", ended.failure_step.value, reason_label(ended))
    return ("completed", "", "")


def reason_label(failed: WorkflowFailed) -> str:
    """The ``reason`` label of a failed workflow, bounded for Prometheus: the reason when it is
    a code (``max_order_value_exceeded``), else the error type the details name (a free-text
    reason such as an exception's message would make a series per message), else ``other``."""
    if _REASON_CODE.fullmatch(failed.reason):
        return failed.reason
    error_type = failed.details.get("error_type", "")
    return error_type if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]{0,63}", error_type) else "other"

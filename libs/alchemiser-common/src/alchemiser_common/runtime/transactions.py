"""The Kafka side of the commit protocol: one transaction, its error classes, rewinding.

:class:`KafkaTransaction` wraps the process's transactional producer and its consumer for the
loop (librdkafka's transactional error contract):

* a **retriable** error retries the same call (bounded: :data:`MAX_RETRIABLE_ATTEMPTS`);
* an error that **requires abort** raises :class:`AbortRequiredError`: the loop aborts, seeks
  back to the committed offsets and processes the records again;
* a **fatal** error (fenced, or an unknown class) raises :class:`FatalRuntimeError`: the
  process exits non-zero and Kubernetes restarts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog

from alchemiser_common.errors import AlchemiserError
from alchemiser_common.inbox import StoredOutput
from alchemiser_common.kafka.clients import (
    API_TIMEOUT_S,
    KafkaConsumer,
    KafkaErrorClass,
    KafkaProducer,
    classify_kafka_error,
)
from alchemiser_common.runtime.progress import LoopProgress

__all__ = [
    "MAX_RETRIABLE_ATTEMPTS",
    "AbortRequiredError",
    "FatalRuntimeError",
    "KafkaTransaction",
]

_log = structlog.get_logger("alchemiser.runtime")

#: How often a retriable Kafka error is retried before it is treated as fatal.
MAX_RETRIABLE_ATTEMPTS = 5
_OFFSET_BEGINNING = -2


class FatalRuntimeError(AlchemiserError):
    """The process must exit non-zero (fenced, fatal producer error); Kubernetes restarts it."""


class AbortRequiredError(AlchemiserError):
    """A Kafka error that requires aborting the transaction and rewinding the consumer."""


def _classify(err: Exception) -> KafkaErrorClass | None:
    kafka_error = err.args[0] if err.args else None
    if kafka_error is None or not hasattr(kafka_error, "code"):
        return None
    return classify_kafka_error(kafka_error)


def _raise_classified(err: Exception) -> None:
    kind = _classify(err)
    if kind is KafkaErrorClass.ABORTABLE or kind is KafkaErrorClass.RETRIABLE:
        raise AbortRequiredError(str(err)) from err
    raise FatalRuntimeError(f"fatal Kafka error: {err}") from err


class KafkaTransaction:
    """Begin, produce into, commit (with the input offsets) or abort one transaction."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        progress: LoopProgress | None = None,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._progress = progress or LoopProgress()
        self.open = False

    def begin(self) -> None:
        """``begin_transaction``."""
        self._call("begin_transaction", self._producer.begin_transaction)
        self.open = True

    def produce(self, output: StoredOutput) -> None:
        """Produce one stored output into the open transaction (waits if the queue is full)."""
        while True:
            try:
                self._producer.produce(
                    output.topic, value=output.value, key=output.key, headers=list(output.headers)
                )
                break
            except BufferError:
                self._producer.poll(0.1)  # the local queue is full: let deliveries drain
            except Exception as err:
                _raise_classified(err)
        self._producer.poll(0)

    def commit(self, positions: list[Any]) -> list[Any]:
        """Send ``positions`` (per partition, the next offset to consume) and commit.

        Returns the positions. Only a batch's processed prefix is committed, so the positions
        come from the processed records, not from the consumer's fetch position.

        The outputs are acknowledged before the offsets are sent. Kafka commits both
        atomically either way (``commit_transaction`` flushes too), but a broker that does not
        honour transactions, as the embedded development broker, applies the offsets at once:
        had it died with an output still in flight, the input would count as done and its
        output would be lost. With the outputs acknowledged first, such a death redelivers the
        input instead, and the inbox re-emits the same output. Outputs still unacknowledged
        after :data:`API_TIMEOUT_S` abort the transaction (it is retried from the inputs).
        """
        try:
            with self._progress.call("flush"):
                unacknowledged = self._producer.flush(API_TIMEOUT_S)
        except Exception as err:
            _raise_classified(err)
        if unacknowledged:
            raise AbortRequiredError(
                f"{unacknowledged} output(s) not acknowledged within {API_TIMEOUT_S:g} s"
            )
        metadata = self._consumer.consumer_group_metadata()
        self._call(
            "send_offsets_to_transaction",
            lambda: self._producer.send_offsets_to_transaction(positions, metadata, API_TIMEOUT_S),
        )
        self._call("commit_transaction", lambda: self._producer.commit_transaction(API_TIMEOUT_S))
        self.open = False
        return positions

    def abort(self) -> bool:
        """Abort the open transaction, if any; returns whether one was aborted."""
        if not self.open:
            return False
        try:
            with self._progress.call("abort_transaction"):
                self._producer.abort_transaction(API_TIMEOUT_S)
        except Exception as err:
            if _classify(err) in (KafkaErrorClass.FATAL, None):
                raise FatalRuntimeError(f"abort_transaction failed: {err}") from err
        self.open = False
        return True

    def rewind(self) -> None:
        """Seek every assigned partition back to its committed offset (or the beginning).

        Raises :class:`AbortRequiredError` when the committed offsets cannot be read for now
        (the broker is unreachable: ``_TIMED_OUT``, ``_TRANSPORT``): nothing was sought, so the
        caller must not consume before a later rewind succeeds.
        """
        assignment = self._consumer.assignment()
        if not assignment:
            return
        try:
            with self._progress.call("committed"):
                committed_offsets = self._consumer.committed(assignment, timeout=API_TIMEOUT_S)
        except Exception as err:
            _raise_classified(err)
        for committed in committed_offsets:
            if committed.offset < 0:
                committed.offset = _OFFSET_BEGINNING
            self._consumer.seek(committed)

    def lag(self, positions: Sequence[Any]) -> list[tuple[str, int, int]]:
        """(topic, partition, lag) from the cached high watermarks (no broker round trip)."""
        lags = []
        for position in positions:
            watermarks = self._consumer.get_watermark_offsets(position)
            if watermarks is not None and position.offset >= 0:
                lags.append((position.topic, position.partition, watermarks[1] - position.offset))
        return lags

    def _call(self, name: str, call: Callable[[], None]) -> None:
        for _attempt in range(MAX_RETRIABLE_ATTEMPTS):
            try:
                with self._progress.call(name):
                    call()
                return
            except Exception as err:
                if _classify(err) is not KafkaErrorClass.RETRIABLE:
                    _raise_classified(err)
                _log.warning("retriable Kafka error; retrying the same call", error=str(err))
        raise FatalRuntimeError("a retriable Kafka call kept failing; exiting to be restarted")

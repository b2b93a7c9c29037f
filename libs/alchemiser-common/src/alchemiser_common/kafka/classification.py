"""Classify Kafka errors into what the caller must do next (librdkafka's transaction contract).

* ``RETRIABLE`` — call the same API again.
* ``ABORTABLE`` — ``abort_transaction()``, rewind the consumer to its committed offsets, retry
  the batch.
* ``FATAL`` — destroy the producer and end the process (fenced, misconfigured, unknown).

librdkafka's own flags (``fatal()``, ``txn_requires_abort()``, ``retriable()``) decide first.
Errors that carry no flag (delivery reports, consumer and admin errors, errors built by hand)
fall back to a table of known codes; anything unknown is fatal, never silently retried.
"""

from __future__ import annotations

from enum import StrEnum

from confluent_kafka import KafkaError, KafkaException

__all__ = ["KafkaErrorClass", "classify_kafka_error"]


class KafkaErrorClass(StrEnum):
    """What to do about a Kafka error."""

    RETRIABLE = "retriable"
    ABORTABLE = "abortable"
    FATAL = "fatal"


# Transient conditions: the cluster is moving leaders or coordinators, or the network blinked.
_RETRIABLE_CODES = frozenset(
    {
        KafkaError._TIMED_OUT,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._WAIT_COORD,
        KafkaError._RETRY,
        KafkaError._QUEUE_FULL,
        KafkaError._PREV_IN_PROGRESS,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.REPLICA_NOT_AVAILABLE,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.CONCURRENT_TRANSACTIONS,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.THROTTLING_QUOTA_EXCEEDED,
    }
)

# The transaction is lost but the producer is healthy: abort, rewind and start again.
# (KIP-360 producer-id errors and KIP-890's explicit TRANSACTION_ABORTABLE; a record that
# timed out or was purged inside a transaction also dooms that transaction.)
_ABORTABLE_CODES = frozenset(
    {
        KafkaError.TRANSACTION_ABORTABLE,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._PURGE_QUEUE,
        KafkaError._PURGE_INFLIGHT,
    }
)

# Listed for readers: these end the process even if a flag were missing (fencing, auth).
_FATAL_CODES = frozenset(
    {
        KafkaError._FATAL,
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.TRANSACTION_COORDINATOR_FENCED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.INVALID_TRANSACTION_TIMEOUT,
        KafkaError.UNSUPPORTED_VERSION,
        KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        KafkaError._AUTHENTICATION,
        KafkaError._INVALID_ARG,
        KafkaError._STATE,
    }
)


_CLASS_BY_CODE: dict[int, KafkaErrorClass] = {
    **{code: KafkaErrorClass.RETRIABLE for code in _RETRIABLE_CODES},
    **{code: KafkaErrorClass.ABORTABLE for code in _ABORTABLE_CODES},
    **{code: KafkaErrorClass.FATAL for code in _FATAL_CODES},
}


def _unwrap(error: KafkaError | BaseException) -> KafkaError | None:
    if isinstance(error, KafkaError):
        return error
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        return error.args[0]
    return None


def _by_flags(error: KafkaError) -> KafkaErrorClass | None:
    if error.fatal():
        return KafkaErrorClass.FATAL
    if error.txn_requires_abort():
        return KafkaErrorClass.ABORTABLE
    if error.retriable():
        return KafkaErrorClass.RETRIABLE
    return None


def classify_kafka_error(error: KafkaError | BaseException) -> KafkaErrorClass:
    """Map a ``KafkaError`` (or a ``KafkaException`` carrying one) to a ``KafkaErrorClass``.

    librdkafka's flags decide first (fatal, then abort, then retriable); otherwise the code
    table; anything else, including a non-Kafka exception, is ``FATAL``.
    """
    kafka_error = _unwrap(error)
    if kafka_error is None:
        return KafkaErrorClass.FATAL
    flagged = _by_flags(kafka_error)
    if flagged is not None:
        return flagged
    return _CLASS_BY_CODE.get(kafka_error.code(), KafkaErrorClass.FATAL)

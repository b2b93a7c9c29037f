"""Unit tests: Kafka errors map to retriable / abortable / fatal (no broker)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from alchemiser_common.kafka import KafkaErrorClass, classify_kafka_error


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (KafkaError._TIMED_OUT, KafkaErrorClass.RETRIABLE),
        (KafkaError._TRANSPORT, KafkaErrorClass.RETRIABLE),
        (KafkaError.NOT_COORDINATOR, KafkaErrorClass.RETRIABLE),
        (KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaErrorClass.RETRIABLE),
        (KafkaError.CONCURRENT_TRANSACTIONS, KafkaErrorClass.RETRIABLE),
        (KafkaError.NOT_ENOUGH_REPLICAS, KafkaErrorClass.RETRIABLE),
        (KafkaError.TRANSACTION_ABORTABLE, KafkaErrorClass.ABORTABLE),
        (KafkaError.UNKNOWN_PRODUCER_ID, KafkaErrorClass.ABORTABLE),
        (KafkaError._MSG_TIMED_OUT, KafkaErrorClass.ABORTABLE),
        (KafkaError._FENCED, KafkaErrorClass.FATAL),
        (KafkaError.PRODUCER_FENCED, KafkaErrorClass.FATAL),
        (KafkaError.INVALID_PRODUCER_EPOCH, KafkaErrorClass.FATAL),
        (KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, KafkaErrorClass.FATAL),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaErrorClass.FATAL),
        (KafkaError._INVALID_ARG, KafkaErrorClass.FATAL),
        (KafkaError.INVALID_RECORD, KafkaErrorClass.FATAL),  # not in any table: fatal
    ],
)
def test_classify_when_code_without_flags_then_code_table_decides(
    code: int, expected: KafkaErrorClass
) -> None:
    assert classify_kafka_error(KafkaError(code)) is expected


def test_classify_when_fatal_flag_then_fatal_even_for_a_retriable_code() -> None:
    error = KafkaError(KafkaError._TIMED_OUT, "x", fatal=True, retriable=True)
    assert classify_kafka_error(error) is KafkaErrorClass.FATAL


def test_classify_when_txn_requires_abort_flag_then_abortable() -> None:
    error = KafkaError(KafkaError._TIMED_OUT, "x", retriable=True, txn_requires_abort=True)
    assert classify_kafka_error(error) is KafkaErrorClass.ABORTABLE


def test_classify_when_retriable_flag_on_unknown_code_then_retriable() -> None:
    error = KafkaError(KafkaError.INVALID_RECORD, "x", retriable=True)
    assert classify_kafka_error(error) is KafkaErrorClass.RETRIABLE


def test_classify_when_kafka_exception_then_its_error_decides() -> None:
    retriable = KafkaException(KafkaError(KafkaError.NOT_COORDINATOR))
    abortable = KafkaException(KafkaError(KafkaError._STATE, "x", txn_requires_abort=True))
    assert classify_kafka_error(retriable) is KafkaErrorClass.RETRIABLE
    assert classify_kafka_error(abortable) is KafkaErrorClass.ABORTABLE


@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), KafkaException("no error object"), KafkaException()]
)
def test_classify_when_not_a_kafka_error_then_fatal(error: BaseException) -> None:
    assert classify_kafka_error(error) is KafkaErrorClass.FATAL

"""records_to_end: the records up to each partition's end-of-partition event, or an error."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaError

from alchemiser_common.kafka import records_to_end


@dataclass
class _Record:
    topic_name: str
    partition_number: int
    offset_number: int | None = None  # None: an event, not a record
    code: int | None = None

    def error(self) -> KafkaError | None:
        return None if self.code is None else KafkaError(self.code)

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return self.partition_number


class _Consumer:
    """Hands out the scripted batches, then empty ones."""

    def __init__(self, *batches: list[_Record]) -> None:
        self.batches = list(batches)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[_Record]:
        del num_messages, timeout
        return self.batches.pop(0) if self.batches else []


def _eof(topic: str, partition: int) -> _Record:
    return _Record(topic, partition, code=KafkaError._PARTITION_EOF)


def _never(pending: set[tuple[str, int]]) -> Exception:
    return AssertionError(f"unexpected timeout with {pending} pending")


def test_records_to_end_when_every_partition_ends_then_its_records_and_no_more() -> None:
    consumer = _Consumer(
        [_Record("a", 0, 0), _Record("a", 1, 0), _eof("a", 1)],
        [_Record("a", 0, 1, code=KafkaError._TRANSPORT), _Record("a", 0, 1), _eof("a", 0)],
        [_Record("a", 0, 2)],  # after both ends: not read
    )

    records = list(records_to_end(consumer, {("a", 0), ("a", 1)}, 60.0, _never))

    assert [(r.topic(), r.partition(), r.offset_number) for r in records] == [
        ("a", 0, 0),
        ("a", 1, 0),
        ("a", 0, 1),
    ]
    assert consumer.batches == [[_Record("a", 0, 2)]]


def test_records_to_end_when_no_partitions_then_nothing_read() -> None:
    consumer = _Consumer([_Record("a", 0, 0)])

    assert list(records_to_end(consumer, set(), 60.0, _never)) == []
    assert consumer.batches == [[_Record("a", 0, 0)]]


def test_records_to_end_when_an_end_is_not_reached_in_time_then_raises_with_the_pending() -> None:
    consumer = _Consumer([_Record("a", 0, 0), _eof("a", 0)])

    def unreached(pending: set[tuple[str, int]]) -> Exception:
        return TimeoutError(f"pending {sorted(pending)}")

    with pytest.raises(TimeoutError, match=r"pending \[\('b', 3\)\]"):
        list(records_to_end(consumer, {("a", 0), ("b", 3)}, 0.5, unreached))

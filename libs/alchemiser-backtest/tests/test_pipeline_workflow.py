"""``PipelineWorkflow.run`` without a stack: the trigger's delivery is checked while waiting,
and a dead-lettered event of the workflow ends it.

The trigger is sent without blocking on the broker's acknowledgement; a delivery error must
still stop the session at once (not after the workflow timeout), naming the session. Dead
letters are read by a reader of their own (at a slower fetch pace); one of this workflow
ends the session with its reason, one of another workflow is passed over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME

from alchemiser_backtest.pipeline import PipelineWorkflow
from alchemiser_common.topics import SIGNAL_GENERATED, dlq_topic
from alchemiser_common.workflow import build_trigger
from alchemiser_devtools.stack import StackError


class _Producer:
    """Accepts records; its first ``poll`` reports ``error`` for each (``None``: delivered)."""

    def __init__(self, error: str | None) -> None:
        self._error = error
        self._pending: list[Callable[[object, object], None]] = []
        self.produced = 0
        self.polls = 0

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.produced += 1
        self._pending.append(kwargs["on_delivery"])

    def poll(self, timeout: float = 0.0) -> int:
        self.polls += 1
        served, self._pending = self._pending, []
        for report in served:
            report(self._error, None)
        return len(served)

    def close(self) -> None:
        pass


class _Record:
    """A record on ``topic`` of the workflow ``correlation_id``, produced now."""

    def __init__(self, topic: str, correlation_id: str, reason: str) -> None:
        self._topic = topic
        self._headers = [("correlation_id", correlation_id.encode()), ("dlq.reason", reason)]

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def headers(self) -> list[tuple[str, bytes | str]]:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return TIMESTAMP_CREATE_TIME, int(time.time() * 1000)


class _Reader:
    """Hands out ``records`` once; then nothing arrives."""

    def __init__(self, *records: _Record) -> None:
        self._records = list(records)
        self.timeouts: list[float] = []

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        self.timeouts.append(timeout)
        if self._records:
            taken, self._records = self._records[:num_messages], self._records[num_messages:]
            return taken
        if timeout > 0:
            time.sleep(min(timeout, 0.01))
        return []

    def close(self) -> None:
        pass


class _Serde:
    def serialize(self, event: object) -> bytes:
        return b"trigger"


class _Stack:
    run_dir = "run"

    def check_alive(self) -> None:
        pass


def _workflow(
    producer: _Producer, timeout_s: float, dead_letters: _Reader | None = None
) -> PipelineWorkflow:
    workflow = PipelineWorkflow.__new__(PipelineWorkflow)
    workflow._stack = _Stack()  # type: ignore[assignment]
    workflow._timeout_s = timeout_s
    workflow._serde = _Serde()  # type: ignore[assignment]
    workflow._producer = producer  # type: ignore[assignment]
    workflow._reader = _Reader()  # type: ignore[assignment]
    workflow._dead_letters = dead_letters or _Reader()  # type: ignore[assignment]
    return workflow


def test_run_when_the_trigger_is_not_delivered_then_stops_at_once_naming_the_session() -> None:
    producer = _Producer("Broker: Unknown topic or partition")
    trigger = build_trigger("PA-BACKTEST", requested_by="backtest", as_of=date(2008, 3, 3))

    started = time.monotonic()
    with pytest.raises(StackError) as raised:
        _workflow(producer, timeout_s=60.0).run(trigger)

    assert str(raised.value) == (
        "could not publish the trigger of 2008-03-03: Broker: Unknown topic or partition"
    )
    assert producer.produced == 1
    assert time.monotonic() - started < 30.0  # well before the workflow timeout


def test_run_when_the_trigger_is_delivered_and_nothing_comes_then_the_workflow_times_out() -> None:
    producer = _Producer(None)
    trigger = build_trigger("PA-BACKTEST", requested_by="backtest", as_of=date(2008, 3, 3))

    with pytest.raises(StackError, match="did not finish within 0 s"):
        _workflow(producer, timeout_s=0.2).run(trigger)

    assert producer.produced == 1
    assert producer.polls >= 1


def test_run_when_an_event_of_the_workflow_is_dead_lettered_then_fails_with_the_reason() -> None:
    trigger = build_trigger("PA-BACKTEST", requested_by="backtest", as_of=date(2008, 3, 3))
    other = build_trigger("PA-BACKTEST", requested_by="backtest", as_of=date(2008, 2, 29))
    dead_letters = _Reader(
        _Record(dlq_topic(SIGNAL_GENERATED), str(other.correlation_id), "schema: other run"),
        _Record(dlq_topic(SIGNAL_GENERATED), str(trigger.correlation_id), "deserialize: bad"),
    )
    workflow = _workflow(_Producer(None), timeout_s=60.0, dead_letters=dead_letters)

    outcome = workflow.run(trigger)

    assert outcome.outcome == "failed: dead-lettered: deserialize: bad"
    assert outcome.signal is None
    assert dead_letters.timeouts[0] == 0  # never waited on: the outcome reader does the waiting

"""Strategy steps computed ahead in a forked process: same events, in order, or none at all."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import pytest

from alchemiser_backtest.ahead import StepsAhead, can_work_ahead
from alchemiser_backtest.runner import session_trigger
from alchemiser_common.events import Event, FailureStep, WorkflowFailed, WorkflowStarted

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

_ACCOUNT = "PA-AHEAD"


def _triggers(count: int) -> list[WorkflowStarted]:
    first = date(2008, 1, 2)
    return [session_trigger(_ACCOUNT, first + timedelta(days=n)) for n in range(count)]


class _Step:
    """Each trigger's failure event, whose reason names the process that built it; every call
    is also noted in ``calls`` (in whichever process made it) and in ``log`` (a file)."""

    def __init__(self, log: Path, raise_on: date | None = None) -> None:
        self.calls: list[date] = []
        self._log, self._raise_on = log, raise_on

    def __call__(self, trigger: WorkflowStarted) -> Sequence[Event]:
        assert trigger.as_of is not None
        self.calls.append(trigger.as_of)
        with self._log.open("a") as log:
            log.write(f"{trigger.as_of}\n")
        if trigger.as_of == self._raise_on:
            raise RuntimeError("boom")
        return [
            WorkflowFailed.caused_by(
                trigger,
                source=trigger.source,
                occurred_at=trigger.occurred_at,
                failure_step=FailureStep.STRATEGY,
                reason=f"pid {os.getpid()}",
            )
        ]


def test_take_when_triggers_in_order_then_each_ones_events_computed_in_another_process(
    tmp_path: Path,
) -> None:
    triggers = _triggers(5)
    step = _Step(tmp_path / "log")
    with StepsAhead(step, triggers, depth=2) as ahead:
        taken = [ahead.take(trigger) for trigger in triggers]
        assert ahead.active
    assert not ahead.active
    for trigger, events in zip(triggers, taken, strict=True):
        assert events is not None
        (event,) = events
        assert isinstance(event, WorkflowFailed)
        assert event.causation_id == trigger.event_id
        assert event.correlation_id == trigger.correlation_id
        assert event.reason != f"pid {os.getpid()}"
    assert step.calls == []  # not one step in this process
    assert (tmp_path / "log").read_text().split() == [str(t.as_of) for t in triggers]


def test_take_when_not_the_next_trigger_then_none_and_worker_stopped(tmp_path: Path) -> None:
    triggers = _triggers(4)
    with StepsAhead(_Step(tmp_path / "log"), triggers) as ahead:
        assert ahead.take(triggers[0]) is not None
        assert ahead.take(triggers[2]) is None  # triggers[1] skipped
        assert not ahead.active
        assert ahead.take(triggers[3]) is None


def test_take_when_the_step_raised_then_none_for_that_trigger_and_after(tmp_path: Path) -> None:
    triggers = _triggers(4)
    step = _Step(tmp_path / "log", raise_on=triggers[1].as_of)
    with StepsAhead(step, triggers) as ahead:
        assert ahead.take(triggers[0]) is not None
        assert ahead.take(triggers[1]) is None
        assert not ahead.active
        assert ahead.take(triggers[2]) is None
    # the worker stopped at the failing trigger
    assert (tmp_path / "log").read_text().split() == [str(t.as_of) for t in triggers[:2]]


def test_take_when_the_worker_died_then_none(tmp_path: Path) -> None:
    triggers = _triggers(3)

    def die(trigger: WorkflowStarted) -> Sequence[Event]:
        os._exit(3)

    with StepsAhead(die, triggers) as ahead:
        assert ahead.take(triggers[0]) is None
        assert not ahead.active


def test_take_when_the_worker_gives_nothing_for_too_long_then_none_and_worker_stopped(
    tmp_path: Path,
) -> None:
    triggers = _triggers(2)

    def stuck(trigger: WorkflowStarted) -> Sequence[Event]:
        time.sleep(600)
        return []

    with StepsAhead(stuck, triggers, stall_s=0.2) as ahead:
        pid = ahead.worker_pid
        assert pid is not None
        assert ahead.take(triggers[0]) is None
        assert not ahead.active
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_close_when_results_are_waiting_then_worker_stopped(tmp_path: Path) -> None:
    triggers = _triggers(50)
    ahead = StepsAhead(_Step(tmp_path / "log"), triggers, depth=1)
    assert ahead.take(triggers[0]) is not None
    ahead.close()
    ahead.close()  # twice is harmless
    assert not ahead.active
    assert ahead.take(triggers[1]) is None
    # the worker, blocked on a full queue, was stopped long before the last trigger
    assert len((tmp_path / "log").read_text().split()) < len(triggers)


def test_close_when_this_process_handles_sigterm_then_the_worker_still_stops(
    tmp_path: Path,
) -> None:
    """The backtest's CLI handles SIGTERM itself; the fork copies that handler."""
    terms: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda number, _frame: terms.append(number))
    try:
        ahead = StepsAhead(_Step(tmp_path / "log"), _triggers(50), depth=1)
        pid = ahead.worker_pid
        assert pid is not None
        ahead.close()
    finally:
        signal.signal(signal.SIGTERM, previous)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped
    assert terms == []


@pytest.mark.parametrize(
    ("platform", "cores", "expected"),
    [("linux", {0, 1}, True), ("linux", {3}, False), ("darwin", {0, 1, 2, 3}, False)],
)
def test_can_work_ahead_when_platform_and_cores_then_only_linux_with_two(
    monkeypatch: pytest.MonkeyPatch, platform: str, cores: set[int], expected: bool
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: cores, raising=False)
    assert can_work_ahead() is expected

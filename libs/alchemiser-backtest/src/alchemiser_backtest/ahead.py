"""The strategy step of the sessions to come, computed in a second process while this one trades.

A session's strategy step depends on its trigger, the dataset and the strategy files, never on
the account; planning and execution depend on the account the previous session left. So while
this process plans and executes one session, a forked copy of it (the same loaded dataset, the
same compiled strategies, the same handler object) evaluates the next ones, in order, and
hands back each session's events. On a machine with two cores the strategy step then costs the
backtest (almost) nothing.

It is an optimisation and nothing else: the worker runs the handler this process would have
called, on the trigger this process would have passed. When the worker has nothing to give
(it failed on a trigger, it died, it was asked for a session it is not computing, it gave
nothing for a minute), the caller computes the step itself, so an error is raised where it
would have been without the worker, and a stuck worker cannot stop the backtest.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any

from alchemiser_common.events import Event, WorkflowStarted

__all__ = ["AHEAD_DEPTH", "STALL_S", "StepsAhead", "can_work_ahead"]

AHEAD_DEPTH = 32
"""How many sessions' results the worker may hold before this process takes them."""
STALL_S = 60.0
"""A worker that gives no result for this long while one is awaited is stopped (a step takes
milliseconds)."""
_POLL_S = 0.5
_STOP_WAIT_S = 5.0

Step = Callable[[WorkflowStarted], Sequence[Event]]
_Result = tuple[Any, Sequence[Event] | None]


def can_work_ahead() -> bool:
    """True where a second process helps and forking a copy of this one is safe: Linux (macOS
    offers ``fork`` but its system libraries, numpy's Accelerate among them, are not safe to
    use in a forked child) with more than one core available to this process."""
    if not sys.platform.startswith("linux"):
        return False
    return len(os.sched_getaffinity(0)) > 1


def _work(step: Step, triggers: Sequence[WorkflowStarted], results: Queue[_Result]) -> None:
    """The worker: each trigger's events in order; ``None`` for the first that raises, then stop."""
    # Ctrl-C is the parent's to handle; the parent stops the worker with SIGTERM, whatever
    # handler it has for it (the fork copied that handler, with SIGTERM blocked until now)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    for trigger in triggers:
        try:
            events = step(trigger)
        except BaseException:  # the parent computes it again and raises it there
            results.put((trigger.event_id, None))
            return
        results.put((trigger.event_id, tuple(events)))


class StepsAhead:
    """``step`` over ``triggers``, in order, in a forked process (see the module docstring).

    :meth:`take` returns the events of the next trigger, or ``None`` when the caller should
    compute them itself. :meth:`close` stops the worker; so does leaving a ``with`` block.
    """

    def __init__(
        self,
        step: Step,
        triggers: Sequence[WorkflowStarted],
        depth: int = AHEAD_DEPTH,
        stall_s: float = STALL_S,
    ) -> None:
        self._stall_s = stall_s
        context = multiprocessing.get_context("fork")
        self._results: Queue[_Result] = context.Queue(maxsize=depth)
        self._pending = [trigger.event_id for trigger in reversed(triggers)]
        self._worker: BaseProcess | None = context.Process(
            target=_work, args=(step, list(triggers), self._results), daemon=True
        )
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            self._worker.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    @property
    def active(self) -> bool:
        """True while the worker may still give results."""
        return self._worker is not None

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id while it is :attr:`active`."""
        return None if self._worker is None else self._worker.pid

    def take(self, trigger: WorkflowStarted) -> Sequence[Event] | None:
        """The events the worker computed for ``trigger``; ``None`` (and the worker stopped)
        when ``trigger`` is not the next it computes or the worker has no answer."""
        if self._worker is None or not self._pending or self._pending[-1] != trigger.event_id:
            self.close()
            return None
        self._pending.pop()
        deadline = time.monotonic() + self._stall_s
        while True:
            try:
                event_id, events = self._results.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._worker.is_alive() or time.monotonic() > deadline:
                    self.close()
                    return None
        if event_id != trigger.event_id or events is None:
            self.close()
            return None
        return events

    def close(self) -> None:
        """Stop the worker (at once: what it computed ahead is dropped)."""
        worker, self._worker = self._worker, None
        self._pending.clear()
        if worker is None:
            return
        if worker.is_alive():
            worker.terminate()
        worker.join(_STOP_WAIT_S)
        if worker.is_alive():
            worker.kill()
            worker.join()
        self._results.close()
        self._results.cancel_join_thread()

    def __enter__(self) -> StepsAhead:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

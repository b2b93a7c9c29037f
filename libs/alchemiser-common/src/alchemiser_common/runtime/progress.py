"""The loop's progress, for a liveness probe that means something.

The processing loop reports each poll and each blocking Kafka call to a :class:`LoopProgress`.
:meth:`LoopProgress.check` (the ``/healthz`` liveness check) fails when

* one Kafka call has been running longer than :data:`~.limits.KAFKA_CALL_STALL_S` — librdkafka
  was seen blocking in ``send_offsets_to_transaction`` for minutes after a broker restart,
  although a 30 s timeout was passed; or
* the loop has not polled for longer than :data:`~.limits.KAFKA_MAX_POLL_INTERVAL_S` (a batch's
  handlers are bounded well below it), so the consumer has left its group anyway.

Kubernetes then restarts the pod; restarted processes recover (stored outputs are re-emitted).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from alchemiser_common.errors import AlchemiserError
from alchemiser_common.runtime.limits import KAFKA_CALL_STALL_S, KAFKA_MAX_POLL_INTERVAL_S

__all__ = ["LoopProgress", "StalledError"]


class StalledError(AlchemiserError):
    """The loop has stopped making progress (the liveness check's failure)."""


class LoopProgress:
    """When the loop last polled and which blocking Kafka call it is inside, if any."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last_poll = clock()
        self._call: tuple[str, float] | None = None

    def polled(self) -> None:
        """The loop has just returned from a poll."""
        with self._lock:
            self._last_poll = self._clock()

    @contextmanager
    def call(self, name: str) -> Iterator[None]:
        """Mark the block as one blocking Kafka call named ``name``."""
        with self._lock:
            self._call = (name, self._clock())
        try:
            yield
        finally:
            with self._lock:
                self._call = None

    def check(self) -> bool:
        """``True`` while the loop makes progress; raises :class:`StalledError` saying why."""
        with self._lock:
            now, call, last_poll = self._clock(), self._call, self._last_poll
        if call is not None and now - call[1] > KAFKA_CALL_STALL_S:
            raise StalledError(f"inside {call[0]} for {now - call[1]:.0f} s")
        if now - last_poll > KAFKA_MAX_POLL_INTERVAL_S:
            raise StalledError(f"no poll for {now - last_poll:.0f} s")
        return True

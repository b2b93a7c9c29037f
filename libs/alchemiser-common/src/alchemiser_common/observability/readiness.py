"""Readiness checks, each time-boxed, behind ``/readyz``.

A check is a callable returning ``True`` (any truthy value) when its part of the process is
ready ("partitions assigned", "database reachable"). Checks run concurrently in daemon threads;
a check that does not answer within its time box counts as failing, and while it still hangs
it is not started a second time, so a stuck dependency costs one thread, never a growing pile
of them, and never blocks the probe or the interpreter's exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

__all__ = ["DEFAULT_CHECK_TIMEOUT_S", "CheckResult", "ReadinessChecks", "ReadinessReport"]

# Kubernetes probes time out after 1 s by default and the chart raises that to a few seconds;
# one slow check must answer inside that window for the probe to see a 503 rather than a timeout.
DEFAULT_CHECK_TIMEOUT_S = 2.0

ReadinessCheck = Callable[[], bool]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``ok`` and, when failing, why (``"returned False"``, ...)."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class ReadinessReport:
    """All check results; ``ready`` when every check passed (vacuously true with no checks)."""

    results: tuple[CheckResult, ...]

    @property
    def ready(self) -> bool:
        """True when no check failed."""
        return all(result.ok for result in self.results)

    @property
    def failing(self) -> tuple[CheckResult, ...]:
        """The failing checks, in registration order."""
        return tuple(result for result in self.results if not result.ok)


class _Check:
    def __init__(self, name: str, check: ReadinessCheck, timeout_s: float) -> None:
        self.name = name
        self.check = check
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._running: Future[bool] | None = None

    def start(self) -> Future[bool]:
        """Start the check in a daemon thread, or return the run still in progress."""
        with self._lock:
            if self._running is not None and not self._running.done():
                return self._running
            future: Future[bool] = Future()
            self._running = future
        thread = threading.Thread(
            target=self._run, args=(future,), name=f"readiness-{self.name}", daemon=True
        )
        thread.start()
        return future

    def _run(self, future: Future[bool]) -> None:
        try:
            ok = bool(self.check())
        except Exception as err:
            future.set_exception(err)
            return
        except BaseException as err:
            future.set_exception(RuntimeError(f"interrupted by {type(err).__name__}"))
            raise
        future.set_result(ok)


class ReadinessChecks:
    """A thread-safe set of named readiness checks."""

    def __init__(self, default_timeout_s: float = DEFAULT_CHECK_TIMEOUT_S) -> None:
        """Checks added without their own time box get ``default_timeout_s`` seconds."""
        self._default_timeout_s = default_timeout_s
        self._checks: dict[str, _Check] = {}
        self._lock = threading.Lock()

    def add(self, name: str, check: ReadinessCheck, *, timeout_s: float | None = None) -> None:
        """Register (or replace) the check ``name``."""
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        timeout = timeout_s if timeout_s is not None else self._default_timeout_s
        with self._lock:
            self._checks[name] = _Check(name, check, timeout)

    def remove(self, name: str) -> None:
        """Unregister the check ``name`` (no error when absent)."""
        with self._lock:
            self._checks.pop(name, None)

    def names(self) -> tuple[str, ...]:
        """The registered check names, in registration order."""
        with self._lock:
            return tuple(self._checks)

    def run(self) -> ReadinessReport:
        """Run every check concurrently; return within the largest time box."""
        with self._lock:
            checks = list(self._checks.values())
        started = time.monotonic()
        running = [(check, check.start()) for check in checks]
        results: list[CheckResult] = []
        for check, future in running:
            remaining = max(0.0, started + check.timeout_s - time.monotonic())
            results.append(_outcome(check, future, remaining))
        return ReadinessReport(tuple(results))


def _outcome(check: _Check, future: Future[bool], wait_s: float) -> CheckResult:
    try:
        ok = future.result(timeout=wait_s)
    except TimeoutError:
        return CheckResult(check.name, False, f"no answer within {check.timeout_s:g}s")
    except Exception as err:
        return CheckResult(check.name, False, f"raised {type(err).__name__}: {err}")
    return CheckResult(check.name, True) if ok else CheckResult(check.name, False, "not ready")

"""Background tasks a service declares: started on their own threads, stopped and joined."""

from __future__ import annotations

import threading

from alchemiser_common.runtime.declaration import Service
from alchemiser_common.runtime.service import _start_background
from alchemiser_common.settings import CommonSettings


def test_tasks_when_started_then_run_until_stopped_and_are_joined() -> None:
    started = threading.Barrier(3, timeout=5)
    stopped: list[str] = []

    def make(name: str):  # type: ignore[no-untyped-def]
        def run(stop: threading.Event) -> None:
            started.wait()
            stop.wait(10)
            stopped.append(name)

        return run

    stop_all = _start_background([make("a"), make("b")])
    started.wait()  # both run at once, each on its own thread
    assert stopped == []

    stop_all()

    assert sorted(stopped) == ["a", "b"]


def test_declaration_when_no_background_then_none() -> None:
    service = Service(name="x", settings=CommonSettings, handlers={})

    assert tuple(service.background) == ()

"""The loop's progress as the liveness probe sees it (a fake clock; no Kafka)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alchemiser_common.observability import ObservabilityServer
from alchemiser_common.runtime.limits import KAFKA_CALL_STALL_S, KAFKA_MAX_POLL_INTERVAL_S
from alchemiser_common.runtime.progress import LoopProgress, StalledError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_check_when_polling_and_calls_return_then_alive() -> None:
    clock = Clock()
    progress = LoopProgress(clock)
    with progress.call("commit_transaction"):
        clock.now += KAFKA_CALL_STALL_S - 1
        assert progress.check()
    clock.now += KAFKA_MAX_POLL_INTERVAL_S - 1
    progress.polled()
    assert progress.check()


def test_check_when_a_kafka_call_outlives_its_bound_then_stalled_naming_it() -> None:
    clock = Clock()
    progress = LoopProgress(clock)
    with progress.call("send_offsets_to_transaction"):
        clock.now += KAFKA_CALL_STALL_S + 2
        with pytest.raises(StalledError, match="inside send_offsets_to_transaction for 47 s"):
            progress.check()
    progress.polled()
    assert progress.check()  # the call returned: alive again


def test_check_when_no_poll_for_the_max_poll_interval_then_stalled() -> None:
    clock = Clock()
    progress = LoopProgress(clock)
    clock.now += KAFKA_MAX_POLL_INTERVAL_S + 1
    with pytest.raises(StalledError, match="no poll for 301 s"):
        progress.check()


def test_healthz_when_liveness_check_fails_then_503_with_reason() -> None:
    clock = Clock()
    progress = LoopProgress(clock)
    with ObservabilityServer(CollectorRegistry()) as server:
        server.add_liveness_check("kafka-progress", progress.check)
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        with progress.call("commit_transaction"):
            clock.now += KAFKA_CALL_STALL_S + 10
            response = httpx.get(f"{server.url}/healthz", timeout=5)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert "inside commit_transaction" in body["failing"]["kafka-progress"]

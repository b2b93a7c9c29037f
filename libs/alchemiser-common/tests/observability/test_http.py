from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from alchemiser_common.observability import (
    Metrics,
    ObservabilityServer,
    ObservabilityServerError,
    ObservabilitySettings,
)


@pytest.fixture
def server() -> Iterator[ObservabilityServer]:
    srv = ObservabilityServer(Metrics().registry, host="127.0.0.1", port=0, check_timeout_s=0.3)
    srv.start()
    yield srv
    srv.stop()


def test_healthz_when_running_then_200(server: ObservabilityServer) -> None:
    response = httpx.get(f"{server.url}/healthz", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_when_check_starts_passing_then_flips_from_503_to_200(
    server: ObservabilityServer,
) -> None:
    assigned = threading.Event()
    server.add_readiness_check("partitions-assigned", assigned.is_set)
    server.add_readiness_check("database-reachable", lambda: True)

    before = httpx.get(f"{server.url}/readyz", timeout=5)
    assigned.set()
    after = httpx.get(f"{server.url}/readyz", timeout=5)

    assert before.status_code == 503
    assert before.json() == {"status": "not ready", "failing": {"partitions-assigned": "not ready"}}
    assert after.status_code == 200
    assert after.json()["checks"] == ["partitions-assigned", "database-reachable"]


def test_readyz_when_check_raises_then_503_naming_the_error(server: ObservabilityServer) -> None:
    def broken() -> bool:
        raise ConnectionError("db down")

    server.add_readiness_check("database-reachable", broken)

    response = httpx.get(f"{server.url}/readyz", timeout=5)

    assert response.status_code == 503
    assert response.json()["failing"] == {"database-reachable": "raised ConnectionError: db down"}


def test_readyz_when_check_hangs_then_503_within_time_box_and_not_restarted(
    server: ObservabilityServer,
) -> None:
    release = threading.Event()
    calls = []

    def hangs() -> bool:
        calls.append(1)
        release.wait(10)
        return True

    server.add_readiness_check("stuck", hangs)
    try:
        started = time.monotonic()
        first = httpx.get(f"{server.url}/readyz", timeout=5)
        second = httpx.get(f"{server.url}/readyz", timeout=5)
        elapsed = time.monotonic() - started
    finally:
        release.set()

    assert first.status_code == second.status_code == 503
    assert "no answer within 0.3s" in first.json()["failing"]["stuck"]
    assert elapsed < 2.0
    assert len(calls) == 1


def test_readyz_when_no_checks_registered_then_200(server: ObservabilityServer) -> None:
    assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200


def test_request_when_unknown_path_or_method_then_404_or_405(server: ObservabilityServer) -> None:
    assert httpx.get(f"{server.url}/nope", timeout=5).status_code == 404
    assert httpx.post(f"{server.url}/healthz", timeout=5).status_code == 405


def test_stop_when_running_then_port_released_and_stop_idempotent() -> None:
    srv = ObservabilityServer(Metrics().registry, port=0)
    srv.start()
    port = srv.port
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200

    started = time.monotonic()
    srv.stop()
    srv.stop()

    assert time.monotonic() - started < 3.0
    assert not srv.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    with ObservabilityServer(Metrics().registry, port=port) as again:
        assert again.port == port
    with pytest.raises(ObservabilityServerError):
        _ = srv.port


def test_start_when_port_taken_then_observability_server_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        srv = ObservabilityServer(Metrics().registry, port=holder.getsockname()[1])

        with pytest.raises(ObservabilityServerError, match="cannot serve /metrics"):
            srv.start()
    assert not srv.running


def test_from_settings_when_port_zero_then_binds_free_port() -> None:
    settings = ObservabilitySettings(metrics_port=0, readiness_check_timeout_s=0.5)

    with ObservabilityServer.from_settings(settings, Metrics().registry) as srv:
        assert srv.port > 0
        assert httpx.get(f"{srv.url}/healthz", timeout=5).status_code == 200

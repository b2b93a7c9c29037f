"""``TimeoutSession`` reads the proxy and CA-bundle environment once per origin, and still
honours it: requests go through ``HTTP_PROXY`` unless ``NO_PROXY`` names the host."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alchemiser_broker.alpaca_http import TimeoutSession

_PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


class _Recorder(ThreadingHTTPServer):
    """A loopback HTTP server that answers 200 and keeps each request line it was sent."""

    def __init__(self) -> None:
        lines: list[str] = []
        self.lines = lines

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                lines.append(self.requestline)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def servers() -> Iterator[tuple[_Recorder, _Recorder]]:
    proxy, direct = _Recorder(), _Recorder()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (proxy, direct)]
    for thread in threads:
        thread.start()
    yield proxy, direct
    for server in (proxy, direct):
        server.shutdown()
        server.server_close()


def test_session_when_http_proxy_set_then_every_request_goes_through_it(
    clean_environment: pytest.MonkeyPatch, servers: tuple[_Recorder, _Recorder]
) -> None:
    proxy, direct = servers
    clean_environment.setenv("HTTP_PROXY", proxy.url)
    session = TimeoutSession(5.0)

    first = session.get("http://broker.invalid/v2/account")
    second = session.get("http://broker.invalid/v2/clock")

    assert (first.status_code, second.status_code) == (200, 200)
    assert proxy.lines == [
        "GET http://broker.invalid/v2/account HTTP/1.1",
        "GET http://broker.invalid/v2/clock HTTP/1.1",
    ]
    assert direct.lines == []


def test_session_when_no_proxy_names_the_host_then_requests_go_direct(
    clean_environment: pytest.MonkeyPatch, servers: tuple[_Recorder, _Recorder]
) -> None:
    proxy, direct = servers
    clean_environment.setenv("HTTP_PROXY", proxy.url)
    clean_environment.setenv("NO_PROXY", "127.0.0.1")
    session = TimeoutSession(5.0)

    for _ in range(2):
        assert session.get(f"{direct.url}/v2/account").status_code == 200

    assert direct.lines == ["GET /v2/account HTTP/1.1"] * 2
    assert proxy.lines == []


def test_merge_when_origin_seen_then_environment_read_once_per_origin(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    clean_environment.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    session = TimeoutSession(5.0)

    def merged(url: str) -> Any:
        return session.merge_environment_settings(url, {}, None, None, None)

    first = merged("https://api.invalid/v2/a")
    clean_environment.setenv("HTTPS_PROXY", "http://other.invalid:3128")
    same_origin = merged("https://api.invalid/v2/b")
    other_origin = merged("https://data.invalid/v2")

    assert first["proxies"]["https"] == "http://proxy.invalid:3128"
    assert first["verify"] == "/etc/ssl/bundle.pem"
    assert same_origin["proxies"]["https"] == "http://proxy.invalid:3128"  # read once
    assert other_origin["proxies"]["https"] == "http://other.invalid:3128"


def test_merge_when_call_sets_its_own_values_then_they_win_and_nothing_is_remembered(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    session = TimeoutSession(5.0)
    url = "https://api.invalid/v2/a"
    session.merge_environment_settings(url, {}, None, None, None)

    explicit = session.merge_environment_settings(
        url, {"https": "http://mine.invalid:1"}, True, False, None
    )
    returned = session.merge_environment_settings(url, {}, None, None, None)
    returned["proxies"]["https"] = "changed by the caller"

    assert explicit["proxies"]["https"] == "http://mine.invalid:1"
    assert (explicit["verify"], explicit["stream"]) == (False, True)
    assert session.merge_environment_settings(url, {}, None, None, None)["proxies"] == {
        "https": "http://proxy.invalid:3128"
    }

"""The fault proxy: each fault as the client sees it, and whether the upstream processed it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from alchemiser_devtools.faults import ALPACA_ROUTES, Fault, FaultProxy

pytestmark = pytest.mark.timeout(30)

ORDERS = "POST /v2/orders"
ORDER = "GET /v2/orders/{id}"
LOOKUP = "GET /v2/orders:by_client_order_id"
POSITION = "GET /v2/positions/{symbol}"
CLIENT_TIMEOUT_S = 0.3
DELAY_S = 1.0  # the proxy's read-timeout wait, past CLIENT_TIMEOUT_S
AUTH = {"APCA-API-KEY-ID": "key-id", "APCA-API-SECRET-KEY": "secret-key"}


class Upstream:
    """A tiny HTTP server that records every request it processed and echoes it as JSON.

    ``X-Test-Status`` in a request sets the reply's status; ``/chunked`` replies with a
    chunked body; every reply carries ``X-Upstream: echo``.
    """

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _echo_handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def processed(self) -> int:
        with self.lock:
            return len(self.seen)


def _echo_handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            self._echo()

        def do_POST(self) -> None:
            self._echo()

        def do_PATCH(self) -> None:
            self._echo()

        def do_DELETE(self) -> None:
            self._echo()

        def _echo(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            record = {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body,
            }
            with upstream.lock:
                upstream.seen.append(record)
            data = json.dumps(record).encode()
            self.send_response(int(self.headers.get("X-Test-Status") or 200))
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Upstream", "echo")
            if self.path == "/chunked":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                half = len(data) // 2
                for part in (data[:half], data[half:], b""):
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                return
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Echo


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(
        upstream.url, routes=ALPACA_ROUTES, read_timeout_delay_s=DELAY_S, rate_limit_reset_s=2.0
    ) as server:
        yield server


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as client:
        client.headers.update(AUTH)
        yield client


def _post_order(session: requests.Session, proxy: FaultProxy) -> requests.Response:
    return session.post(
        f"{proxy.url}/v2/orders", json={"symbol": "QQQ", "qty": "2"}, timeout=CLIENT_TIMEOUT_S
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ------------------------------------------------------------------ the faults

HTML_FAULTS = [
    (Fault.GATEWAY_TIMEOUT_BEFORE_ACCEPT, 504, "504 Gateway Time-out", 0),
    (Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT, 504, "504 Gateway Time-out", 1),
    (Fault.BAD_GATEWAY_HTML, 502, "502 Bad Gateway", 0),
    (Fault.BAD_GATEWAY_HTML_AFTER_ACCEPT, 502, "502 Bad Gateway", 1),
]


@pytest.mark.parametrize(
    ("fault", "status", "title", "processed"), HTML_FAULTS, ids=[f[0].value for f in HTML_FAULTS]
)
def test_html_fault_when_injected_then_html_status_and_upstream_processed_only_after_accept(
    proxy: FaultProxy,
    upstream: Upstream,
    session: requests.Session,
    fault: Fault,
    status: int,
    title: str,
    processed: int,
) -> None:
    proxy.inject(ORDERS, fault)

    response = _post_order(session, proxy)

    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html"
    assert f"<title>{title}</title>" in response.text
    assert upstream.processed == processed
    assert fault.after_accept is bool(processed)
    assert proxy.pending_faults(ORDERS) == 0
    assert proxy.requests_seen[ORDERS] == 1


def test_server_error_when_injected_then_json_500_and_upstream_not_called(
    proxy: FaultProxy, upstream: Upstream, session: requests.Session
) -> None:
    proxy.inject(ORDERS, Fault.SERVER_ERROR)

    response = _post_order(session, proxy)

    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"code": 50010000, "message": "internal server error"}
    assert upstream.processed == 0


def test_rate_limited_when_injected_then_429_with_reset_header_and_upstream_not_called(
    proxy: FaultProxy, upstream: Upstream, session: requests.Session
) -> None:
    proxy.inject(ORDERS, Fault.RATE_LIMITED)
    before = int(time.time())

    response = _post_order(session, proxy)

    assert response.status_code == 429
    assert response.json()["code"] == 42910000
    assert response.headers["X-Ratelimit-Remaining"] == "0"
    assert before <= int(response.headers["X-Ratelimit-Reset"]) <= int(time.time()) + 2
    assert upstream.processed == 0


@pytest.mark.parametrize(
    ("fault", "processed"),
    [(Fault.READ_TIMEOUT_BEFORE_ACCEPT, 0), (Fault.READ_TIMEOUT_AFTER_ACCEPT, 1)],
    ids=["timeout_before", "timeout_after"],
)
def test_read_timeout_when_injected_then_client_times_out_and_upstream_processed_after_accept(
    proxy: FaultProxy,
    upstream: Upstream,
    session: requests.Session,
    fault: Fault,
    processed: int,
) -> None:
    proxy.inject(ORDERS, fault)
    started = time.monotonic()

    with pytest.raises(requests.exceptions.ReadTimeout):
        _post_order(session, proxy)

    assert time.monotonic() - started < DELAY_S  # the client's timeout, not the proxy's wait
    assert upstream.processed == processed
    assert fault.after_accept is bool(processed)


@pytest.mark.parametrize(
    ("fault", "processed"),
    [(Fault.CONNECTION_RESET_BEFORE_ACCEPT, 0), (Fault.CONNECTION_RESET_AFTER_ACCEPT, 1)],
    ids=["reset_before", "reset_after"],
)
def test_connection_reset_when_injected_then_connection_error_and_upstream_processed_after_accept(
    proxy: FaultProxy,
    upstream: Upstream,
    session: requests.Session,
    fault: Fault,
    processed: int,
) -> None:
    proxy.inject(ORDERS, fault)

    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        _post_order(session, proxy)

    assert not isinstance(caught.value, requests.exceptions.Timeout)
    assert upstream.processed == processed
    assert fault.after_accept is bool(processed)


def test_stop_when_handler_waits_in_timeout_fault_then_it_is_woken_and_resets(
    upstream: Upstream, session: requests.Session
) -> None:
    proxy = FaultProxy(upstream.url, routes=[ORDERS], read_timeout_delay_s=60).start()
    proxy.inject(ORDERS, Fault.READ_TIMEOUT_BEFORE_ACCEPT)
    url = f"{proxy.url}/v2/orders"
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            session.post(url, json={}, timeout=10)
        except requests.RequestException as error:
            outcome.append(error)

    client = threading.Thread(target=call)
    client.start()
    deadline = time.monotonic() + 5
    while proxy.requests_seen[ORDERS] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    proxy.stop()
    client.join(timeout=5)

    assert not client.is_alive()
    assert time.monotonic() - started < 2
    assert len(outcome) == 1
    assert isinstance(outcome[0], requests.exceptions.ConnectionError)
    assert not isinstance(outcome[0], requests.exceptions.Timeout)
    assert upstream.processed == 0


# ------------------------------------------------------------ queueing faults


def test_inject_when_several_faults_then_each_used_once_in_order(
    proxy: FaultProxy, upstream: Upstream, session: requests.Session
) -> None:
    proxy.inject(ORDERS, Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT)
    proxy.inject(ORDERS, Fault.SERVER_ERROR)
    proxy.inject(ORDERS, Fault.BAD_GATEWAY_HTML)
    assert proxy.pending_faults(ORDERS) == 3

    statuses = [_post_order(session, proxy).status_code for _ in range(4)]

    assert statuses == [504, 500, 502, 200]
    assert proxy.pending_faults(ORDERS) == 0
    assert proxy.requests_seen[ORDERS] == 4
    assert upstream.processed == 2  # the 504 after accept and the clean one


def test_inject_when_times_given_then_fault_repeats_that_often(
    proxy: FaultProxy, upstream: Upstream, session: requests.Session
) -> None:
    proxy.inject(ORDERS, Fault.RATE_LIMITED, times=3)

    statuses = [_post_order(session, proxy).status_code for _ in range(4)]

    assert statuses == [429, 429, 429, 200]
    assert upstream.processed == 1


def test_inject_when_fault_on_other_route_then_request_passes(
    proxy: FaultProxy, upstream: Upstream, session: requests.Session
) -> None:
    proxy.inject(ORDERS, Fault.SERVER_ERROR)

    response = session.get(f"{proxy.url}/v2/orders/abc-1", timeout=CLIENT_TIMEOUT_S)

    assert response.status_code == 200
    assert proxy.pending_faults(ORDERS) == 1
    assert proxy.requests_seen == {ORDER: 1}


def test_inject_when_unknown_route_then_value_error(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown route"):
        proxy.inject("POST /v2/nothing", Fault.SERVER_ERROR)
    with pytest.raises(ValueError, match="unknown route"):
        proxy.inject("GET /v2/orders/{order_id}", Fault.SERVER_ERROR)
    with pytest.raises(ValueError, match="unknown route"):
        proxy.pending_faults("GET /v2/nothing")


def test_constructor_when_template_malformed_then_value_error(upstream: Upstream) -> None:
    with pytest.raises(ValueError, match="not '<METHOD> /<path>'"):
        FaultProxy(upstream.url, routes=["/v2/orders"])
    with pytest.raises(ValueError, match="duplicate"):
        FaultProxy(upstream.url, routes=[ORDERS, ORDERS])
    with pytest.raises(ValueError, match="http"):
        FaultProxy("127.0.0.1:8080", routes=[ORDERS])


def test_url_when_not_started_then_runtime_error(upstream: Upstream) -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = FaultProxy(upstream.url, routes=ALPACA_ROUTES).url


# -------------------------------------------------------------- route matching


def test_requests_seen_when_paths_match_templates_then_counted_per_template(
    proxy: FaultProxy, upstream: Upstream, session: requests.Session
) -> None:
    proxy.inject(LOOKUP, Fault.SERVER_ERROR)
    base = proxy.url

    lookup = session.get(
        f"{base}/v2/orders:by_client_order_id",
        params={"client_order_id": "cid-1"},
        timeout=CLIENT_TIMEOUT_S,
    )
    session.get(f"{base}/v2/orders/abc-1", timeout=CLIENT_TIMEOUT_S)
    session.get(f"{base}/v2/positions/BRK.B", timeout=CLIENT_TIMEOUT_S)
    session.get(f"{base}/v2/positions/BRK.B/extra", timeout=CLIENT_TIMEOUT_S)
    session.put(f"{base}/v2/orders", timeout=CLIENT_TIMEOUT_S)

    assert lookup.status_code == 500  # the lookup, not "GET /v2/orders/{id}"
    assert proxy.requests_seen == {
        LOOKUP: 1,
        ORDER: 1,
        POSITION: 1,
        "GET /v2/positions/BRK.B/extra": 1,
        "PUT /v2/orders": 1,
    }
    assert upstream.processed == 3  # the unmatched ones were forwarded too (PUT: 501 there)


# ----------------------------------------------------------------- forwarding


def test_pass_through_when_no_fault_then_status_headers_body_query_and_auth_kept(
    proxy: FaultProxy, upstream: Upstream, session: requests.Session
) -> None:
    response = session.patch(
        f"{proxy.url}/v2/orders/abc-1?qty=3&note=a%20b",
        json={"limit_price": "10.5"},
        headers={"X-Test-Status": "207"},
        timeout=CLIENT_TIMEOUT_S,
    )

    assert response.status_code == 207
    assert response.headers["X-Upstream"] == "echo"
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.content)
    echo = response.json()
    assert echo == upstream.seen[0]
    assert echo["method"] == "PATCH"
    assert echo["path"] == "/v2/orders/abc-1?qty=3&note=a%20b"
    assert json.loads(echo["body"]) == {"limit_price": "10.5"}
    assert echo["headers"]["APCA-API-KEY-ID"] == AUTH["APCA-API-KEY-ID"]
    assert echo["headers"]["APCA-API-SECRET-KEY"] == AUTH["APCA-API-SECRET-KEY"]
    assert echo["headers"]["Host"] == upstream.url.removeprefix("http://")
    assert "Connection" not in echo["headers"]
    assert proxy.requests_seen == {"PATCH /v2/orders/{id}": 1}


def test_pass_through_when_upstream_replies_chunked_then_client_gets_content_length(
    proxy: FaultProxy, session: requests.Session
) -> None:
    response = session.get(f"{proxy.url}/chunked", timeout=CLIENT_TIMEOUT_S)

    assert response.status_code == 200
    assert "Transfer-Encoding" not in response.headers
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.json()["path"] == "/chunked"
    assert proxy.requests_seen == {"GET /chunked": 1}


def test_pass_through_when_client_sends_chunked_body_then_upstream_gets_it_whole(
    proxy: FaultProxy, upstream: Upstream, session: requests.Session
) -> None:
    response = session.post(
        f"{proxy.url}/v2/orders", data=iter([b'{"a": ', b"1}"]), timeout=CLIENT_TIMEOUT_S
    )

    assert response.status_code == 200
    assert upstream.seen[0]["body"] == '{"a": 1}'
    assert "Transfer-Encoding" not in upstream.seen[0]["headers"]


def test_pass_through_when_upstream_down_then_502_json(session: requests.Session) -> None:
    with FaultProxy(f"http://127.0.0.1:{_free_port()}", routes=ALPACA_ROUTES) as proxy:
        response = session.get(f"{proxy.url}/v2/account", timeout=5)

    assert response.status_code == 502
    assert response.json() == {"code": 50200000, "message": "upstream unavailable"}
    assert proxy.requests_seen == {"GET /v2/account": 1}


def test_websocket_upgrade_when_requested_then_501_and_not_forwarded(
    proxy: FaultProxy, upstream: Upstream, session: requests.Session
) -> None:
    response = session.get(
        f"{proxy.url}/stream",
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        timeout=CLIENT_TIMEOUT_S,
    )

    assert response.status_code == 501
    assert upstream.processed == 0


def test_clear_faults_when_some_queued_then_all_dropped_and_counted(
    upstream: Upstream, proxy: FaultProxy, session: requests.Session
) -> None:
    proxy.inject(ORDERS, Fault.SERVER_ERROR, times=2)
    proxy.inject(ORDER, Fault.RATE_LIMITED)

    assert proxy.clear_faults() == 3
    assert proxy.pending_faults(ORDERS) == 0
    assert _post_order(session, proxy).status_code == 200

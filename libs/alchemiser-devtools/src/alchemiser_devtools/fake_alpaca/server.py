"""A fake Alpaca (trading + latest market data) as a real HTTP server on 127.0.0.1.

The server is the standard library's ``ThreadingHTTPServer`` in a background thread rather
than uvicorn: a connection reset needs the raw socket, which a WSGI/ASGI app never sees. A
reset is produced by setting ``SO_LINGER`` to (on, 0 s) on the accepted socket and closing
it without a reply, so the kernel sends a TCP RST; ``requests`` then raises
``ConnectionError``. A read timeout is a handler that waits (on an event that
:meth:`FakeAlpaca.stop` sets) longer than the client's timeout.

Faults are queued per route template, e.g. ``fake.inject("POST /v2/orders",
Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT)``; each queued fault is used by exactly one request.
"*_AFTER_ACCEPT" faults run the real handler first (the order exists) and lose the reply.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from alchemiser_devtools.fake_alpaca.state import FakeAlpacaState, Reply

__all__ = ["FAKE_API_KEY", "FAKE_SECRET_KEY", "ROUTES", "FakeAlpaca", "Fault"]

FAKE_API_KEY = "fake-key-id"
FAKE_SECRET_KEY = "fake-secret-key-do-not-log"  # noqa: S105 - a test credential
_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
_HTML_504 = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"
)


class Fault(StrEnum):
    """A failure the fake can inject into one request."""

    GATEWAY_TIMEOUT_BEFORE_ACCEPT = "504_before"  # HTML 504, request not processed
    GATEWAY_TIMEOUT_AFTER_ACCEPT = "504_after"  # processed, reply replaced by an HTML 504
    BAD_GATEWAY_HTML = "502_html_before"  # HTML 502, not processed
    BAD_GATEWAY_HTML_AFTER_ACCEPT = "502_html_after"  # processed, HTML 502 instead
    SERVER_ERROR = "500_before"  # JSON 500, not processed
    RATE_LIMITED = "429"  # 429 with X-Ratelimit-Reset, not processed
    READ_TIMEOUT_BEFORE_ACCEPT = "timeout_before"  # waits past the client timeout, no effect
    READ_TIMEOUT_AFTER_ACCEPT = "timeout_after"  # processed, then waits past the timeout
    CONNECTION_RESET_BEFORE_ACCEPT = "reset_before"  # TCP RST, not processed
    CONNECTION_RESET_AFTER_ACCEPT = "reset_after"  # processed, then TCP RST

    @property
    def after_accept(self) -> bool:
        """Whether the request takes effect before the failure."""
        return self.value.endswith("_after")


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handle: Callable[[FakeAlpacaState, dict[str, str], dict[str, str], Any], Reply]


def _route(template: str, handle: Callable[..., Reply]) -> _Route:
    method, path = template.split(" ", 1)
    regex = re.escape(path).replace(r"\{symbol\}", r"(?P<symbol>[^/]+)")
    regex = regex.replace(r"\{id\}", r"(?P<id>[^/:]+)")
    return _Route(method, re.compile(f"^{regex}$"), template, handle)


def _symbols(query: dict[str, str]) -> list[str]:
    return [s for s in query.get("symbols", "").split(",") if s]


ROUTES: tuple[_Route, ...] = (
    _route("GET /v2/account", lambda st, p, q, b: st.account()),
    _route("GET /v2/positions", lambda st, p, q, b: st.list_positions()),
    _route("GET /v2/positions/{symbol}", lambda st, p, q, b: st.get_position(p["symbol"])),
    _route("DELETE /v2/positions/{symbol}", lambda st, p, q, b: st.close_position(p["symbol"])),
    _route("GET /v2/clock", lambda st, p, q, b: st.clock()),
    _route("GET /v2/assets/{symbol}", lambda st, p, q, b: st.asset(p["symbol"])),
    _route("POST /v2/orders", lambda st, p, q, b: st.create_order(b or {})),
    _route("GET /v2/orders", lambda st, p, q, b: st.list_orders(q.get("status", "open"))),
    _route(
        "GET /v2/orders:by_client_order_id",
        lambda st, p, q, b: st.get_order_by_client_id(q.get("client_order_id", "")),
    ),
    _route("GET /v2/orders/{id}", lambda st, p, q, b: st.get_order(p["id"])),
    _route("DELETE /v2/orders/{id}", lambda st, p, q, b: st.cancel_order(p["id"])),
    _route("PATCH /v2/orders/{id}", lambda st, p, q, b: st.replace_order(p["id"], b or {})),
    _route("GET /v2/stocks/trades/latest", lambda st, p, q, b: st.latest_trades(_symbols(q))),
    _route("GET /v2/stocks/quotes/latest", lambda st, p, q, b: st.latest_quotes(_symbols(q))),
    _route(
        "GET /v2/stocks/{symbol}/trades/latest",
        lambda st, p, q, b: _single(st.latest_trades([p["symbol"]]), "trades", p["symbol"]),
    ),
    _route(
        "GET /v2/stocks/{symbol}/quotes/latest",
        lambda st, p, q, b: _single(st.latest_quotes([p["symbol"]]), "quotes", p["symbol"]),
    ),
)


def _single(reply: Reply, key: str, symbol: str) -> Reply:
    entry = reply[1][key].get(symbol)
    if entry is None:
        return 404, {"code": 40410000, "message": f"no {key[:-1]} found for {symbol}"}
    return 200, {"symbol": symbol, key[:-1]: entry}


class FakeAlpaca:
    """The fake server: start/stop it (or use ``with``), then point alpaca-py at :attr:`url`.

    ``state`` is the :class:`FakeAlpacaState` (cash, prices, positions, orders, fill mode);
    ``requests_seen`` counts requests per route template, faults included.
    """

    def __init__(
        self,
        state: FakeAlpacaState | None = None,
        *,
        api_key: str = FAKE_API_KEY,
        secret_key: str = FAKE_SECRET_KEY,
        read_timeout_delay_s: float = 2.0,
        rate_limit_reset_s: float = 1.0,
    ) -> None:
        self.state = state or FakeAlpacaState()
        self.api_key = api_key
        self.secret_key = secret_key
        self.read_timeout_delay_s = read_timeout_delay_s
        self.rate_limit_reset_s = rate_limit_reset_s
        self.requests_seen: Counter[str] = Counter()
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- control

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (use for both ``url_override`` and the data URL)."""
        if self._server is None:
            raise RuntimeError("the fake Alpaca server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAlpaca:
        """Bind a free loopback port and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any handler waiting in a timeout fault, close the socket."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeAlpaca:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def inject(self, route: str, fault: Fault, *, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests to ``route`` ("POST /v2/orders")."""
        if route not in {r.template for r in ROUTES}:
            raise ValueError(f"unknown route {route!r}; known: {[r.template for r in ROUTES]}")
        with self._lock:
            self._faults.setdefault(route, deque()).extend([fault] * times)

    def pending_faults(self, route: str) -> int:
        """How many injected faults for ``route`` have not been used yet."""
        with self._lock:
            return len(self._faults.get(route, ()))

    def orders_created(self, client_order_id: str) -> int:
        """How many orders the fake created under ``client_order_id``."""
        with self.state.lock:
            return self.state.created_per_client_id[client_order_id]

    def set_price(self, symbol: str, price: Decimal | str) -> None:
        """Shortcut for ``state.set_price`` accepting text."""
        self.state.set_price(symbol, Decimal(price))

    # --------------------------------------------------------------- serving

    def _next_fault(self, template: str) -> Fault | None:
        with self._lock:
            self.requests_seen[template] += 1
            queue = self._faults.get(template)
            return queue.popleft() if queue else None

    def _wait_past_client_timeout(self) -> None:
        self._stopping.wait(self.read_timeout_delay_s)


def _make_handler(fake: FakeAlpaca) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the per-request stderr lines."""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length else b""
            for route in ROUTES:
                match = route.pattern.match(path) if route.method == method else None
                if match is not None:
                    break
            else:
                self._reply(404, {"code": 40410000, "message": f"no route {method} {path}"})
                return
            fault = fake._next_fault(route.template)
            if not self._authorised():
                self._reply(401, {"code": 40110000, "message": "request is not authorized"})
                return
            if fault is not None and not fault.after_accept:
                self._fail(fault)
                return
            try:
                body = json.loads(raw_body) if raw_body else None
            except ValueError:
                self._reply(400, {"code": 40010000, "message": "request body format is invalid"})
                return
            status, payload = route.handle(fake.state, match.groupdict(), query, body)
            if fault is not None:
                self._fail(fault)
                return
            self._reply(status, payload)

        def _authorised(self) -> bool:
            return (
                self.headers.get("APCA-API-KEY-ID") == fake.api_key
                and self.headers.get("APCA-API-SECRET-KEY") == fake.secret_key
            )

        def _fail(self, fault: Fault) -> None:
            if fault in (Fault.GATEWAY_TIMEOUT_BEFORE_ACCEPT, Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT):
                self._reply_text(504, _HTML_504)
            elif fault in (Fault.BAD_GATEWAY_HTML, Fault.BAD_GATEWAY_HTML_AFTER_ACCEPT):
                self._reply_text(502, _HTML_502)
            elif fault is Fault.SERVER_ERROR:
                self._reply(500, {"code": 50010000, "message": "internal server error"})
            elif fault is Fault.RATE_LIMITED:
                reset = int(time.time() + fake.rate_limit_reset_s)
                headers = {
                    "X-Ratelimit-Limit": "200",
                    "X-Ratelimit-Remaining": "0",
                    "X-Ratelimit-Reset": str(reset),
                }
                self._reply(429, {"code": 42910000, "message": "rate limit exceeded"}, headers)
            elif fault in (Fault.READ_TIMEOUT_BEFORE_ACCEPT, Fault.READ_TIMEOUT_AFTER_ACCEPT):
                fake._wait_past_client_timeout()
                self._reset()
            else:
                self._reset()

        def _reset(self) -> None:
            """Close with SO_LINGER (on, 0): the kernel sends RST instead of FIN."""
            self.close_connection = True
            try:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            except OSError:
                pass

        def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self._send(status, data, "application/json", headers)

        def _reply_text(self, status: int, text: str) -> None:
            self._send(status, text.encode(), "text/html", None)

        def _send(
            self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None
        ) -> None:
            try:
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if data:
                    self.wfile.write(data)
            except OSError:
                self.close_connection = True  # the client went away (e.g. it timed out)

    return Handler

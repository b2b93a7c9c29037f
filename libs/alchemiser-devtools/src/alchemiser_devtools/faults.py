"""A fault-injecting reverse proxy for HTTP, to put in front of any server (e.g. a paper exchange).

The proxy is the standard library's ``ThreadingHTTPServer`` on a free 127.0.0.1 port in a
daemon thread. Every request (method, path and query, headers, body) is forwarded to the
upstream with ``http.client``, one upstream connection per request, and the upstream's
status, headers (less the hop-by-hop ones; ``Content-Length`` recomputed) and body come back::

    with FaultProxy(exchange.url, routes=ALPACA_ROUTES) as proxy:
        proxy.inject("POST /v2/orders", Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT)
        ...  # point the client at proxy.url

Faults are queued per route template; each queued fault is used by exactly one request, in
the order they were injected. A "*_BEFORE_ACCEPT" fault (and ``BAD_GATEWAY_HTML``,
``SERVER_ERROR``, ``RATE_LIMITED``) answers without contacting the upstream; a
"*_AFTER_ACCEPT" fault forwards the request first (so it takes effect upstream) and then
loses the reply. A reset closes the client's socket with ``SO_LINGER`` (on, 0 s) so the
kernel sends a TCP RST (``requests`` raises ``ConnectionError``); a read timeout waits (on
an event that :meth:`FaultProxy.stop` sets) past the client's timeout and then resets.

Requests matching no template are forwarded without faults. WebSocket upgrades are not
proxied (501).
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

__all__ = ["ALPACA_ROUTES", "Fault", "FaultProxy"]

ALPACA_ROUTES: tuple[str, ...] = (
    "GET /v2/account",
    "GET /v2/positions",
    "GET /v2/positions/{symbol}",
    "DELETE /v2/positions/{symbol}",
    "GET /v2/clock",
    "GET /v2/assets/{symbol}",
    "POST /v2/orders",
    "GET /v2/orders",
    "GET /v2/orders:by_client_order_id",
    "GET /v2/orders/{id}",
    "DELETE /v2/orders/{id}",
    "PATCH /v2/orders/{id}",
    "GET /v2/stocks/trades/latest",
    "GET /v2/stocks/quotes/latest",
    "GET /v2/stocks/{symbol}/trades/latest",
    "GET /v2/stocks/{symbol}/quotes/latest",
)

_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
_HTML_504 = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"
)
_UNAVAILABLE = {"code": 50200000, "message": "upstream unavailable"}
_UPSTREAM_TIMEOUT_S = 30.0
_STOP_JOIN_S = 5.0
# RFC 9110 section 7.6.1, plus the (non-standard but common) Proxy-Connection.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

_log = logging.getLogger(__name__)


class Fault(StrEnum):
    """A failure the proxy can inject into one request."""

    GATEWAY_TIMEOUT_BEFORE_ACCEPT = "504_before"  # HTML 504, request not forwarded
    GATEWAY_TIMEOUT_AFTER_ACCEPT = "504_after"  # forwarded, reply replaced by an HTML 504
    BAD_GATEWAY_HTML = "502_html_before"  # HTML 502, not forwarded
    BAD_GATEWAY_HTML_AFTER_ACCEPT = "502_html_after"  # forwarded, HTML 502 instead
    SERVER_ERROR = "500_before"  # JSON 500, not forwarded
    RATE_LIMITED = "429"  # 429 with X-Ratelimit-Reset, not forwarded
    READ_TIMEOUT_BEFORE_ACCEPT = "timeout_before"  # waits past the client timeout, no effect
    READ_TIMEOUT_AFTER_ACCEPT = "timeout_after"  # forwarded, then waits past the timeout
    CONNECTION_RESET_BEFORE_ACCEPT = "reset_before"  # TCP RST, not forwarded
    CONNECTION_RESET_AFTER_ACCEPT = "reset_after"  # forwarded, then TCP RST

    @property
    def after_accept(self) -> bool:
        """Whether the request reaches the upstream (and takes effect) before the failure."""
        return self.value.endswith("_after")


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    template: str


def _compile(template: str) -> _Route:
    """``"GET /v2/orders/{id}"``: ``{id}`` matches ``[^/:]+``, any other ``{name}`` ``[^/]+``."""
    method, sep, path = template.partition(" ")
    if not sep or not method or not path.startswith("/") or method != method.upper():
        raise ValueError(f"route template {template!r} is not '<METHOD> /<path>'")
    regex, last = [], 0
    for placeholder in _PLACEHOLDER.finditer(path):
        regex.append(re.escape(path[last : placeholder.start()]))
        regex.append("[^/:]+" if placeholder.group(1) == "id" else "[^/]+")
        last = placeholder.end()
    regex.append(re.escape(path[last:]))
    return _Route(method, re.compile("^" + "".join(regex) + "$"), template)


@dataclass(frozen=True)
class _Upstream:
    """Where requests go: ``http(s)://host:port`` and an optional path prefix."""

    https: bool
    host: str
    port: int | None
    netloc: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> _Upstream:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream {url!r} is not an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError(f"upstream {url!r} must not have a query or fragment")
        return cls(
            https=parts.scheme == "https",
            host=parts.hostname,
            port=parts.port,
            netloc=parts.netloc,
            prefix=parts.path.rstrip("/"),
        )

    def connect(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=_UPSTREAM_TIMEOUT_S)
        return http.client.HTTPConnection(self.host, self.port, timeout=_UPSTREAM_TIMEOUT_S)


@dataclass(frozen=True)
class _Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class FaultProxy:
    """The proxy: start/stop it (or use ``with``), then point the client at :attr:`url`.

    ``routes`` are the templates faults can be injected into (``"POST /v2/orders"``,
    ``"GET /v2/orders/{id}"``); a request is matched against them in order, first match
    wins. ``requests_seen`` counts requests per matched template (faulted ones included),
    and unmatched ones under ``"<METHOD> <path>"``.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        routes: Sequence[str],
        read_timeout_delay_s: float = 2.0,
        rate_limit_reset_s: float = 1.0,
    ) -> None:
        if isinstance(routes, str):
            raise TypeError("routes must be a sequence of templates, not one string")
        if len(set(routes)) != len(routes):
            raise ValueError(f"duplicate route templates in {list(routes)}")
        self.upstream_url = upstream_url
        self.read_timeout_delay_s = read_timeout_delay_s
        self.rate_limit_reset_s = rate_limit_reset_s
        self.requests_seen: Counter[str] = Counter()
        self._upstream = _Upstream.parse(upstream_url)
        self._routes = tuple(_compile(template) for template in routes)
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- control

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, to use in place of the upstream's URL."""
        if self._server is None:
            raise RuntimeError("the fault proxy is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def routes(self) -> tuple[str, ...]:
        """The route templates, in matching order."""
        return tuple(route.template for route in self._routes)

    def start(self) -> Self:
        """Bind a free loopback port and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fault-proxy",
            daemon=True,
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
            self._thread.join(timeout=_STOP_JOIN_S)
        self._server = self._thread = None

    def __enter__(self) -> Self:
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
        self._check_route(route)
        if times < 0:
            raise ValueError(f"times must not be negative, got {times}")
        with self._lock:
            self._faults.setdefault(route, deque()).extend([Fault(fault)] * times)

    def pending_faults(self, route: str) -> int:
        """How many injected faults for ``route`` have not been used yet."""
        self._check_route(route)
        with self._lock:
            return len(self._faults.get(route, ()))

    def clear_faults(self) -> int:
        """Drop every fault not used yet (the outage ends); returns how many were dropped."""
        with self._lock:
            dropped = sum(len(queue) for queue in self._faults.values())
            self._faults.clear()
            return dropped

    # --------------------------------------------------------------- serving

    def _check_route(self, route: str) -> None:
        if route not in self.routes:
            raise ValueError(f"unknown route {route!r}; known: {list(self.routes)}")

    def _match(self, method: str, path: str) -> str | None:
        for route in self._routes:
            if route.method == method and route.pattern.match(path):
                return route.template
        return None

    def _count(self, key: str) -> None:
        with self._lock:
            self.requests_seen[key] += 1

    def _next_fault(self, template: str) -> Fault | None:
        with self._lock:
            self.requests_seen[template] += 1
            queue = self._faults.get(template)
            return queue.popleft() if queue else None

    def _wait_past_client_timeout(self) -> None:
        self._stopping.wait(self.read_timeout_delay_s)

    def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> _Reply | None:
        """Send the request upstream and read the whole reply; None if that failed."""
        connection = self._upstream.connect()
        try:
            connection.putrequest(
                method,
                self._upstream.prefix + target,
                skip_host=True,
                skip_accept_encoding=True,
            )
            connection.putheader("Host", self._upstream.netloc)
            for name, value in headers:
                connection.putheader(name, value)
            if body or method in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            data = response.read()
            return _Reply(response.status, response.reason, response.getheaders(), data)
        except (OSError, http.client.HTTPException) as error:
            _log.debug("fault proxy: upstream %s failed: %r", self.upstream_url, error)
            return None
        finally:
            connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log handler errors at debug level instead of printing a traceback to stderr."""
        _log.debug("fault proxy: error serving %s", client_address, exc_info=True)


def _hop_by_hop(headers: list[tuple[str, str]]) -> set[str]:
    """The standard hop-by-hop names plus any named in ``Connection`` (lower case)."""
    names = set(_HOP_BY_HOP)
    for name, value in headers:
        if name.lower() == "connection":
            names.update(token.strip().lower() for token in value.split(",") if token.strip())
    return names


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the per-request stderr lines."""

        def do_GET(self) -> None:
            self._serve()

        def do_HEAD(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_PATCH(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def do_OPTIONS(self) -> None:
            self._serve()

        def _serve(self) -> None:
            method = self.command
            path = unquote(urlsplit(self.path).path)
            body = self._read_body()
            if body is None:
                return
            if "websocket" in self.headers.get("Upgrade", "").lower():
                proxy._count(f"{method} {path}")
                self.close_connection = True
                message = {"code": 50100000, "message": "websocket upgrades are not proxied"}
                self._reply(501, message, {"Connection": "close"})
                return
            template = proxy._match(method, path)
            if template is None:
                proxy._count(f"{method} {path}")
                fault = None
            else:
                fault = proxy._next_fault(template)
            if fault is not None and not fault.after_accept:
                self._fail(fault)
                return
            reply = proxy._forward(method, self.path, self._forward_headers(), body)
            if fault is not None:
                self._fail(fault)
            elif reply is None:
                self._reply(502, _UNAVAILABLE)
            else:
                self._relay(reply)

        def _read_body(self) -> bytes | None:
            """The request body (``Content-Length`` or chunked); None after a 400 reply."""
            try:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    return self._read_chunked()
                length = int(self.headers.get("Content-Length") or 0)
                if length < 0:
                    raise ValueError(length)
            except ValueError:
                self.close_connection = True
                self._reply(400, {"code": 40010000, "message": "malformed request body"})
                return None
            return self.rfile.read(length) if length else b""

        def _read_chunked(self) -> bytes:
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailer fields, dropped
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after the chunk

        def _forward_headers(self) -> list[tuple[str, str]]:
            headers = list(self.headers.items())
            drop = _hop_by_hop(headers) | {"host", "content-length", "expect"}
            return [(name, value) for name, value in headers if name.lower() not in drop]

        def _relay(self, reply: _Reply) -> None:
            """Send the upstream's reply: its headers less hop-by-hop ones, its body."""
            drop = _hop_by_hop(reply.headers) | {"content-length"}
            bodiless = self.command == "HEAD" or reply.status in (204, 304) or reply.status < 200
            try:
                self.send_response_only(reply.status, reply.reason or None)
                for name, value in reply.headers:
                    if name.lower() not in drop:
                        self.send_header(name, value)
                if self.command == "HEAD" or reply.status == 304:
                    for name, value in reply.headers:  # describes the body not sent
                        if name.lower() == "content-length":
                            self.send_header(name, value)
                elif not bodiless:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if not bodiless and reply.body:
                    self.wfile.write(reply.body)
            except OSError:
                self.close_connection = True  # the client went away

        def _fail(self, fault: Fault) -> None:
            if fault in (Fault.GATEWAY_TIMEOUT_BEFORE_ACCEPT, Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT):
                self._reply_text(504, _HTML_504)
            elif fault in (Fault.BAD_GATEWAY_HTML, Fault.BAD_GATEWAY_HTML_AFTER_ACCEPT):
                self._reply_text(502, _HTML_502)
            elif fault is Fault.SERVER_ERROR:
                self._reply(500, {"code": 50010000, "message": "internal server error"})
            elif fault is Fault.RATE_LIMITED:
                reset = int(time.time() + proxy.rate_limit_reset_s)
                headers = {
                    "X-Ratelimit-Limit": "200",
                    "X-Ratelimit-Remaining": "0",
                    "X-Ratelimit-Reset": str(reset),
                }
                self._reply(429, {"code": 42910000, "message": "rate limit exceeded"}, headers)
            elif fault in (Fault.READ_TIMEOUT_BEFORE_ACCEPT, Fault.READ_TIMEOUT_AFTER_ACCEPT):
                proxy._wait_past_client_timeout()
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
            self._send(status, json.dumps(payload).encode(), "application/json", headers)

        def _reply_text(self, status: int, text: str) -> None:
            self._send(status, text.encode(), "text/html", None)

        def _send(
            self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except OSError:
                self.close_connection = True  # the client went away (e.g. it timed out)

    return Handler

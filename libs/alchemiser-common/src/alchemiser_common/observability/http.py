"""One small HTTP server per process: ``/metrics``, ``/healthz`` and ``/readyz``.

A threaded ``wsgiref`` server in a daemon thread, with ``prometheus_client``'s WSGI app for
``/metrics`` (it handles gzip and the OpenMetrics ``Accept`` header). No framework: this must
keep answering while the event loop of the service is busy or stuck, and must cost nothing.

* ``/healthz``: 200 while every liveness check passes (the process is alive *and* making
  progress), else 503 with a JSON body naming the failing check and why; Kubernetes restarts
  a pod whose liveness probe keeps failing.
* ``/readyz``: 200 when every readiness check passes, else 503 with a JSON body naming the
  failing checks (``{"status": "not ready", "failing": {"partitions-assigned": "not
  ready"}}``). Checks are time-boxed (see :mod:`.readiness`).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from alchemiser_common.observability.exceptions import ObservabilityServerError
from alchemiser_common.observability.logging import get_logger
from alchemiser_common.observability.readiness import (
    DEFAULT_CHECK_TIMEOUT_S,
    ReadinessCheck,
    ReadinessChecks,
)
from alchemiser_common.observability.settings import ObservabilitySettings

__all__ = ["ObservabilityServer"]

_log = get_logger(__name__)
# Access lines go through stdlib logging: silent (WARNING) until a __main__ configures DEBUG.
_access_log = logging.getLogger(f"{__name__}.access")

# serve_forever notices a shutdown request within this many seconds.
_POLL_INTERVAL_S = 0.2
# stop() gives up waiting after this long; the thread is a daemon and dies with the process.
DEFAULT_STOP_TIMEOUT_S = 5.0

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # Do not join request threads on close: a request stuck on a check must not block stop().
    block_on_close = False


class _IPv6ThreadingServer(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Request handler that logs accesses at DEBUG instead of writing to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        _access_log.debug("%s %s", self.client_address[0], format % args)


def _json(
    start_response: StartResponse, status: str, body: dict[str, Any], head: bool
) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [] if head else [payload]


class ObservabilityServer:
    """Serves ``/metrics`` from a registry plus ``/healthz`` and ``/readyz``.

    Use ``start()`` / ``stop()`` or a ``with`` block. ``port=0`` binds a free port; read the
    bound one from :attr:`port` after ``start()``.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        check_timeout_s: float = DEFAULT_CHECK_TIMEOUT_S,
    ) -> None:
        """Prepare (do not yet bind) a server for ``registry`` on ``host:port``."""
        self._host = host
        self._requested_port = port
        self.readiness = ReadinessChecks(default_timeout_s=check_timeout_s)
        self.liveness = ReadinessChecks(default_timeout_s=check_timeout_s)
        self._metrics_app = make_wsgi_app(registry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: ObservabilitySettings, registry: CollectorRegistry
    ) -> ObservabilityServer:
        """A server bound to ``metrics_host:metrics_port`` from ``settings``."""
        return cls(
            registry,
            host=settings.metrics_host,
            port=settings.metrics_port,
            check_timeout_s=settings.readiness_check_timeout_s,
        )

    def add_readiness_check(
        self, name: str, check: ReadinessCheck, *, timeout_s: float | None = None
    ) -> None:
        """Register (or replace) a readiness check; ``/readyz`` is 200 only when all pass."""
        self.readiness.add(name, check, timeout_s=timeout_s)

    def add_liveness_check(
        self, name: str, check: ReadinessCheck, *, timeout_s: float | None = None
    ) -> None:
        """Register (or replace) a liveness check; ``/healthz`` is 200 only when all pass.

        A check says why it fails by raising (the message lands in the 503 body).
        """
        self.liveness.add(name, check, timeout_s=timeout_s)

    def remove_readiness_check(self, name: str) -> None:
        """Unregister a readiness check (no error when absent)."""
        self.readiness.remove(name)

    @property
    def port(self) -> int:
        """The bound port; raises ``ObservabilityServerError`` before ``start()``."""
        server = self._server
        if server is None:
            raise ObservabilityServerError("the observability server is not running")
        return int(server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:9000``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """True between a successful ``start()`` and ``stop()``."""
        return self._server is not None

    def start(self) -> None:
        """Bind and serve in a daemon thread; raise ``ObservabilityServerError`` if binding fails.

        Binding happens in the caller's thread, so a port in use stops start-up right here.
        """
        with self._lock:
            if self._server is not None:
                return
            server_class = _IPv6ThreadingServer if ":" in self._host else _ThreadingServer
            try:
                server = make_server(
                    self._host,
                    self._requested_port,
                    self._app,
                    server_class=server_class,
                    handler_class=_QuietHandler,
                )
            except OSError as err:
                raise ObservabilityServerError(
                    f"cannot serve /metrics on {self._host}:{self._requested_port}: {err}"
                ) from err
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL_S},
                name="observability-http",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        _log.info("observability server started", host=self._host, port=self.port)

    def stop(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """Stop serving and release the port, waiting at most about ``timeout_s`` seconds."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server, self._thread = None, None
        if server is None or thread is None:
            return
        # shutdown() waits for serve_forever without a time limit: call it from a helper thread.
        stopper = threading.Thread(target=server.shutdown, name="observability-stop", daemon=True)
        stopper.start()
        stopper.join(timeout_s)
        server.server_close()
        thread.join(max(0.0, timeout_s / 2))
        if thread.is_alive():
            _log.warning(
                "observability server thread did not stop in time; it is a daemon and ends "
                "with the process",
                timeout_s=timeout_s,
            )

    def __enter__(self) -> ObservabilityServer:
        """Start the server."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    # WSGI -----------------------------------------------------------------------------------

    def _app(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/metrics":
            result: Iterable[bytes] = self._metrics_app(environ, start_response)
            return result
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return []
        head = method == "HEAD"
        if path == "/healthz":
            live = self.liveness.run()
            if live.ready:
                return _json(start_response, "200 OK", {"status": "ok"}, head)
            failing_live = {r.name: r.detail for r in live.failing}
            body_dead = {"status": "unhealthy", "failing": failing_live}
            return _json(start_response, "503 Service Unavailable", body_dead, head)
        if path == "/readyz":
            report = self.readiness.run()
            if report.ready:
                body = {"status": "ready", "checks": [r.name for r in report.results]}
                return _json(start_response, "200 OK", body, head)
            failing = {r.name: r.detail for r in report.failing}
            body_fail = {"status": "not ready", "failing": failing}
            return _json(start_response, "503 Service Unavailable", body_fail, head)
        return _json(start_response, "404 Not Found", {"error": "not found", "path": path}, head)

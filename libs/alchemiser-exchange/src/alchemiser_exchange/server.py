"""Run the exchange: in the foreground until SIGTERM/SIGINT, or in a thread (tests, tools).

:func:`build_exchange` turns :class:`~alchemiser_exchange.settings.ExchangeSettings` into a
migrated :class:`~alchemiser_exchange.book.Exchange` (a missing or empty dataset stops the
start-up with a message naming the setting). :func:`serve` logs one line when the server
answers (``READY_PREFIX`` and its URL, the real port when ``port=0`` was asked).
:class:`ExchangeServer` runs the same server in a background thread on a free port.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from types import FrameType, TracebackType

import uvicorn
from fastapi import FastAPI

from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import ConfigurationError
from alchemiser_exchange.app import create_app
from alchemiser_exchange.book import Exchange
from alchemiser_exchange.settings import ExchangeSettings
from alchemiser_marketdata import DatasetMarketData, InvalidDatasetError

__all__ = [
    "DATASET_DIR_ENV",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "READY_PREFIX",
    "ExchangeServer",
    "build_exchange",
    "serve",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8300
READY_PREFIX = "paper exchange ready on "
DATASET_DIR_ENV = "ALCHEMISER_EXCHANGE__DATASET_DIR"

logger = logging.getLogger(__name__)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def build_exchange(settings: ExchangeSettings) -> Exchange:
    """The exchange over its database (migrated) and dataset (loaded and checked now)."""
    directory = settings.dataset_dir
    if directory is None:
        raise ConfigurationError(
            f"{DATASET_DIR_ENV} (or --dataset-dir) is required: the directory of daily bar "
            "files the exchange prices from"
        )
    if not directory.is_dir():
        raise ConfigurationError(f"invalid setting {DATASET_DIR_ENV}={directory}: not a directory")
    dataset = DatasetMarketData(directory)
    try:
        days = dataset.trading_days()
    except InvalidDatasetError as err:
        raise ConfigurationError(f"invalid setting {DATASET_DIR_ENV}={directory}: {err}") from err
    if not days:
        raise ConfigurationError(f"invalid setting {DATASET_DIR_ENV}={directory}: no bar files")
    engine = create_engine_from_url(
        settings.database_url.get_secret_value(), application_name="alchemiser-exchange"
    )
    exchange = Exchange(engine, dataset, settings)
    exchange.migrate()
    return exchange


class _Server(uvicorn.Server):
    """uvicorn's server, noting the URL it bound once it listens."""

    url: str | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening, then log the URL actually bound."""
        await super().startup(sockets)
        if self.should_exit:
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        logger.info("%s%s", READY_PREFIX, self.url)


def _config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="websockets-sansio",
        ws_ping_interval=None,
    )


def _note_signal(signum: int, _frame: FrameType | None) -> None:
    """Replaces the default action uvicorn re-raises after its graceful shutdown."""
    logger.info("paper exchange stopped by %s", signal.Signals(signum).name)


def serve(
    exchange: Exchange,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    admin_token: str | None = None,
) -> None:
    """Serve ``exchange`` until SIGTERM or SIGINT (then return normally)."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, _note_signal) for sig in _STOP_SIGNALS} if in_main_thread else {}
    )
    try:
        app = create_app(exchange, admin_token=admin_token)
        _Server(_config(app, host, port)).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        exchange.engine.dispose()


class ExchangeServer:
    """The exchange's server in a daemon thread on 127.0.0.1 (a free port unless given).

    ``with ExchangeServer(exchange) as server:`` then point clients at :attr:`url` (REST and
    market data) and :attr:`stream_url` (the trade-updates WebSocket). :meth:`stop` closes
    every connection, stream ones included; :meth:`start` again serves the same exchange,
    on the same port.
    """

    def __init__(
        self, exchange: Exchange, *, port: int = 0, admin_token: str | None = None
    ) -> None:
        self.exchange = exchange
        self._port = port
        self._admin_token = admin_token
        self._server: _Server | None = None
        self._app: FastAPI | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._server is None or self._server.url is None:
            raise RuntimeError("the exchange server is not running")
        return self._server.url

    @property
    def stream_url(self) -> str:
        """``ws://127.0.0.1:<port>/stream``."""
        return self.url.replace("http://", "ws://", 1) + "/stream"

    def start(self, timeout_s: float = 10.0) -> ExchangeServer:
        """Serve in a thread; returns once the socket listens."""
        if self._server is not None:
            return self
        self._app = create_app(self.exchange, admin_token=self._admin_token)
        server = _Server(_config(self._app, DEFAULT_HOST, self._port))
        self._server = server
        self._thread = threading.Thread(target=server.run, name="exchange-server", daemon=True)
        self._thread.start()
        ready = threading.Event()
        deadline = timeout_s
        while server.url is None and deadline > 0 and self._thread.is_alive():
            ready.wait(0.02)
            deadline -= 0.02
        if server.url is None:
            self.stop()
            raise RuntimeError("the exchange server did not start")
        self._port = int(server.url.rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        """Stop serving and close every connection (waits for the thread)."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._app is not None:  # its stream hub stops listening to the exchange
            self._app.state.unsubscribe()
            self._app = None
        self._server = self._thread = None

    def __enter__(self) -> ExchangeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

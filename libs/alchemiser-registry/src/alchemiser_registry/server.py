"""Run the registry in the foreground with uvicorn until SIGTERM or SIGINT.

One log line says when the server answers (``READY_PREFIX`` followed by its URL, the real
port when ``port=0`` was asked); a signal shuts it down gracefully and :func:`serve` returns
normally, so the process exits with status 0.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from pathlib import Path
from types import FrameType

import uvicorn

from alchemiser_registry.app import create_app
from alchemiser_registry.store import SchemaStore

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "READY_PREFIX", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081
READY_PREFIX = "schema registry ready on "

logger = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn's server, logging the ready line once the socket listens."""

    def __init__(self, config: uvicorn.Config, data_dir: Path) -> None:
        super().__init__(config)
        self._data_dir = data_dir

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening, then log the URL actually bound."""
        await super().startup(sockets)
        if self.should_exit:
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        logger.info("%shttp://%s:%d (data dir %s)", READY_PREFIX, host, port, self._data_dir)


def _note_signal(signum: int, _frame: FrameType | None) -> None:
    """Replaces the default action uvicorn re-raises after its graceful shutdown."""
    logger.info("schema registry stopped by %s", signal.Signals(signum).name)


def serve(data_dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the registry over the store in ``data_dir`` until SIGTERM or SIGINT."""
    store = SchemaStore(data_dir)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, _note_signal) for sig in _STOP_SIGNALS} if in_main_thread else {}
    )
    try:
        config = uvicorn.Config(
            create_app(store),
            host=host,
            port=port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        _Server(config, data_dir).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.close()

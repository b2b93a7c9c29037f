"""Pytest fixtures: the project's schema registry server as a child process.

* ``registry_url`` (session): the URL of a registry shared by the whole session. When
  ``ALCHEMISER_TEST_REGISTRY_URL`` is set it is used as is (e.g. a real Confluent registry);
  otherwise ``python -m alchemiser_registry serve`` runs on a free loopback port over a
  temporary directory and is stopped at the end of the session.
* ``registry_client`` (function): a fresh ``SchemaRegistryClient`` for ``registry_url``.
* ``registry_server`` (function): a private server over the test's ``tmp_path``, for tests
  that change the global level or restart the server.

:class:`RegistryServerProcess` is the helper behind them, usable directly for restart tests.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from alchemiser_registry.server import DEFAULT_HOST, READY_PREFIX

__all__ = [
    "REGISTRY_URL_ENV",
    "RegistryServerProcess",
    "registry_client",
    "registry_server",
    "registry_url",
]

REGISTRY_URL_ENV = "ALCHEMISER_TEST_REGISTRY_URL"
# Start-up imports FastAPI and avro (about a second); allow for a loaded CI machine.
STARTUP_TIMEOUT_S = 30.0
# Graceful shutdown only closes idle connections; beyond this the process is killed.
STOP_TIMEOUT_S = 10.0
_POLL_S = 0.05
_READY = re.compile(re.escape(READY_PREFIX) + r"(http://\S+)")


class RegistryServerProcess:
    """``alchemiser registry serve`` over ``data_dir`` as a child process.

    ``port=None`` lets the server pick a free port on the first start; restarts keep the port,
    so clients holding ``url`` keep working. Use as a context manager or call
    :meth:`start` and :meth:`stop`; :meth:`kill` simulates a crash.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        host: str = DEFAULT_HOST,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        stop_timeout: float = STOP_TIMEOUT_S,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The server's base URL (known once started)."""
        if self._url is None:
            raise RuntimeError("the registry server has not been started")
        return self._url

    @property
    def log_path(self) -> Path | None:
        """The log file of the last start (``None`` before the first)."""
        return self._log_path

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> RegistryServerProcess:
        """Start the server and wait until it answers; raise ``RuntimeError`` if it does not."""
        if self.running:
            raise RuntimeError("the registry server is already running")
        fd, log_name = tempfile.mkstemp(prefix="alchemiser-registry-", suffix=".log")
        self._log_path = Path(log_name)
        command = [
            sys.executable,
            "-m",
            "alchemiser_registry",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port or 0),
            "--data-dir",
            str(self.data_dir),
        ]
        with os.fdopen(fd, "wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            self._url = self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        self.port = int(self._url.rsplit(":", 1)[1])
        return self

    def _log_text(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")

    def _wait_until_ready(self) -> str:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the registry server exited with {self._process.returncode}:\n"
                    f"{self._log_text()}"
                )
            match = _READY.search(self._log_text())
            if match and _answers(match.group(1)):
                return match.group(1)
            time.sleep(_POLL_S)
        raise RuntimeError(
            f"the registry server did not answer within {self.startup_timeout} s:\n"
            f"{self._log_text()}"
        )

    def stop(self) -> int | None:
        """SIGTERM, then kill after ``stop_timeout``; answer the exit status (None if never run)."""
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            if self._log_path is not None:
                self._log_path.unlink(missing_ok=True)
                self._log_path = None
        return process.returncode

    def kill(self) -> int | None:
        """SIGKILL the server (a crash: no graceful shutdown); answer the exit status."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        return self.stop()

    def restart(self) -> RegistryServerProcess:
        """Stop and start again over the same directory and port."""
        self.stop()
        return self.start()

    def __enter__(self) -> RegistryServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A schema registry for the session: ``$ALCHEMISER_TEST_REGISTRY_URL`` or our server."""
    external = os.environ.get(REGISTRY_URL_ENV)
    if external:
        yield external.rstrip("/")
        return
    with RegistryServerProcess(tmp_path_factory.mktemp("registry")) as server:
        yield server.url


@pytest.fixture
def registry_client(registry_url: str) -> SchemaRegistryClient:
    """A new confluent-kafka client (empty caches) for the session's registry."""
    return SchemaRegistryClient({"url": registry_url})


@pytest.fixture
def registry_server(tmp_path: Path) -> Iterator[RegistryServerProcess]:
    """A private registry server over ``tmp_path / "registry"``, stopped after the test."""
    with RegistryServerProcess(tmp_path / "registry") as server:
        yield server

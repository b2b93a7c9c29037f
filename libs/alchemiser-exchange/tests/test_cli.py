"""``alchemiser exchange``: the real command as a process, and its refusals in process.

Starting the command costs seconds (it imports every plugin of the CLI), so the process
tests run concurrently: the refused start is launched by a module fixture before the serve
test and only collected afterwards.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
import requests
from pydantic import SecretStr
from typer.testing import CliRunner

from alchemiser_exchange import ExchangeSettings, account_number_for, build_exchange
from alchemiser_exchange.cli import app
from alchemiser_exchange.server import DATASET_DIR_ENV, READY_PREFIX

COMMAND = Path(sys.executable).parent / "alchemiser"
START_TIMEOUT_S = 60.0  # a cold start of the CLI on a loaded machine
STOP_TIMEOUT_S = 15.0
AUTH = {"APCA-API-KEY-ID": "cli-key", "APCA-API-SECRET-KEY": "cli-secret"}

pytestmark = pytest.mark.timeout(120)


def _environment() -> dict[str, str]:
    """This process's environment without any ALCHEMISER_ setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ALCHEMISER_")}


@pytest.fixture(scope="module")
def refused_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    """``alchemiser exchange serve`` without a dataset, started now, collected by its test."""
    process = subprocess.Popen(
        [str(COMMAND), "exchange", "serve", "--port", "0"],
        cwd=tmp_path_factory.mktemp("refused"),
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=STOP_TIMEOUT_S)


class _Lines:
    """The lines of a process's pipe, read in a thread as they come."""

    def __init__(self, stream: IO[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line)

    def next(self, timeout: float) -> str | None:
        try:
            line = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        self.seen.append(line)
        return line

    def rest(self) -> str:
        """Everything read, once the pipe is closed (the process ended)."""
        self._thread.join(STOP_TIMEOUT_S)
        while self.next(0) is not None:
            pass
        return "".join(self.seen)


def _ready_url(lines: _Lines, process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = lines.next(timeout=0.1)
        if line is None:
            assert process.poll() is None, f"the exchange exited: {''.join(lines.seen)}"
        elif READY_PREFIX in line:
            return line.split(READY_PREFIX, 1)[1].strip()
    raise AssertionError(f"no ready line within {START_TIMEOUT_S}s: {''.join(lines.seen)}")


def test_serve_when_started_as_a_process_then_answers_and_stops_on_sigterm(
    refused_start: subprocess.Popen[str],
    bars_dir: Path,
    tmp_path: Path,
) -> None:
    database = tmp_path / "state" / "exchange.db"
    process = subprocess.Popen(
        [
            str(COMMAND),
            "exchange",
            "serve",
            "--dataset-dir",
            str(bars_dir),
            "--database-url",
            f"sqlite:///{database}",
            "--port",
            "0",
        ],
        cwd=tmp_path,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = _Lines(process.stdout)
    try:
        url = _ready_url(lines, process)
        assert url.startswith("http://127.0.0.1:")

        clock = requests.get(url + "/v2/clock", headers=AUTH, timeout=5)
        account = requests.get(url + "/v2/account", headers=AUTH, timeout=5)

        assert clock.status_code == 200
        assert clock.json()["timestamp"].startswith("2025-03-10")  # the dataset's last day
        assert account.json()["account_number"] == account_number_for("cli-key")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
    assert database.exists()
    logged = lines.rest()
    assert "paper exchange stopped by SIGTERM" in logged
    assert "Traceback" not in logged


def test_serve_when_dataset_dir_not_given_as_a_process_then_exit_2_naming_the_variable(
    refused_start: subprocess.Popen[str],
) -> None:
    _out, err = refused_start.communicate(timeout=START_TIMEOUT_S)

    assert refused_start.returncode == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert DATASET_DIR_ENV in lines[0]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("ALCHEMISER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def _bad_dataset(kind: str, write_bars: Callable[[str, str], Path], tmp_path: Path) -> Path:
    if kind == "missing":
        return tmp_path / "nowhere"
    if kind == "file":
        path = tmp_path / "bars.csv"
        path.write_text("date,symbol,open,high,low,close,volume\n", encoding="utf-8")
        return path
    if kind == "empty":
        path = tmp_path / "empty"
        path.mkdir()
        return path
    return write_bars("malformed", "date,symbol,close\n2025-03-14,SPY,1\n")


@pytest.mark.parametrize("kind", ["missing", "file", "empty", "malformed"])
@pytest.mark.parametrize("via", ["option", "environment"])
def test_serve_when_dataset_dir_invalid_then_exit_2_with_one_line_naming_the_variable(
    runner: CliRunner,
    write_bars: Callable[[str, str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    via: str,
) -> None:
    dataset = _bad_dataset(kind, write_bars, tmp_path)
    arguments = ["serve", "--port", "0", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"]
    if via == "option":
        arguments += ["--dataset-dir", str(dataset)]
    else:
        monkeypatch.setenv(DATASET_DIR_ENV, str(dataset))

    result = runner.invoke(app, arguments)

    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: invalid setting {DATASET_DIR_ENV}=")
    assert not (tmp_path / "x.db").exists()


def test_accounts_when_listed_then_one_json_line_per_account(
    runner: CliRunner, bars_dir: Path, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'x.db'}"
    exchange = build_exchange(
        ExchangeSettings(dataset_dir=bars_dir, database_url=SecretStr(database))
    )
    exchange.open_account("k1", "s", account_number="PA-ONE", cash=None)
    exchange.engine.dispose()

    result = runner.invoke(
        app, ["accounts", "--dataset-dir", str(bars_dir), "--database-url", database]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines() == [
        '{"account_number": "PA-ONE", "cash": "100000", "session": "2025-03-10"}'
    ]

"""The issue's acceptance, as an operator runs it: ``alchemiser dev run --sessions 3`` (``make
run SESSIONS=3``) with a real SMTP server on loopback, then ``alchemiser ledger pnl --json``.

* three workflows -> three e-mails (one per workflow) at the local SMTP server (aiosmtpd);
* every event the ledger consumes re-produced onto its topic (``alchemiser replay``) -> the
  ledger consumes them all again and sends nothing more;
* the ledger's P&L equals the P&L computed from the paper exchange's account history (its
  equity at each session's close, replayed from its own fills and the dataset's closes).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from email import message_from_bytes
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from alchemiser_common.db import create_engine_from_url
from alchemiser_devtools.local import free_port
from alchemiser_exchange import Exchange, TradingRules
from alchemiser_marketdata.dataset import DatasetMarketData

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
DATASET = REPO / "services" / "strategy" / "data" / "demo"
LAST_SESSION = "2016-03-03"
SESSIONS = ("2016-03-01", "2016-03-02", "2016-03-03")
RUN_TIMEOUT_S = 240.0
COMMAND_TIMEOUT_S = 60.0
LEDGER_TOPICS = (
    "strategy.signal.generated.v1",
    "execution.order.settled.v1",
    "workflow.completed.v1",
    "workflow.failed.v1",
)


class _Inbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALCHEMISER_")}
    return {**env, **extra}


def _alchemiser(
    *args: str, env: dict[str, str], timeout: float = COMMAND_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alchemiser_common.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
        check=False,
    )


def _stack_env(run_dir: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of the stack's ``stack.env``."""
    values: dict[str, str] = {}
    for line in (run_dir / "stack.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


def _wait_for(predicate: Any, timeout_s: float, what: str, detail: Any = lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what} {detail()}"
        time.sleep(0.2)


def _duplicates(run_dir: Path) -> int:
    """How many inputs the ledger recognised as already handled (its metrics endpoint)."""
    state = json.loads((run_dir / "stack.json").read_text())
    (port,) = [p["port"] for p in state["processes"] if p["name"] == "ledger"]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("event_consumed_total{") and 'outcome="duplicate"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _exchange_history(run_dir: Path, account: str) -> list[Any]:
    engine = create_engine_from_url(f"sqlite:///{run_dir / 'exchange.db'}")
    try:
        exchange = Exchange(engine, DatasetMarketData(DATASET), TradingRules())
        return list(exchange.equity_history(account))
    finally:
        engine.dispose()


@pytest.mark.timeout(420)
def test_three_sessions_then_three_mails_pnl_equals_the_exchange_and_replays_send_none(
    tmp_path: Path, smtp: tuple[_Inbox, int]
) -> None:
    inbox, port = smtp
    run_dir = tmp_path / "run"
    notify = {
        "ALCHEMISER_NOTIFY__SMTP__HOST": "127.0.0.1",
        "ALCHEMISER_NOTIFY__SMTP__PORT": str(port),
        "ALCHEMISER_NOTIFY__SMTP__STARTTLS": "false",
        "ALCHEMISER_NOTIFY__SMTP__SENDER": "alchemiser@example.com",
        "ALCHEMISER_NOTIFY__SMTP__RECIPIENTS": '["ops@example.com"]',
        "ALCHEMISER_NOTIFY__POLL_INTERVAL_S": "0.2",
    }
    env = _environment(notify)
    run = _alchemiser(
        "dev", "run", "--date", LAST_SESSION, "--sessions", "3", "--run-dir", str(run_dir),
        "--keep", env=env, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    try:
        assert run.returncode == 0, run.stdout + run.stderr
        for session in SESSIONS:
            assert f"session {session}" in run.stdout
        stack = _stack_env(run_dir)
        operator = _environment(stack)

        _wait_for(lambda: len(inbox.messages) >= 3, 60, "three e-mails")
        subjects = [str(message["Subject"]) for message in inbox.messages]
        assert len(inbox.messages) == 3, subjects
        assert all("completed" in subject for subject in subjects), subjects
        assert inbox.recipients == [["ops@example.com"]] * 3
        for message in inbox.messages:
            kinds = {part.get_content_type() for part in message.walk()}
            assert {"text/plain", "text/html"} <= kinds

        # Redeliver every event the ledger consumed: it takes each as a duplicate, sends nothing.
        replays = 0
        for topic in LEDGER_TOPICS:
            replayed = _alchemiser(
                "replay", "--topic", topic, "--from", "0", "--yes", "--json", env=operator
            )
            assert replayed.returncode in {0, 2}, replayed.stdout + replayed.stderr
            if replayed.returncode == 2:  # an empty topic (no workflow failed)
                assert topic == "workflow.failed.v1", replayed.stderr
            else:
                replays += json.loads(replayed.stdout)["records"]
        assert replays == 9  # 3 signals, 3 settled, 3 completed
        _wait_for(
            lambda: _duplicates(run_dir) >= replays,
            90,
            "the ledger to take every replayed event as a duplicate",
            lambda: f"(duplicates: {_duplicates(run_dir)})",
        )
        time.sleep(2.0)  # several sender rounds (every 0.2 s)
        assert len(inbox.messages) == 3

        pnl = _alchemiser("ledger", "pnl", "--json", env=operator)
        assert pnl.returncode == 0, pnl.stdout + pnl.stderr
        statement = json.loads(pnl.stdout)
        account = statement["account_id"]
    finally:
        _alchemiser("dev", "down", "--run-dir", str(run_dir), env=_environment({}))

    history = _exchange_history(run_dir, account)
    by_session = {point.session: point for point in history}
    days = statement["days"]
    assert [day["session"] for day in days] == list(SESSIONS)
    assert Decimal(statement["inception_equity"]) == Decimal(100000)
    total = Decimal(0)
    for day in days:
        point = by_session[date.fromisoformat(day["session"])]
        assert Decimal(day["equity"]) == point.equity, (day, point)
        assert Decimal(day["account"]["day"]) == point.profit_loss, (day, point)
        total += point.profit_loss
        assert Decimal(day["account"]["since_inception"]) == total
        strategies = sum((Decimal(s["day"]) for s in day["strategies"].values()), Decimal(0))
        assert abs(strategies - point.profit_loss) <= Decimal("0.05"), (day, point)
    assert statement["breaks"] == {}

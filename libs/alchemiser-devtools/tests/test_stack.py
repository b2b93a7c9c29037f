"""``alchemiser dev run|up|status|down`` as an operator runs them: a subprocess each, the whole
system as separate processes on 127.0.0.1, state and logs in a temporary run directory."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from alchemiser_devtools.local import is_listening
from alchemiser_devtools.stack import ENV_FILE, SERVICES, STATE_FILE, WORKFLOW_FILE, StackProcess

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
DATASET = REPO / "services" / "strategy" / "data" / "demo"
SESSION = "2016-03-01"
# Start-up is six Python processes importing at once (30-50 s on a loaded 2-CPU machine), the
# workflow a few seconds, the stop a few more.
RUN_TIMEOUT_S = 150.0
COMMAND_TIMEOUT_S = 60.0
LOGS = {f"{name}.log" for name in ("broker", "registry", "exchange", *SERVICES)}


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALCHEMISER_")}
    return {**env, **(extra or {})}


def _alchemiser(
    *args: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alchemiser_common.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or _environment(),
        cwd=REPO,
        check=False,
    )


def _closes(session: str) -> dict[str, Decimal]:
    """Every symbol's close on ``session``, read from the dataset's CSV files."""
    closes: dict[str, Decimal] = {}
    for path in DATASET.glob("*.csv"):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["date"] == session:
                    closes[row["symbol"]] = Decimal(row["close"])
    return closes


def _assert_stopped(state: dict[str, Any]) -> None:
    processes = [StackProcess.from_json(p) for p in state["processes"]]
    assert {p.name for p in processes} >= {"broker", "tansu", "registry", *SERVICES}
    for process in processes:
        assert not process.alive(), f"{process.name} (pid {process.pid}) still runs"
        if process.port is not None:
            assert not is_listening("127.0.0.1", process.port), f"{process.name}'s port is open"


def _assert_console_logs(run_dir: Path) -> None:
    names = {path.name for path in run_dir.glob("*.log")}
    assert names >= LOGS
    for name in LOGS:
        lines = (run_dir / name).read_text().splitlines()
        assert lines, f"{name} is empty"
        for line in lines:
            assert not line.lstrip().startswith("{"), f"{name} has a JSON line: {line}"


def _line_of(output: str, symbol: str, side: str) -> str:
    rows = [line for line in output.splitlines() if f" {symbol} " in line and f" {side} " in line]
    assert rows, f"no order row for {symbol} in the summary"
    return rows[0]


def test_run_when_dated_then_trades_at_that_days_closes_and_stops_everything(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"

    result = _alchemiser(
        "dev", "run", "--date", SESSION, "--run-dir", str(run_dir), timeout=RUN_TIMEOUT_S
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    record = json.loads((run_dir / WORKFLOW_FILE).read_text())
    closes = _closes(SESSION)
    executed = record["events"]["TradeExecuted"]["event"]
    filled = [order for order in executed["orders"] if Decimal(order["filled_qty"]) > 0]
    assert filled, executed
    for order in filled:  # market orders fill at the session's close
        close = closes[order["symbol"]]
        assert Decimal(order["filled_avg_price"]) == close, order
        assert f"{close.normalize():f}" in _line_of(result.stdout, order["symbol"], order["side"])
    account = record["account"]["account"]
    positions = record["account"]["positions"]
    assert {p["symbol"] for p in positions} == {o["symbol"] for o in filled}
    for position in positions:  # valued at the session's closes
        assert Decimal(position["current_price"]) == closes[position["symbol"]]
    # bought at the closes, no fees: the equity is the starting cash (to the cent per fill)
    assert abs(Decimal(account["equity"]) - Decimal(100000)) <= Decimal("0.01") * len(filled)
    # the summary: allocations, target, plan, orders, the account after, the hops, the outcome
    for heading in ("Strategies", "Consolidated target", "Plan", "Orders", "Hops", "completed"):
        assert heading in result.stdout
    assert f"Account {account['account_number']} after the workflow" in result.stdout
    assert f"session {SESSION}" in result.stdout
    for line in result.stdout.splitlines():  # progress on the terminal, never JSON logs
        assert not line.lstrip().startswith('{"'), line
    _assert_stopped(record["stack"])
    assert not (run_dir / STATE_FILE).exists()
    assert not (run_dir / ENV_FILE).exists()
    _assert_console_logs(run_dir)


@pytest.mark.timeout(300)
def test_up_leaves_the_stack_for_operator_commands_until_down(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    up = _alchemiser("dev", "up", "--run-dir", str(run_dir), timeout=RUN_TIMEOUT_S)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((run_dir / STATE_FILE).read_text())
        variables = dict(
            shlex.split(line)[0].split("=", 1)
            for line in (run_dir / ENV_FILE).read_text().splitlines()
            if line and not line.startswith("#")
        )
        assert variables["ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS"] == state["bootstrap_servers"]
        assert variables["ALCHEMISER_BROKER__EXCHANGE_URL"] == state["exchange_url"]

        status = _alchemiser("dev", "status", "--run-dir", str(run_dir), timeout=COMMAND_TIMEOUT_S)
        assert status.returncode == 0, status.stdout + status.stderr
        for name in ("broker", "registry", "exchange", *SERVICES):
            assert any(name in line and "running" in line for line in status.stdout.splitlines())

        # `set -a; . stack.env` and an operator command: a workflow on the running stack
        started = _alchemiser(
            "workflow",
            "start",
            "--account",
            state["account"],
            "--as-of",
            SESSION,
            "--rerun",
            "--wait",
            "--timeout",
            "60",
            timeout=COMMAND_TIMEOUT_S + 30,
            env=_environment(variables),
        )
        assert started.returncode == 0, started.stdout + started.stderr
        assert "completed" in started.stdout
        _operator_commands(state, _environment(variables), started.stdout)
    finally:
        down = _alchemiser("dev", "down", "--run-dir", str(run_dir), timeout=COMMAND_TIMEOUT_S)
    assert down.returncode == 0, down.stdout + down.stderr
    _assert_stopped(state)
    assert not (run_dir / STATE_FILE).exists()
    assert not (run_dir / ENV_FILE).exists()
    _assert_console_logs(run_dir)
    after = _alchemiser("dev", "status", "--run-dir", str(run_dir), timeout=COMMAND_TIMEOUT_S)
    assert after.returncode == 1
    assert "no stack" in after.stdout


def _operator_commands(state: dict[str, Any], env: dict[str, str], started: str) -> None:
    """``workflow show``, ``tail``, ``account show`` and ``dlq redrive`` on the running stack."""
    workflow_id = re.search(r"workflow ([0-9a-f-]{36})", started)
    assert workflow_id is not None, started
    shown = _alchemiser(
        "workflow", "show", workflow_id.group(1), "--json", timeout=COMMAND_TIMEOUT_S, env=env
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    chain = json.loads(shown.stdout)
    types = {record["event_type"] for record in chain["records"]}
    assert {"WorkflowStarted", "SignalGenerated", "RebalancePlanned", "TradeExecuted"} <= types
    assert "WorkflowCompleted" in types

    tailed = _alchemiser(
        "tail",
        "--from-beginning",
        "--correlation-id",
        workflow_id.group(1),
        "--limit",
        "5",
        "--json",
        timeout=COMMAND_TIMEOUT_S,
        env=env,
    )
    assert tailed.returncode == 0, tailed.stdout + tailed.stderr
    lines = [json.loads(line) for line in tailed.stdout.splitlines() if line.strip()]
    assert len(lines) == 5

    account = _alchemiser("account", "show", "--json", timeout=COMMAND_TIMEOUT_S, env=env)
    assert account.returncode == 0, account.stdout + account.stderr
    document = json.loads(account.stdout)
    assert document["account_number"] == state["account"]
    assert document["positions"] and document["orders"]
    assert all(order["client_order_id"] for order in document["orders"])

    # a malformed trigger is dead-lettered by strategy; a redrive sends the same bytes back,
    # where they are refused again (still malformed): nothing is lost, nothing doubled
    producer = Producer({"bootstrap.servers": state["bootstrap_servers"]})
    producer.produce("workflow.started.v1", value=b"not avro", key=state["account"].encode())
    producer.flush(10)
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while True:
        listed = _alchemiser(
            "dlq",
            "list",
            "--topic",
            "workflow.started.v1",
            "--json",
            timeout=COMMAND_TIMEOUT_S,
            env=env,
        )
        if listed.returncode == 0 and json.loads(listed.stdout):
            break
        assert time.monotonic() < deadline, listed.stdout + listed.stderr
        time.sleep(1)
    redriven = _alchemiser(
        "dlq",
        "redrive",
        "workflow.started.v1",
        "--all",
        "--yes",
        timeout=COMMAND_TIMEOUT_S,
        env=env,
    )
    assert redriven.returncode == 0, redriven.stdout + redriven.stderr
    assert "workflow.started.v1" in redriven.stdout

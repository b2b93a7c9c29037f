"""``alchemiser workflow list|show`` and ``alchemiser tail`` against a real broker and registry."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from alchemiser_common.errors import DeadLetterReason
from alchemiser_common.events import WorkflowCompleted, WorkflowFailed, WorkflowStarted
from alchemiser_common.events.samples import (
    sample_rebalance_planned,
    sample_signal_generated,
    sample_trade_executed,
    sample_workflow_completed,
    sample_workflow_failed,
)
from alchemiser_common.runtime.dlq import dead_letter
from alchemiser_common.topics import REBALANCE_PLANNED
from alchemiser_common.workflow import build_trigger, session_date

pytestmark = pytest.mark.integration


def _trigger(account: str, at: datetime, requested_by: str = "cli-test") -> WorkflowStarted:
    """A rerun-style trigger (random ids) that happened at ``at``."""
    return build_trigger(account, requested_by=requested_by, rerun=True, now=lambda: at)


def _at(event: Any, moment: datetime) -> Any:
    return event.model_copy(update={"occurred_at": moment})


def test_workflow_list_when_three_workflows_then_newest_first_with_outcome_and_duration(
    cluster: Any, run: Any, account: str
) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    done = _trigger(account, t0)
    failed = _trigger(account, t0 + timedelta(minutes=1), requested_by="operator")
    running = build_trigger(account, requested_by="cronjob", as_of=date(2018, 6, 15))
    completed: WorkflowCompleted = _at(sample_workflow_completed(done), t0 + timedelta(seconds=5))
    failure: WorkflowFailed = _at(
        sample_workflow_failed(failed), t0 + timedelta(minutes=1, seconds=2)
    )
    cluster.produce([done, failed, completed, failure, running])

    result = run("workflow", "list", "--account", account, "--json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["workflow_id"] for row in rows] == [
        str(running.correlation_id),
        str(failed.correlation_id),
        str(done.correlation_id),
    ]
    latest, middle, oldest = rows
    assert latest["outcome"] == "running" and latest["duration_s"] is None
    assert latest["session"] == "2018-06-15" and latest["requested_by"] == "cronjob"
    # a session trigger's occurred_at is the session's midnight: its start is when it was sent
    assert datetime.fromisoformat(latest["started_at"]) > t0
    assert middle["outcome"] == "failed"
    assert middle["reason"] == "execution: 1 of 2 orders failed"
    assert middle["duration_s"] == pytest.approx(2.0)
    assert oldest["outcome"] == "completed" and oldest["duration_s"] == pytest.approx(5.0)
    # the session is New York's date at the trigger (UTC's date is a day later before ~5 am)
    assert oldest["account_id"] == account
    assert oldest["session"] == session_date(None, t0).isoformat()

    limited = run("workflow", "list", "--account", account, "--limit", "1", "--json")
    assert [row["workflow_id"] for row in json.loads(limited.stdout)] == [
        str(running.correlation_id)
    ]

    table = run("workflow", "list", "--account", account)
    assert table.exit_code == 0, table.output
    for word in ("completed", "failed", "running", "2018-06-15"):
        assert word in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80


def test_workflow_show_when_chain_with_duplicate_and_dead_letter_then_ordered_with_delays(
    cluster: Any, run: Any, account: str
) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    trigger = _trigger(account, t0)
    signal_event = _at(sample_signal_generated(trigger), t0 + timedelta(seconds=1))
    plan = _at(sample_rebalance_planned(signal_event), t0 + timedelta(seconds=3))
    trade = _at(sample_trade_executed(plan), t0 + timedelta(seconds=4))
    completed = _at(sample_workflow_completed(plan), t0 + timedelta(seconds=6))
    positions = cluster.produce([trigger, signal_event, signal_event, plan, trade, completed])
    wid = str(trigger.correlation_id)
    poison = dead_letter(
        topic=REBALANCE_PLANNED,
        partition=0,
        offset=positions[3].offset,
        key=account.encode(),
        value=b"\x00garbage",
        headers=[("correlation_id", wid.encode())],
        reason=DeadLetterReason.UNDECODABLE,
        error="not avro",
        consumer="execution",
    )
    cluster.produce_raw(poison.topic, poison.value, poison.key, poison.headers)

    result = run("workflow", "show", wid, "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    records = document["records"]
    assert [r["event_type"] for r in records if r["dead_letter"] is None] == [
        "WorkflowStarted",
        "SignalGenerated",
        "SignalGenerated",
        "RebalancePlanned",
        "TradeExecuted",
        "WorkflowCompleted",
    ]
    started, signal_one, signal_two, planned, traded, done = (
        r for r in records if r["dead_letter"] is None
    )
    assert started["causation_id"] is None
    assert signal_one["causation_id"] == str(trigger.event_id)
    assert signal_one["delay_s"] == pytest.approx(1.0)
    assert signal_two["duplicate_of"] == f"{signal_one['topic']}[0]@{signal_one['offset']}"
    assert planned["delay_s"] == pytest.approx(2.0)  # from its cause, the signal
    assert traded["delay_s"] == pytest.approx(1.0)
    assert done["delay_s"] == pytest.approx(3.0)  # caused by the plan, not the trade
    assert started["source"].startswith("trigger ")
    assert planned["summary"].startswith("plan plan-0d7c8a3e-1: 1 buy, 1 sell, 1 hold")
    (dead,) = (r for r in records if r["dead_letter"] is not None)
    assert dead["topic"] == REBALANCE_PLANNED + ".dlq"
    assert dead["dead_letter"]["reason"] == "undecodable"
    assert dead["summary"].startswith("dead letter (undecodable, str)")

    table = run("workflow", "show", wid[:13])  # a unique prefix will do
    assert table.exit_code == 0, table.output
    assert table.stdout.startswith(f"workflow {wid}: account {account}")
    assert "completed" in table.stdout and "RebalancePlanned" in table.stdout
    assert "7 record(s): 1 dead letter(s), 1 duplicate(s)" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80


def test_workflow_show_when_unknown_or_malformed_id_then_exit_1_or_2(run: Any) -> None:
    unknown = run("workflow", "show", str(uuid.uuid4()))
    malformed = run("workflow", "show", "not-a-workflow")

    assert unknown.exit_code == 1
    assert "no record of workflow" in unknown.stderr
    assert malformed.exit_code == 2
    assert malformed.stderr.startswith("error: 'not-a-workflow' is not a workflow id")
    assert len(malformed.stderr.strip().splitlines()) == 1


def test_tail_when_from_beginning_with_correlation_id_then_that_workflows_events_as_json(
    cluster: Any, run: Any, account: str
) -> None:
    trigger = _trigger(account, datetime.now(UTC))
    other = _trigger(account, datetime.now(UTC))
    signal_event = sample_signal_generated(trigger)
    cluster.produce([trigger, other, signal_event], headers=False)  # decoded to filter

    result = run(
        "tail",
        "--from-beginning",
        "--correlation-id",
        str(trigger.correlation_id),
        "--limit",
        "2",
        "--json",
    )

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_type = {line["event_type"]: line for line in lines}  # topics interleave in any order
    assert sorted(by_type) == ["SignalGenerated", "WorkflowStarted"]
    assert {line["correlation_id"] for line in lines} == {str(trigger.correlation_id)}
    assert by_type["SignalGenerated"]["event"]["signal_hash"] == signal_event.signal_hash
    assert "following" in result.stderr


def test_tail_when_following_then_prints_new_events_and_ctrl_c_exits_0(
    cluster: Any, account: str
) -> None:
    trigger = _trigger(account, datetime.now(UTC))
    # Started as a shell starts it, Ctrl-C's signal not ignored: a child inherits an ignored
    # SIGINT (Python then installs no KeyboardInterrupt), and a pytest-xdist worker can carry
    # one. A handled signal is reset to the default in the child, so handle it for the spawn.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alchemiser_common.cli",
            "tail",
            WorkflowStarted.TOPIC,
            "--correlation-id",
            str(trigger.correlation_id),
        ],
        env={**os.environ, **cluster.env, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if previous is not None:  # None: a handler installed outside Python, left as it was
        signal.signal(signal.SIGINT, previous)
    lines: queue.Queue[tuple[str, str]] = queue.Queue()

    def pump(name: str, stream: Any) -> None:
        for line in stream:
            lines.put((name, line))

    for name, stream in (("out", process.stdout), ("err", process.stderr)):
        threading.Thread(target=pump, args=(name, stream), daemon=True).start()
    try:
        assert lines.get(timeout=30) == (
            "err",
            f"following {WorkflowStarted.TOPIC} at {cluster.bootstrap} (Ctrl-C to stop)\n",
        )
        cluster.produce([trigger])
        stream, line = lines.get(timeout=20)
        assert stream == "out"
        assert f"WorkflowStarted workflow={trigger.correlation_id}" in line
        assert f"account {account}" in line
        process.send_signal(signal.SIGINT)
        try:  # exits at its next poll (0.5 s); the bound only stops a hung process
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack to stderr
            process.wait(timeout=10)
            time.sleep(0.5)
            dump = []
            while not lines.empty():
                dump.append(lines.get()[1])
            raise AssertionError("tail did not exit after Ctrl-C:\n" + "".join(dump)) from None
        assert code == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert not [line for _, line in rest if "Traceback" in line]


def test_tail_when_topic_unknown_then_one_line_and_exit_2(cluster: Any, run: Any) -> None:
    result = run("tail", "no.such.topic.v1")

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: no topic no.such.topic.v1 at {cluster.bootstrap}")
    assert len(result.stderr.strip().splitlines()) == 1

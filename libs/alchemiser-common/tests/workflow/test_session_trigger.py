"""The session trigger: one workflow id per (account, session date); ``--rerun`` makes another."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

import alchemiser_common.workflow as workflow
from alchemiser_common.cli import build_app
from alchemiser_common.events import WorkflowStarted
from alchemiser_common.events.samples import sample_workflow_completed
from alchemiser_common.runtime.inputs import dedupe_key, event_content_hash
from alchemiser_common.workflow import (
    WorkflowOutcome,
    WorkflowState,
    build_trigger,
    session_date,
    session_start,
    session_workflow_id,
)

# 14 March 2025 is a Friday; New York is on EDT (UTC-4) from 9 March.
AFTERNOON = datetime(2025, 3, 14, 19, 30, tzinfo=UTC)  # 15:30 in New York
LATE_EVENING = datetime(2025, 3, 15, 3, 59, tzinfo=UTC)  # 23:59 on the 14th in New York
NEXT_DAY = datetime(2025, 3, 15, 4, 0, tzinfo=UTC)  # midnight of the 15th in New York


def _trigger(account: str = "PA1", **kwargs: Any) -> WorkflowStarted:
    kwargs.setdefault("now", lambda: AFTERNOON)
    return build_trigger(account, requested_by="cronjob", **kwargs)


def test_build_trigger_when_same_account_and_date_then_same_ids_and_same_event() -> None:
    first = _trigger(as_of=date(2025, 3, 14))
    again = _trigger(as_of=date(2025, 3, 14), now=lambda: NEXT_DAY)

    assert again.correlation_id == first.correlation_id
    assert again.event_id == first.event_id
    assert again == first
    # what strategy's inbox compares: the same key and content hash, a clean duplicate
    assert dedupe_key(again) == dedupe_key(first)
    assert event_content_hash(again) == event_content_hash(first)


def test_build_trigger_when_no_as_of_then_session_is_today_in_new_york() -> None:
    afternoon = _trigger(now=lambda: AFTERNOON)
    evening = _trigger(now=lambda: LATE_EVENING)
    next_day = _trigger(now=lambda: NEXT_DAY)

    assert evening == afternoon
    assert afternoon.correlation_id == session_workflow_id("PA1", date(2025, 3, 14))
    assert next_day.correlation_id == session_workflow_id("PA1", date(2025, 3, 15))
    assert afternoon.as_of is None  # the strategy still evaluates the latest data


def test_build_trigger_when_account_or_date_differs_then_different_ids() -> None:
    base = _trigger(as_of=date(2025, 3, 14))
    other_account = _trigger("PA2", as_of=date(2025, 3, 14))
    other_date = _trigger(as_of=date(2025, 3, 13))

    ids = {base.correlation_id, other_account.correlation_id, other_date.correlation_id}
    event_ids = {base.event_id, other_account.event_id, other_date.event_id}
    assert len(ids) == 3
    assert len(event_ids) == 3
    assert base.event_id != base.correlation_id


def test_build_trigger_when_not_rerun_then_occurred_at_is_the_session_start() -> None:
    trigger = _trigger(as_of=date(2025, 1, 6))  # EST (UTC-5) in January

    assert trigger.occurred_at == datetime(2025, 1, 6, 5, 0, tzinfo=UTC)
    assert trigger.occurred_at == session_start(date(2025, 1, 6))
    assert trigger.causation_id is None


def test_build_trigger_when_rerun_then_new_ids_and_wall_clock() -> None:
    session = _trigger(as_of=date(2025, 3, 14))
    rerun = _trigger(as_of=date(2025, 3, 14), rerun=True)
    another = _trigger(as_of=date(2025, 3, 14), rerun=True)

    assert rerun.correlation_id not in {session.correlation_id, another.correlation_id}
    assert rerun.event_id not in {session.event_id, another.event_id}
    assert rerun.occurred_at == AFTERNOON


def test_session_workflow_id_when_account_contains_separators_then_unambiguous() -> None:
    assert session_workflow_id("a/2025-03-14", date(2025, 3, 14)) != session_workflow_id(
        "a", date(2025, 3, 14)
    )
    assert session_date(None, LATE_EVENING) == date(2025, 3, 14)
    assert session_date(date(2018, 6, 15), LATE_EVENING) == date(2018, 6, 15)


# -- the command, with publishing and waiting replaced (no broker) -----------------------------


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[WorkflowStarted]:
    sent: list[WorkflowStarted] = []
    monkeypatch.setattr(workflow, "check_broker", lambda _kafka: None)
    monkeypatch.setattr(workflow, "check_registry", lambda _registry: None)
    monkeypatch.setattr(
        workflow, "workflow_state", lambda workflow_id, _kafka, _serde: WorkflowState(workflow_id)
    )
    monkeypatch.setattr(workflow, "publish", lambda trigger, _kafka, _serde: sent.append(trigger))
    monkeypatch.setattr(
        workflow,
        "wait_for_outcome",
        lambda correlation_id, _kafka, _serde, _timeout: WorkflowOutcome(
            sample_workflow_completed(next(t for t in sent if t.correlation_id == correlation_id))
        ),
    )
    return sent


def _start(*args: str) -> Any:
    result = CliRunner().invoke(build_app(), ["workflow", "start", "--account", "PA1", *args])
    return result


def test_cli_start_when_same_session_twice_then_same_workflow_id_printed(
    published: list[WorkflowStarted],
) -> None:
    first = _start("--as-of", "2025-03-14")
    second = _start("--as-of", "2025-03-14")

    assert first.exit_code == second.exit_code == 0, first.output
    workflow_id = session_workflow_id("PA1", date(2025, 3, 14))
    assert first.stdout == second.stdout
    assert first.stdout.strip() == (
        f"workflow {workflow_id} (account PA1, session 2025-03-14) started"
    )
    assert published[0] == published[1]


def test_cli_start_when_json_then_start_line_shows_the_ids(
    published: list[WorkflowStarted],
) -> None:
    result = _start("--as-of", "2025-03-14", "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document == {
        "status": "started",
        "workflow_id": str(published[0].correlation_id),
        "event_id": str(published[0].event_id),
        "account_id": "PA1",
        "session": "2025-03-14",
        "rerun": False,
    }


def test_cli_start_when_rerun_then_new_id_and_said_so(published: list[WorkflowStarted]) -> None:
    session = _start("--as-of", "2025-03-14", "--json")
    rerun = _start("--as-of", "2025-03-14", "--json", "--rerun")

    assert rerun.exit_code == 0, rerun.output
    first, second = json.loads(session.stdout), json.loads(rerun.stdout)
    assert second["rerun"] is True
    assert second["workflow_id"] != first["workflow_id"]
    assert second["workflow_id"] == str(published[1].correlation_id)
    assert "rerun" in rerun.stderr


def test_cli_start_when_wait_and_json_then_one_document_with_the_outcome_of_that_workflow(
    published: list[WorkflowStarted],
) -> None:
    result = _start("--as-of", "2025-03-14", "--json", "--wait")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # exactly one JSON document
    assert document["status"] == "completed"
    assert document["workflow_id"] == str(published[0].correlation_id)
    assert document["event"]["event_type"] == "WorkflowCompleted"
    assert document["event"]["correlation_id"] == document["workflow_id"]
    assert "started" in result.stderr  # the start line goes to stderr with --json

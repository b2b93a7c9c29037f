"""`alchemiser workflow` commands: start a trading workflow (the CronJob's command).

``start`` publishes the session's trigger: one workflow per account and session date (see
:mod:`alchemiser_common.workflow`), so a retried CronJob or a second click is the same workflow
and ``--wait`` reports its outcome even if it finished before. ``--rerun`` starts a deliberate
second workflow with a new id.

The event, settings and Kafka modules are imported when a command runs, not when its help is
shown, so ``alchemiser workflow start --help`` stays as cheap as Typer itself.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from alchemiser_common.events import WorkflowStarted

__all__ = ["app"]


class _Mode(StrEnum):
    """``--mode`` (the events' ``TradingMode``, kept here so help needs no event import)."""

    PAPER = "paper"
    LIVE = "live"


app = typer.Typer(no_args_is_help=True, help="Start trading workflows.")


def _started(trigger: WorkflowStarted, session: date, *, rerun: bool, as_json: bool) -> str:
    """The line printed once the trigger is published (text, or one JSON object)."""
    if as_json:
        document = {
            "status": "started",
            "workflow_id": str(trigger.correlation_id),
            "event_id": str(trigger.event_id),
            "account_id": trigger.account_id,
            "session": session.isoformat(),
            "rerun": rerun,
        }
        return json.dumps(document, sort_keys=True)
    kind = ", rerun" if rerun else ""
    return (
        f"workflow {trigger.correlation_id} (account {trigger.account_id}, "
        f"session {session.isoformat()}{kind}) started"
    )


@app.command("start")
def start(  # noqa: PLR0917 - Typer maps each parameter to one option
    account: Annotated[str, typer.Option("--account", help="The account to trade.")],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Trading date YYYY-MM-DD (default: latest data); also the session date "
            "(default: today in America/New_York).",
        ),
    ] = None,
    mode: Annotated[_Mode, typer.Option("--mode", case_sensitive=False)] = _Mode.PAPER,
    requested_by: Annotated[str, typer.Option("--requested-by")] = "cli",
    rerun: Annotated[
        bool,
        typer.Option(
            "--rerun",
            help="Start a second workflow for the session (a new id) instead of the "
            "session's one workflow.",
        ),
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for completed/failed.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 300.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the start and the outcome as JSON lines.")
    ] = False,
) -> None:
    """Publish the session's ``WorkflowStarted``; with ``--wait``, exit 0 if it completed, 1 if not.

    Without ``--rerun`` the workflow id derives from the account and the session date: starting
    the same session again is the same workflow (strategy ignores the repeated trigger), and
    ``--wait`` reports that workflow's outcome, even one published earlier.
    """
    from alchemiser_common.errors import AlchemiserError, ConfigurationError
    from alchemiser_common.events import TradingMode, WorkflowCompleted
    from alchemiser_common.serde import EventSerde
    from alchemiser_common.settings import CommonSettings, load_settings
    from alchemiser_common.workflow import build_trigger, publish, session_date, wait_for_outcome

    try:
        settings = load_settings(CommonSettings)
        day = date.fromisoformat(as_of) if as_of else None
    except (ConfigurationError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    now = datetime.now(UTC)
    session = session_date(day, now)
    trigger = build_trigger(
        account,
        requested_by=requested_by,
        mode=TradingMode(mode.value),
        as_of=day,
        rerun=rerun,
        now=lambda: now,
    )
    if rerun:
        typer.echo(
            f"rerun: starting a second workflow for account {account}, session "
            f"{session.isoformat()}, with a new id",
            err=True,
        )
    serde = EventSerde.from_url(settings.registry.url)
    try:
        publish(trigger, settings.kafka, serde)
        typer.echo(_started(trigger, session, rerun=rerun, as_json=as_json))
        if not wait:
            return
        outcome = wait_for_outcome(trigger.correlation_id, settings.kafka, serde, timeout)
    except AlchemiserError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=1) from err
    event = outcome.event
    if as_json:
        typer.echo(json.dumps(event.model_dump(mode="json"), sort_keys=True))
    elif isinstance(event, WorkflowCompleted):
        typer.echo(
            f"completed in {event.duration_ms} ms: {event.summary.orders_succeeded} order(s)"
        )
    else:
        typer.echo(f"failed at {event.failure_step}: {event.reason}")
    raise typer.Exit(code=0 if outcome.succeeded else 1)

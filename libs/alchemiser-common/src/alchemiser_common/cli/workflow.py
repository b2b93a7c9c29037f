"""`alchemiser workflow` commands: start a trading workflow (the CronJob's command).

The event, settings and Kafka modules are imported when a command runs, not when its help is
shown, so ``alchemiser workflow start --help`` stays as cheap as Typer itself.
"""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from typing import Annotated

import typer

__all__ = ["app"]


class _Mode(StrEnum):
    """``--mode`` (the events' ``TradingMode``, kept here so help needs no event import)."""

    PAPER = "paper"
    LIVE = "live"


app = typer.Typer(no_args_is_help=True, help="Start trading workflows.")


@app.command("start")
def start(  # noqa: PLR0917 - Typer maps each parameter to one option
    account: Annotated[str, typer.Option("--account", help="The account to trade.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Trading date YYYY-MM-DD (default: latest).")
    ] = None,
    mode: Annotated[_Mode, typer.Option("--mode", case_sensitive=False)] = _Mode.PAPER,
    requested_by: Annotated[str, typer.Option("--requested-by")] = "cli",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for completed/failed.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Publish ``WorkflowStarted``; with ``--wait``, exit 0 if it completed, 1 if it failed."""
    from alchemiser_common.errors import AlchemiserError, ConfigurationError
    from alchemiser_common.events import TradingMode, WorkflowCompleted
    from alchemiser_common.serde import EventSerde
    from alchemiser_common.settings import CommonSettings, load_settings
    from alchemiser_common.workflow import build_trigger, publish, wait_for_outcome

    try:
        settings = load_settings(CommonSettings)
        day = date.fromisoformat(as_of) if as_of else None
    except (ConfigurationError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    serde = EventSerde.from_url(settings.registry.url)
    trigger = build_trigger(
        account, requested_by=requested_by, mode=TradingMode(mode.value), as_of=day
    )
    try:
        publish(trigger, settings.kafka, serde)
        typer.echo(f"workflow {trigger.correlation_id} started")
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

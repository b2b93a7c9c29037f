"""`alchemiser workflow` commands: start a trading workflow (the CronJob's command).

``start`` publishes the session's trigger: one workflow per account and session date (see
:mod:`alchemiser_common.workflow`), so a retried CronJob or a second click is the same workflow
and ``--wait`` reports its outcome even if it finished before. ``--rerun`` starts a deliberate
second workflow with a new id.

Before it publishes, ``start`` checks that the broker and the registry answer (one line naming
the address if not, exit 2) and reads the workflow topics: a workflow that was started and has
not ended is *running*, and is not triggered again (exit 1; ``--wait`` follows it instead).

Exit codes of ``start``: 0 published (without ``--wait``) or completed, 1 failed or refused, 2
timed out (the trigger then publishes ``workflow.failed.v1`` with reason ``timeout``), an
unreachable broker or registry, or invalid settings. With ``--json`` stdout carries exactly one
JSON document in every case (``status``: ``started``, ``completed``, ``failed``, ``timeout``,
``running`` or ``error``) and every message goes to stderr.

The event, settings and Kafka modules are imported when a command runs, not when its help is
shown, so ``alchemiser workflow start --help`` stays as cheap as Typer itself.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from alchemiser_common.events import WorkflowStarted
    from alchemiser_common.settings import CommonSettings
    from alchemiser_common.workflow import WorkflowOutcome, WorkflowState

__all__ = ["app"]

ACCOUNT_ENV = "ALCHEMISER_ACCOUNT_ID"
"""The default of ``--account`` (the CronJob sets it)."""

EXIT_OK = 0
EXIT_FAILED = 1
"""The workflow failed, or is already running (and ``--wait`` was not given)."""
EXIT_TIMEOUT = 2
"""The wait ran out (and the trigger published the workflow's timeout failure)."""
EXIT_UNAVAILABLE = 2
"""The broker or the registry did not answer, or the settings are invalid."""


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


def _say(text: str, *, as_json: bool) -> None:
    """A message for the operator: stdout in text mode, stderr when stdout carries the JSON."""
    typer.echo(text, err=as_json)


def _fail(message: str, code: int, *, as_json: bool, **document: Any) -> NoReturn:
    """One ``error:`` line on stderr (and with ``--json`` the error document), then exit."""
    typer.echo(f"error: {message}", err=True)
    if as_json:
        typer.echo(json.dumps({"status": "error", "error": message, **document}, sort_keys=True))
    raise typer.Exit(code=code)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "at an unknown time"
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _running_line(state: WorkflowState) -> str:
    return (
        f"workflow {state.workflow_id} is already running (started {_when(state.started_at)}); "
        "use --wait to follow it or --rerun for a second run"
    )


def _outcome_line(outcome: WorkflowOutcome) -> str:
    from alchemiser_common.events import WorkflowCompleted

    event = outcome.event
    if isinstance(event, WorkflowCompleted):
        return f"completed in {event.duration_ms} ms: {event.summary.orders_succeeded} order(s)"
    if outcome.timed_out:
        waited = event.details.get("timed_out_after_s", "?")
        return (
            f"timed out: no outcome within {waited} s; published {event.TOPIC} "
            f"(reason {event.reason})"
        )
    return f"failed at {event.failure_step}: {event.reason}"


_EXIT_CODES = {"completed": EXIT_OK, "failed": EXIT_FAILED, "timeout": EXIT_TIMEOUT}


def _report_outcome(
    outcome: WorkflowOutcome, trigger: WorkflowStarted, session: date, *, rerun: bool, as_json: bool
) -> NoReturn:
    """Print the outcome (one line, or the outcome document) and exit 0, 1 or 2."""
    status = outcome.status.value
    if as_json:
        document = {
            "status": status,
            "workflow_id": str(trigger.correlation_id),
            "account_id": trigger.account_id,
            "session": session.isoformat(),
            "rerun": rerun,
            "event": outcome.event.model_dump(mode="json"),
        }
        typer.echo(json.dumps(document, sort_keys=True))
    else:
        typer.echo(_outcome_line(outcome))
    raise typer.Exit(code=_EXIT_CODES[status])


def _refuse(state: WorkflowState, session: date, *, as_json: bool) -> NoReturn:
    """The workflow is running and ``--wait`` was not given: say so and exit 1."""
    line = _running_line(state)
    typer.echo(line, err=True)
    if as_json:
        assert state.trigger is not None
        document = {
            "status": "running",
            "workflow_id": str(state.workflow_id),
            "account_id": state.trigger.account_id,
            "session": session.isoformat(),
            "started_at": _when(state.started_at),
            "message": line,
        }
        typer.echo(json.dumps(document, sort_keys=True))
    raise typer.Exit(code=EXIT_FAILED)


def _publish_or_follow(
    trigger: WorkflowStarted,
    settings: CommonSettings,
    session: date,
    *,
    rerun: bool,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> WorkflowOutcome | None:
    """Publish the trigger unless its workflow is running; with ``wait``, its outcome.

    Returns ``None`` when the trigger was published and nothing is to be waited for (the start
    line is printed); exits 1 when the workflow is running and ``wait`` is false.
    """
    from alchemiser_common.serde import EventSerde
    from alchemiser_common.workflow import publish, wait_or_time_out, workflow_state

    serde = EventSerde.from_url(settings.registry.url)
    state = None if rerun else workflow_state(trigger.correlation_id, settings.kafka, serde)
    if state is not None and state.running:
        if not wait:
            _refuse(state, session, as_json=as_json)
        assert state.trigger is not None
        _say(
            f"workflow {state.workflow_id} is already running (started "
            f"{_when(state.started_at)}); following it",
            as_json=as_json,
        )
        return wait_or_time_out(state.trigger, settings.kafka, serde, timeout)
    publish(trigger, settings.kafka, serde)
    if not wait:
        typer.echo(_started(trigger, session, rerun=rerun, as_json=as_json))
        return None
    _say(_started(trigger, session, rerun=rerun, as_json=False), as_json=as_json)
    if state is not None and state.outcome is not None:
        return state.outcome  # it finished before: the repeated trigger changes nothing
    return wait_or_time_out(trigger, settings.kafka, serde, timeout)


@app.command("start")
def start(  # noqa: PLR0917 - Typer maps each parameter to one option
    account: Annotated[
        str,
        typer.Option(
            "--account",
            envvar=ACCOUNT_ENV,
            show_envvar=True,
            help="The account to trade (default: ALCHEMISER_ACCOUNT_ID).",
        ),
    ],
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
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Wait for the outcome: exit 0 completed, 1 failed, 2 timed out (then "
            "workflow.failed.v1 with reason timeout is published).",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait with --wait.")
    ] = 300.0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print exactly one JSON document on stdout; messages go to stderr."
        ),
    ] = False,
) -> None:
    """Publish the session's ``WorkflowStarted``; with ``--wait``, report how it ended.

    Without ``--rerun`` the workflow id derives from the account and the session date: a
    workflow of that id that is still running is not triggered again (exit 1, or followed with
    ``--wait``); one that finished gets the same trigger again (strategy ignores it) and
    ``--wait`` reports its outcome.
    """
    from alchemiser_common.errors import AlchemiserError, ConfigurationError, TransientError
    from alchemiser_common.events import TradingMode
    from alchemiser_common.kafka.exceptions import BrokerUnreachableError
    from alchemiser_common.settings import CommonSettings, load_settings
    from alchemiser_common.workflow import build_trigger, check_broker, check_registry, session_date

    try:
        settings = load_settings(CommonSettings)
        day = date.fromisoformat(as_of) if as_of else None
    except (ConfigurationError, ValueError) as err:
        _fail(str(err), EXIT_UNAVAILABLE, as_json=as_json)
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
    ids = {"workflow_id": str(trigger.correlation_id), "account_id": account}
    if rerun:
        typer.echo(
            f"rerun: starting a second workflow for account {account}, session "
            f"{session.isoformat()}, with a new id",
            err=True,
        )
    try:
        check_broker(settings.kafka)
        check_registry(settings.registry)
        outcome = _publish_or_follow(
            trigger, settings, session, rerun=rerun, wait=wait, timeout=timeout, as_json=as_json
        )
    except BrokerUnreachableError as err:
        _fail(str(err), EXIT_UNAVAILABLE, as_json=as_json, **ids)
    except TransientError as err:  # the registry did not answer (probe or serialisation)
        _fail(str(err), EXIT_UNAVAILABLE, as_json=as_json, **ids)
    except AlchemiserError as err:
        _fail(str(err), EXIT_FAILED, as_json=as_json, **ids)
    if outcome is not None:
        _report_outcome(outcome, trigger, session, rerun=rerun, as_json=as_json)


# `list` and `show` read the workflow topics; their logic is in cli/workflows_view.py.

_ServersOption = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers", "-b", help="Kafka host:port list (default: the settings')."
    ),
]
_RegistryOption = Annotated[
    str | None, typer.Option("--registry", help="Schema registry URL (default: the settings').")
]
_WaitOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds the broker and registry get.")
]


@app.command("list")
def list_command(  # noqa: PLR0917 - Typer maps each parameter to one option
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest N.")] = 20,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    bootstrap_servers: _ServersOption = None,
    registry: _RegistryOption = None,
    timeout: _WaitOption = 10.0,
) -> None:
    """Recent workflows, newest first: account, session, outcome and duration."""
    from alchemiser_common.cli.inspect import operator_errors, target
    from alchemiser_common.cli.workflows_view import list_workflows

    with operator_errors():
        where = target(bootstrap_servers, registry, timeout)
    list_workflows(where, limit=limit, account=account, as_json=as_json)


@app.command("show")
def show_command(
    workflow_id: Annotated[str, typer.Argument(help="The workflow id (correlation id).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    bootstrap_servers: _ServersOption = None,
    registry: _RegistryOption = None,
    timeout: _WaitOption = 10.0,
) -> None:
    """Every event and dead letter of one workflow, in time order, with delays and causes."""
    from alchemiser_common.cli.inspect import operator_errors, target
    from alchemiser_common.cli.workflows_view import show_workflow

    with operator_errors():
        where = target(bootstrap_servers, registry, timeout)
    show_workflow(where, workflow_id, as_json=as_json)

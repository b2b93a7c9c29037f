"""``alchemiser execution`` commands for operators.

* ``attempts [CORRELATION_ID] [--unsettled]`` — list recorded order attempts (one workflow,
  or every attempt not yet settled), read from the attempts database the service uses.
* ``reconcile`` — resolve every unsettled attempt against the configured broker now (what the
  service does at start-up), then list what is still unsettled.

Both read the service's settings from the environment (``ALCHEMISER_*``). Configuration
errors print one line on stderr and exit with status 2.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from alchemiser_broker.factory import build_broker
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import AlchemiserError, ConfigurationError
from alchemiser_common.settings import load_settings
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.domain.attempts import Attempt
from alchemiser_execution.reconcile import reconcile as reconcile_attempts
from alchemiser_execution.settings import ExecutionSettings

__all__ = ["EXIT_CONFIG", "app"]

EXIT_CONFIG = 2

app = typer.Typer(
    help="Execution service: order attempts and reconciliation.", no_args_is_help=True
)


def _out() -> Console:
    return Console()


def _err() -> Console:
    return Console(stderr=True)


def _store(settings: ExecutionSettings) -> AttemptStore:
    configured = settings.execution.attempts_database_url
    url = (configured or settings.database.url).get_secret_value()
    store = AttemptStore(create_engine_from_url(url))
    store.migrate()
    return store


def _settings() -> ExecutionSettings:
    try:
        return load_settings(ExecutionSettings)
    except ConfigurationError as err:
        _err().print(f"configuration error: {err}")
        raise typer.Exit(EXIT_CONFIG) from None


def _table(attempts: list[Attempt]) -> Table:
    table = Table("correlation", "leg", "try", "client_order_id", "symbol", "side", "type")
    for column in ("qty", "state", "broker status", "filled", "avg price"):
        table.add_column(column)
    for attempt in attempts:
        table.add_row(
            attempt.correlation_id[:8],
            str(attempt.leg),
            str(attempt.attempt),
            attempt.client_order_id,
            attempt.symbol,
            attempt.side.value,
            attempt.order_type.value,
            str(attempt.qty),
            attempt.state.value,
            attempt.broker_status or "",
            str(attempt.filled_qty),
            str(attempt.filled_avg_price or ""),
        )
    return table


@app.command()
def attempts(
    correlation_id: Annotated[str | None, typer.Argument(help="Workflow id.")] = None,
    unsettled: Annotated[bool, typer.Option(help="Only PENDING, UNKNOWN, SUBMITTED.")] = False,
) -> None:
    """List the order attempts of a workflow, or every unsettled one."""
    try:
        store = _store(_settings())
    except ConfigurationError as err:
        _err().print(f"configuration error: {err}")
        raise typer.Exit(EXIT_CONFIG) from None
    if correlation_id is None:
        rows = store.unsettled()
    else:
        rows = store.attempts_for_workflow(correlation_id)
        if unsettled:
            rows = [a for a in rows if a.is_open or a.is_unresolved]
    _out().print(_table(rows))


@app.command()
def reconcile(
    timeout_s: Annotated[float, typer.Option(help="How long to retry the broker.")] = 60.0,
) -> None:
    """Resolve every unsettled attempt against the configured broker."""
    settings = _settings()
    try:
        store = _store(settings)
        built = build_broker(settings.broker.model_copy(update={"stream": False}), settings.alpaca)
        report = reconcile_attempts(store, built.broker, timeout_s=timeout_s)
    except ConfigurationError as err:
        _err().print(f"configuration error: {err}")
        raise typer.Exit(EXIT_CONFIG) from None
    except AlchemiserError as err:
        _err().print(f"reconciliation failed: {err}")
        raise typer.Exit(1) from None
    _out().print(
        f"examined {report.examined}, adopted {report.adopted}, "
        f"not placed {report.not_placed}, orphans {len(report.orphans)}"
    )
    _out().print(_table(store.unsettled()))

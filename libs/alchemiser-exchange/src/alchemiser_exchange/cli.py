"""`alchemiser exchange` commands: run the paper exchange, open accounts on it."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from alchemiser_common.errors import ConfigurationError
from alchemiser_common.settings import load_settings
from alchemiser_exchange.server import DEFAULT_HOST, DEFAULT_PORT, build_exchange, serve
from alchemiser_exchange.settings import ExchangeProcessSettings

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The paper exchange (Alpaca's API, offline).")


@app.callback()
def _group() -> None:
    """The paper exchange: Alpaca's trading API over a dataset of daily bars."""


def _settings(
    database_url: str | None, dataset_dir: Path | None, starting_cash: Decimal | None
) -> ExchangeProcessSettings:
    loaded = load_settings(ExchangeProcessSettings)
    overrides: dict[str, object] = {}
    if database_url is not None:
        overrides["database_url"] = database_url
    if dataset_dir is not None:
        overrides["dataset_dir"] = dataset_dir
    if starting_cash is not None:
        overrides["starting_cash"] = starting_cash
    if not overrides:
        return loaded
    section = loaded.exchange.model_validate({**loaded.exchange.model_dump(), **overrides})
    return loaded.model_copy(update={"exchange": section})


@app.command("serve")
def serve_command(  # noqa: PLR0917 - Typer maps each parameter to one option
    dataset_dir: Annotated[
        Path | None,
        typer.Option(help="Daily-bar files to price from (ALCHEMISER_EXCHANGE__DATASET_DIR)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL of the state (ALCHEMISER_EXCHANGE__DATABASE_URL)."),
    ] = None,
    starting_cash: Annotated[
        Decimal | None, typer.Option(help="Cash of an account opened on first use.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one.")] = DEFAULT_PORT,
    admin_token: Annotated[
        str | None,
        typer.Option(
            envvar="ALCHEMISER_EXCHANGE__ADMIN_TOKEN",
            help="Bearer token POST /exchange/v1/accounts requires (none: open to loopback).",
        ),
    ] = None,
) -> None:
    """Serve the exchange in the foreground until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = _settings(database_url, dataset_dir, starting_cash)
        exchange = build_exchange(settings.exchange)
    except ConfigurationError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    serve(exchange, host=host, port=port, admin_token=admin_token)


@app.command("accounts")
def accounts_command(
    dataset_dir: Annotated[Path | None, typer.Option(help="As for serve.")] = None,
    database_url: Annotated[str | None, typer.Option(help="As for serve.")] = None,
) -> None:
    """List the exchange's accounts (number, cash, session) as JSON lines."""
    try:
        exchange = build_exchange(_settings(database_url, dataset_dir, None).exchange)
    except ConfigurationError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    for account in exchange.accounts():
        session = exchange.session_of(account)
        typer.echo(
            json.dumps(
                {
                    "account_number": account.account_number,
                    "cash": str(account.cash),
                    "session": session.isoformat(),
                }
            )
        )

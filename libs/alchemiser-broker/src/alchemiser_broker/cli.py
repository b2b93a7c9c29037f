"""``alchemiser account show``: the trading account the services' keys open.

It reads the settings portfolio and execution read (``ALCHEMISER_BROKER__*`` and
``ALCHEMISER_ALPACA__*``, see :mod:`alchemiser_broker.settings`), builds the one adapter with the
trade-updates stream off, and shows the account number (what a workflow's ``--account`` must
name), cash, buying power, equity, the open positions and today's orders with their
``client_order_id`` (the id execution derives per workflow and leg). "Today" is the date of the
broker's clock in New York: the account's session on the paper exchange, the market's day at
Alpaca.

Exit codes: 0 shown, 1 the broker failed otherwise, 2 invalid settings, keys refused or a broker
that does not answer (one line naming the address).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer

from alchemiser_broker.settings import AlpacaSettings, BrokerKind, BrokerSettings
from alchemiser_common.settings import CommonSettings

if TYPE_CHECKING:
    from alchemiser_broker.models import AccountState, BrokerOrder, BrokerPosition

__all__ = ["AccountCommandSettings", "app"]

_NEW_YORK = ZoneInfo("America/New_York")

app = typer.Typer(no_args_is_help=True, help="The trading account the services' keys open.")


@app.callback()
def _group() -> None:
    """The trading account the services' keys open (cash, positions, today's orders)."""


class AccountCommandSettings(CommonSettings):
    """The broker sections the services read: ``ALCHEMISER_BROKER__*``, ``ALCHEMISER_ALPACA__*``."""

    broker: BrokerSettings = BrokerSettings()
    alpaca: AlpacaSettings | None = None


def _where(settings: AccountCommandSettings) -> str:
    if settings.broker.kind is BrokerKind.EXCHANGE:
        return f"the paper exchange at {settings.broker.exchange_url}"
    paper = settings.alpaca is None or settings.alpaca.paper
    return "Alpaca (paper)" if paper else "Alpaca (live)"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _position_json(position: BrokerPosition) -> dict[str, Any]:
    return {
        "symbol": position.symbol,
        "qty": str(position.qty),
        "avg_entry_price": str(position.avg_entry_price),
        "current_price": str(position.current_price),
        "market_value": str(position.market_value),
    }


def _order_json(order: BrokerOrder) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.order_type.value,
        "status": order.status.value,
        "qty": _text(order.qty),
        "notional": _text(order.notional),
        "limit_price": _text(order.limit_price),
        "filled_qty": str(order.filled_qty),
        "filled_avg_price": _text(order.filled_avg_price),
        "submitted_at": order.submitted_at.isoformat() if order.submitted_at else None,
        "filled_at": order.filled_at.isoformat() if order.filled_at else None,
    }


def _document(
    where: str,
    account: AccountState,
    day: str,
    positions: list[BrokerPosition],
    orders: list[BrokerOrder],
) -> dict[str, Any]:
    return {
        "broker": where,
        "account_number": account.account_number,
        "account_id": account.account_id,
        "currency": account.currency,
        "cash": str(account.cash),
        "buying_power": str(account.buying_power),
        "equity": str(account.equity),
        "trading_blocked": account.trading_blocked,
        "date": day,
        "positions": [_position_json(position) for position in positions],
        "orders": [_order_json(order) for order in orders],
    }


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _print(document: dict[str, Any], positions: list[BrokerPosition], orders: list[Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"account {document['account_number'] or '?'} at {document['broker']}"
        + (" (trading blocked)" if document["trading_blocked"] else "")
    )
    console.print(
        f"cash {_money(Decimal(document['cash']))} {document['currency']}, buying power "
        f"{_money(Decimal(document['buying_power']))}, equity "
        f"{_money(Decimal(document['equity']))}"
    )
    if positions:
        table = Table(title=f"{len(positions)} position(s)", box=box.SIMPLE_HEAD, show_edge=False)
        for name in ("symbol", "qty", "avg entry", "price", "market value"):
            table.add_column(name, justify="left" if name == "symbol" else "right")
        for position in positions:
            table.add_row(
                position.symbol,
                str(position.qty),
                _money(position.avg_entry_price),
                _money(position.current_price),
                _money(position.market_value),
            )
        console.print(table)
    else:
        console.print("no positions")
    if not orders:
        console.print(f"no orders on {document['date']}")
        return
    table = Table(
        title=f"{len(orders)} order(s) on {document['date']}",
        box=None,
        collapse_padding=True,
        pad_edge=False,
    )
    table.add_column("client_order_id", overflow="fold", ratio=2)
    table.add_column("symbol", no_wrap=True)
    table.add_column("side", no_wrap=True)
    table.add_column("amount", justify="right", no_wrap=True)
    table.add_column("status", overflow="fold", ratio=1)
    table.add_column("filled", justify="right", no_wrap=True)
    table.add_column("at", no_wrap=True)
    for order in orders:
        amount = str(order.qty) if order.qty is not None else f"${order.notional}"
        if order.limit_price is not None:
            amount += f" @ {order.limit_price}"
        filled = str(order.filled_qty)
        if order.filled_avg_price is not None:
            filled += f" @ {order.filled_avg_price}"
        table.add_row(
            order.client_order_id,
            order.symbol,
            order.side.value,
            amount,
            order.status.value,
            filled,
            order.submitted_at.astimezone(_NEW_YORK).strftime("%H:%M:%S")
            if order.submitted_at
            else "-",
        )
    console.print(table)
    console.print("times are New York time")


def _quiet_logs() -> None:
    """The adapter logs errors only, to standard error.

    Unconfigured, structlog prints to standard output (which ``--json`` keeps for the JSON);
    its retry warnings would bury the one line an unreachable broker earns.
    """
    import logging

    import structlog

    structlog.configure(
        processors=[structlog.dev.ConsoleRenderer(colors=False)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


@app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Account number, cash, buying power, equity, positions and today's orders."""
    from alchemiser_broker.alpaca import AlpacaBroker
    from alchemiser_broker.exceptions import BrokerAuthError, BrokerError, BrokerUnavailableError
    from alchemiser_broker.factory import build_broker
    from alchemiser_common.errors import ConfigurationError
    from alchemiser_common.settings import load_settings

    _quiet_logs()
    try:
        settings = load_settings(AccountCommandSettings)
        built = build_broker(settings.broker.model_copy(update={"stream": False}), settings.alpaca)
    except ConfigurationError as err:
        raise _fail(str(err), 2) from None
    where = _where(settings)
    broker = built.broker
    try:
        account = broker.get_account()
        positions = broker.get_positions()
        day = broker.get_clock().timestamp.astimezone(_NEW_YORK).date()
        since = datetime.combine(day, time(0), _NEW_YORK).astimezone(UTC)
        orders = broker.get_orders_since(since) if isinstance(broker, AlpacaBroker) else []
    except BrokerAuthError as err:
        raise _fail(
            f"{where} refused the keys ({err}); check ALCHEMISER_ALPACA__API_KEY and "
            "ALCHEMISER_ALPACA__SECRET_KEY",
            2,
        ) from None
    except BrokerUnavailableError as err:
        variable = (
            "ALCHEMISER_BROKER__EXCHANGE_URL"
            if settings.broker.kind is BrokerKind.EXCHANGE
            else "ALCHEMISER_BROKER__KIND"
        )
        raise _fail(f"{where} did not answer ({err}); check {variable}", 2) from None
    except BrokerError as err:
        raise _fail(f"{where}: {err}", 1) from None
    document = _document(where, account, day.isoformat(), positions, orders)
    if as_json:
        import json

        typer.echo(json.dumps(document, sort_keys=True))
        return
    _print(document, positions, orders)

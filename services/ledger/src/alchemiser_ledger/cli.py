"""`alchemiser ledger` commands: the trade ledger, P&L statements and the monthly report.

* ``trades`` — the account's fills in booking order (``--all``: with the orders that filled
  nothing), each with its workflow and its split over the strategy files;
* ``pnl`` — per session the account's equity and P&L (day, month to date, since inception)
  and each strategy file's, with its realised and unrealised P&L;
* ``report --month YYYY-MM|previous`` — the month's summary; ``--html FILE`` writes it as one
  HTML page with the equity chart embedded, ``--send`` queues the monthly notification in the
  outbox and sends what is due once.

Rules:

* **Database.** ``--database-url``, else ``ALCHEMISER_LEDGER__DATABASE_URL``, else
  ``ALCHEMISER_DATABASE__URL`` (the ledger service's own database). Only ``report --send``
  writes (the notification's outbox rows). A URL is only ever shown with its password masked.
* **Account.** ``--account`` defaults to the only account in the ledger.
* **Output.** A Rich table by default; ``--json`` prints one JSON document whose decimals are
  the exact strings of :mod:`alchemiser_ledger.statements`; ``--csv`` prints CSV with exact
  decimals as plain text (never an exponent). Tables show money in cents.
* **previous** is the calendar month before the month of the latest snapshot's session, not
  the wall clock's: the monthly CronJob runs on the first trading day of a month after that
  session's workflow, so the latest session is in the new month and the report is the month
  that just ended, however late the job runs. (Run before that session's workflow, it names
  the month before last.)
* **Idempotent sending** (:mod:`alchemiser_ledger.monthly`). The monthly notification's id is
  ``monthly:<account>:<YYYY-MM>``; the outbox keys rows by it, so sending a month twice sends
  it once.
* **Errors** are one line on stderr: exit 2 for options, settings and the database (none
  configured, unreachable, without the ledger tables), exit 1 when there is nothing to report
  (no workflows, no session in the month) or a notification was refused for good.

The database, statement and chart modules are imported when a command runs, so
``alchemiser ledger --help`` stays as cheap as Typer itself.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from alchemiser_ledger.adapters.store import LedgerStore, TradeRow
    from alchemiser_ledger.report import Month, MonthSummary
    from alchemiser_ledger.statements import PnlStatement

__all__ = [
    "DATABASE_URL_ENVS",
    "EXIT_NOTHING",
    "EXIT_USAGE",
    "app",
    "fail",
    "plain_console",
]

EXIT_NOTHING = 1
"""Nothing to report (no workflows, no session in the month) or a notification refused."""
EXIT_USAGE = 2
"""Bad options or settings, or a database that cannot be read as a ledger."""

DATABASE_URL_ENVS = ("ALCHEMISER_LEDGER__DATABASE_URL", "ALCHEMISER_DATABASE__URL")
"""Where the database URL comes from without ``--database-url``, first set wins."""

app = typer.Typer(
    no_args_is_help=True,
    help="The trade ledger: trades, P&L per account and strategy file, monthly reports.",
)


@app.callback()
def _ledger() -> None:
    """The trade ledger: trades, P&L per account and strategy file, monthly reports."""


DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the ledger's database (default: $ALCHEMISER_LEDGER__DATABASE_URL"
        ", then $ALCHEMISER_DATABASE__URL).",
        show_default=False,
    ),
]
AccountOption = Annotated[
    str | None,
    typer.Option("--account", help="Account id (default: the only account in the ledger)."),
]
FromOption = Annotated[
    str | None, typer.Option("--from", help="First session, YYYY-MM-DD (default: the first).")
]
ToOption = Annotated[
    str | None, typer.Option("--to", help="Last session, YYYY-MM-DD (default: the latest).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV (exact decimals).")]


class _Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


# -- plumbing ------------------------------------------------------------------------------
def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one line on stderr and exit with ``code`` (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def plain_console() -> Console:
    """The console the commands print to (no automatic highlighting)."""
    return Console(highlight=False)


def _plain(value: Decimal) -> str:
    """A decimal as exact plain text (``0.000000001``, never ``1E-9``)."""
    return format(value, "f")


def _output(as_json: bool, as_csv: bool) -> _Output:
    if as_json and as_csv:
        fail("--json and --csv exclude each other")
    return _Output.JSON if as_json else _Output.CSV if as_csv else _Output.TABLE


def _date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not a date (YYYY-MM-DD)")


def _range(start: str | None, end: str | None) -> tuple[date | None, date | None]:
    first, last = _date(start, "--from"), _date(end, "--to")
    if first is not None and last is not None and first > last:
        fail(f"--from {first} is after --to {last}")
    return first, last


def _database_url(option: str | None) -> tuple[str, str]:
    """The database URL and where it came from (the option, else the first variable set)."""
    if option:
        return option, "--database-url"
    for name in DATABASE_URL_ENVS:
        value = os.environ.get(name)
        if value:
            return value, name
    fail(f"no database: pass --database-url or set {' or '.join(DATABASE_URL_ENVS)}")


def _error_line(err: Exception) -> str:
    """The first line of a database error (the driver's message, without SQLAlchemy's)."""
    cause = getattr(err, "orig", None) or err
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


@contextmanager
def _open_ledger(option: str | None) -> Iterator[LedgerStore]:
    """The ledger store of the configured database; database errors end the command."""
    from sqlalchemy import exc
    from sqlalchemy.engine import make_url

    from alchemiser_common.db import create_engine_from_url
    from alchemiser_common.errors import ConfigurationError
    from alchemiser_ledger.adapters.store import LedgerStore
    from alchemiser_ledger.exceptions import LedgerUnavailableError

    text, source = _database_url(option)
    try:
        url = make_url(text)
    except exc.ArgumentError:
        fail(f"{source} is not a database URL (postgresql+psycopg://... or sqlite:///path)")
    shown = url.render_as_string(hide_password=True)
    database = url.database or ""
    on_disk = database and not database.startswith((":memory:", "file:"))
    if url.get_backend_name() == "sqlite" and on_disk and not Path(database).is_file():
        fail(f"no ledger database at {shown} (no such file)")
    try:
        engine = create_engine_from_url(url)
    except ConfigurationError as err:
        fail(f"{source}: {err}")
    try:
        store = LedgerStore(engine)
        if not store.is_migrated():
            fail(f"{shown} has no ledger tables (the ledger service creates them at start-up)")
        yield store
    except (LedgerUnavailableError, exc.SQLAlchemyError) as err:
        fail(f"database error at {shown}: {_error_line(err)}")
    finally:
        engine.dispose()


def _account(store: LedgerStore, option: str | None) -> str:
    """``--account``, or the ledger's only account."""
    accounts = store.accounts()
    if not accounts:
        fail("the ledger has no workflows yet", EXIT_NOTHING)
    if option is not None:
        if option not in accounts:
            fail(f"account {option!r} is not in the ledger (accounts: {', '.join(accounts)})")
        return option
    if len(accounts) > 1:
        fail(f"the ledger holds several accounts, pass --account: {', '.join(accounts)}")
    return accounts[0]


def _statement(
    store: LedgerStore, account: str, start: date | None = None, end: date | None = None
) -> PnlStatement:
    """The account's P&L statement; a ledger the domain refuses to replay is one line."""
    from alchemiser_ledger.exceptions import LedgerError
    from alchemiser_ledger.statements import account_pnl

    try:
        return account_pnl(store, account, start=start, end=end)
    except LedgerError as err:
        fail(f"cannot replay the ledger of {account}: {err}", EXIT_NOTHING)


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _table(
    title: str, *columns: str, numeric: int = 0, start: int = 0, header: bool = True
) -> Table:
    """A table; ``numeric`` columns from index ``start`` on are right-aligned, unwrapped."""
    table = Table(title=Text(title), show_header=header)
    for index, name in enumerate(columns):
        is_number = start <= index < start + numeric
        table.add_column(
            name, justify="right" if is_number else "left", no_wrap=is_number, overflow="fold"
        )
    return table


# -- trades --------------------------------------------------------------------------------
_TRADE_HEADER = [
    "session",
    "symbol",
    "side",
    "qty",
    "price",
    "fees",
    "status",
    "client_order_id",
    "broker_order_id",
    "correlation_id",
    "filled_at",
    "strategy_qty",
    "strategy_realised",
]


def _trade_csv_row(trade: TradeRow) -> list[str]:
    return [
        "" if trade.session is None else trade.session.isoformat(),
        trade.symbol,
        trade.side,
        _plain(trade.qty),
        "" if trade.price is None else _plain(trade.price),
        _plain(trade.fees),
        trade.status,
        trade.client_order_id,
        trade.broker_order_id or "",
        trade.correlation_id,
        "" if trade.filled_at is None else trade.filled_at.isoformat(),
        ";".join(f"{name}={_plain(qty)}" for name, (qty, _) in trade.parts.items()),
        ";".join(f"{name}={_plain(realised)}" for name, (_, realised) in trade.parts.items()),
    ]


def _print_trades(account: str, trades: Sequence[TradeRow], *, all_orders: bool) -> None:
    kind = "orders" if all_orders else "fills"
    table = _table(
        f"{account}: {kind} in booking order",
        *("Session", "Symbol", "Side", "Qty", "Price", "Fees", "Status"),
        *("Client order id", "Broker order id", "Workflow", "Strategies (qty, realised)"),
        numeric=3,
        start=3,
    )
    for trade in trades:
        split = "\n".join(
            f"{name} {_plain(qty)} ({_plain(realised)})"
            for name, (qty, realised) in trade.parts.items()
        )
        cells = _trade_csv_row(trade)
        table.add_row(*(Text(cell) for cell in cells[:10]), Text(split))
    console = plain_console()
    console.print(table)
    console.print(f"{len(trades)} {kind}", soft_wrap=True)


@app.command("trades")
def trades_command(
    *,
    account: AccountOption = None,
    start: FromOption = None,
    end: ToOption = None,
    all_orders: Annotated[
        bool, typer.Option("--all", help="Also the orders that filled nothing.")
    ] = False,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """The account's fills, in booking order.

    Each with its session, workflow, order ids and its split over the strategy files (the
    quantity and realised P&L of each part); --all adds the orders that filled nothing.
    """
    from alchemiser_ledger.statements import trade_json

    output = _output(as_json, as_csv)
    first, last = _range(start, end)
    with _open_ledger(database_url) as store:
        account_id = _account(store, account)
        trades = store.trades(account_id, start=first, end=last, fills_only=not all_orders)
    if output is _Output.JSON:
        typer.echo(json.dumps([trade_json(trade) for trade in trades], indent=2))
    elif output is _Output.CSV:
        typer.echo(_csv(_TRADE_HEADER, [_trade_csv_row(trade) for trade in trades]), nl=False)
    else:
        _print_trades(account_id, trades, all_orders=all_orders)


# -- pnl -----------------------------------------------------------------------------------
_PNL_HEADER = [
    "session",
    "strategy",
    "equity",
    "day",
    "month_to_date",
    "since_inception",
    "realised",
    "unrealised",
]


def _pnl_csv_rows(statement: PnlStatement) -> list[list[str]]:
    """One row per session for the account (``strategy`` empty), then one per strategy."""
    rows: list[list[str]] = []
    for day in statement.days:
        session = day.session.isoformat()
        figures = day.account
        account = (figures.day, figures.month_to_date, figures.since_inception)
        rows.append([session, "", _plain(day.equity), *map(_plain, account), "", ""])
        for name, own in day.strategies.items():
            realised = day.realised.get(name, Decimal(0))
            unrealised = day.unrealised.get(name, Decimal(0))
            figures_of = (own.day, own.month_to_date, own.since_inception, realised, unrealised)
            rows.append([session, name, "", *map(_plain, figures_of)])
    return rows


def _print_pnl(statement: PnlStatement) -> None:
    from alchemiser_ledger.report import money as _money

    console = plain_console()
    if not statement.days:
        console.print(Text(f"no sessions for account {statement.account_id} in this range"))
        return
    account = _table(
        f"{statement.account_id}: P&L per session",
        *("Session", "Equity", "Day", "Month to date", "Since inception"),
        numeric=4,
        start=1,
    )
    strategies = _table(
        f"{statement.account_id}: P&L per strategy file",
        *("Session", "Strategy", "Day", "Month to date", "Since inception"),
        *("Realised", "Unrealised"),
        numeric=5,
        start=2,
    )
    for day in statement.days:
        figures = day.account
        account.add_row(
            day.session.isoformat(),
            *(_money(value) for value in (day.equity, figures.day)),
            *(_money(value) for value in (figures.month_to_date, figures.since_inception)),
        )
        for index, (name, own) in enumerate(day.strategies.items()):
            strategies.add_row(
                day.session.isoformat() if index == 0 else "",
                Text(name),
                *(_money(value) for value in (own.day, own.month_to_date, own.since_inception)),
                _money(day.realised.get(name, Decimal(0))),
                _money(day.unrealised.get(name, Decimal(0))),
                end_section=index == len(day.strategies) - 1,
            )
    console.print(account)
    console.print(strategies)
    for session, found in statement.breaks.items():
        differences = ", ".join(f"{symbol} {_plain(qty)}" for symbol, qty in found.items())
        console.print(
            Text(
                f"warning: on {session} the account's positions differ from the ledger's book "
                f"(account less book: {differences}); the strategies' P&L does not add up"
            )
        )


@app.command("pnl")
def pnl_command(
    *,
    account: AccountOption = None,
    start: FromOption = None,
    end: ToOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """P&L per session, account and strategies.

    Per session the account's equity and P&L (day, month to date, since inception) and each
    strategy file's, with its realised P&L that day and its unrealised P&L at the close.
    """
    from alchemiser_ledger.statements import pnl_json

    output = _output(as_json, as_csv)
    first, last = _range(start, end)
    with _open_ledger(database_url) as store:
        statement = _statement(store, _account(store, account), start=first, end=last)
    if output is _Output.JSON:
        typer.echo(json.dumps(pnl_json(statement), indent=2))
    elif output is _Output.CSV:
        typer.echo(_csv(_PNL_HEADER, _pnl_csv_rows(statement)), nl=False)
    else:
        _print_pnl(statement)


# -- report --------------------------------------------------------------------------------
def _month(text: str) -> Month | None:
    """``--month``: a month, or ``None`` for ``previous``."""
    from alchemiser_ledger.report import Month

    if text == "previous":
        return None
    try:
        return Month.parse(text)
    except ValueError:
        fail(f"--month {text!r} is not a month (YYYY-MM or previous)")


def _print_summary(summary: MonthSummary) -> None:
    from alchemiser_ledger.report import money

    console = plain_console()
    title = f"{summary.account_id}: {summary.month}"
    totals = _table(title, "", "", numeric=1, start=1, header=False)
    for label, value in (
        ("Start equity", money(summary.start_equity)),
        ("End equity", money(summary.end_equity)),
        ("Month P&L", money(summary.pnl)),
        ("Since inception", money(summary.since_inception)),
        ("Sessions", str(len(summary.sessions))),
        ("Fills", str(summary.fills)),
    ):
        totals.add_row(label, value)
    sessions = _table(
        f"{title}: sessions", "Session", "Equity", "Day P&L", "Month to date", numeric=3, start=1
    )
    for line in summary.sessions:
        sessions.add_row(
            line.session.isoformat(),
            *(money(value) for value in (line.equity, line.day_pnl, line.month_to_date)),
        )
    strategies = _table(
        f"{title}: strategy files",
        *("Strategy", "Month P&L", "Realised", "Unrealised"),
        numeric=3,
        start=1,
    )
    for strategy in summary.strategies:
        strategies.add_row(
            Text(strategy.name),
            *(money(v) for v in (strategy.month_pnl, strategy.realised, strategy.unrealised)),
        )
    for table in (totals, sessions, strategies):
        console.print(table)


def _write_html(summary: MonthSummary, path: Path) -> None:
    from alchemiser_ledger.report import equity_chart, render_html

    page = render_html(summary, equity_chart(summary))
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as err:
        fail(f"cannot write {path}: {err.strerror or err}")
    plain_console().print(Text(f"report written to {path}"))


@app.command("report")
def report_command(
    *,
    month: Annotated[
        str,
        typer.Option(
            "--month",
            help="YYYY-MM, or previous: the month before the latest session's.",
        ),
    ],
    account: AccountOption = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the report with its chart to FILE.")
    ] = None,
    send: Annotated[
        bool,
        typer.Option("--send", help="Queue the monthly notification and send it (once)."),
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """A month's summary, as HTML or notified.

    Start and end equity, the month's P&L, each session's, each strategy file's (realised and
    unrealised) and the number of fills. --send queues the monthly notification once per month
    and channel, then sends what is due.
    """
    from alchemiser_ledger.monthly import notify_settings, send_monthly

    chosen = _month(month)
    notify = notify_settings() if send else None
    with _open_ledger(database_url) as store:
        account_id = _account(store, account)
        summary = _summary(store, account_id, chosen)
        _print_summary(summary)
        if html is not None:
            _write_html(summary, html)
        if notify is not None:
            send_monthly(store, summary, notify)


def _summary(store: LedgerStore, account_id: str, chosen: Month | None) -> MonthSummary:
    """The month's summary (``None``: the month before the latest session's)."""
    from alchemiser_ledger.report import Month, month_summary

    statement = _statement(store, account_id)
    if not statement.days:
        fail(f"no sessions for account {account_id}", EXIT_NOTHING)
    month = chosen or Month.of(statement.days[-1].session).previous()
    fills = store.trades(account_id, start=month.first_day, end=month.last_day)
    summary = month_summary(statement, month, fills=len(fills))
    if summary is None:
        fail(f"no sessions in {month} for account {account_id}", EXIT_NOTHING)
    return summary

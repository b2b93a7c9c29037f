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
* **Idempotent sending.** The monthly notification's id is ``monthly:<account>:<YYYY-MM>``;
  the outbox keys rows by it, so sending a month twice sends it once.
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
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from alchemiser_ledger.adapters.store import LedgerStore, TradeRow
    from alchemiser_ledger.report import Month, MonthSummary
    from alchemiser_ledger.settings import NotifySettings
    from alchemiser_ledger.statements import PnlStatement

__all__ = [
    "DATABASE_URL_ENVS",
    "EXIT_NOTHING",
    "EXIT_USAGE",
    "app",
    "monthly_notification_id",
]

EXIT_NOTHING = 1
"""Nothing to report (no workflows, no session in the month) or a notification refused."""
EXIT_USAGE = 2
"""Bad options or settings, or a database that cannot be read as a ledger."""

DATABASE_URL_ENVS = ("ALCHEMISER_LEDGER__DATABASE_URL", "ALCHEMISER_DATABASE__URL")
"""Where the database URL comes from without ``--database-url``, first set wins."""

_MONTHLY_KIND = "monthly"

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


def monthly_notification_id(account_id: str, month: Month) -> str:
    """The outbox key of an account's monthly notification (one per month and channel)."""
    return f"{_MONTHLY_KIND}:{account_id}:{month}"


# -- plumbing ------------------------------------------------------------------------------
def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one line on stderr and exit with ``code`` (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _console() -> Console:
    return Console(highlight=False)


def _plain(value: Decimal) -> str:
    """A decimal as exact plain text (``0.000000001``, never ``1E-9``)."""
    return format(value, "f")


def _output(as_json: bool, as_csv: bool) -> _Output:
    if as_json and as_csv:
        _fail("--json and --csv exclude each other")
    return _Output.JSON if as_json else _Output.CSV if as_csv else _Output.TABLE


def _date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{option} {text!r} is not a date (YYYY-MM-DD)")


def _range(start: str | None, end: str | None) -> tuple[date | None, date | None]:
    first, last = _date(start, "--from"), _date(end, "--to")
    if first is not None and last is not None and first > last:
        _fail(f"--from {first} is after --to {last}")
    return first, last


def _database_url(option: str | None) -> tuple[str, str]:
    """The database URL and where it came from (the option, else the first variable set)."""
    if option:
        return option, "--database-url"
    for name in DATABASE_URL_ENVS:
        value = os.environ.get(name)
        if value:
            return value, name
    _fail(f"no database: pass --database-url or set {' or '.join(DATABASE_URL_ENVS)}")


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
        _fail(f"{source} is not a database URL (postgresql+psycopg://... or sqlite:///path)")
    shown = url.render_as_string(hide_password=True)
    database = url.database or ""
    on_disk = database and not database.startswith((":memory:", "file:"))
    if url.get_backend_name() == "sqlite" and on_disk and not Path(database).is_file():
        _fail(f"no ledger database at {shown} (no such file)")
    try:
        engine = create_engine_from_url(url)
    except ConfigurationError as err:
        _fail(f"{source}: {err}")
    try:
        store = LedgerStore(engine)
        if not store.is_migrated():
            _fail(f"{shown} has no ledger tables (the ledger service creates them at start-up)")
        yield store
    except (LedgerUnavailableError, exc.SQLAlchemyError) as err:
        _fail(f"database error at {shown}: {_error_line(err)}")
    finally:
        engine.dispose()


def _account(store: LedgerStore, option: str | None) -> str:
    """``--account``, or the ledger's only account."""
    accounts = store.accounts()
    if not accounts:
        _fail("the ledger has no workflows yet", EXIT_NOTHING)
    if option is not None:
        if option not in accounts:
            _fail(f"account {option!r} is not in the ledger (accounts: {', '.join(accounts)})")
        return option
    if len(accounts) > 1:
        _fail(f"the ledger holds several accounts, pass --account: {', '.join(accounts)}")
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
        _fail(f"cannot replay the ledger of {account}: {err}", EXIT_NOTHING)


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
    console = _console()
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

    console = _console()
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
        _fail(f"--month {text!r} is not a month (YYYY-MM or previous)")


def _print_summary(summary: MonthSummary) -> None:
    from alchemiser_ledger.report import money

    console = _console()
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
        _fail(f"cannot write {path}: {err.strerror or err}")
    _console().print(Text(f"report written to {path}"))


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
    chosen = _month(month)
    notify = _notify_settings() if send else None
    with _open_ledger(database_url) as store:
        account_id = _account(store, account)
        summary = _summary(store, account_id, chosen)
        _print_summary(summary)
        if html is not None:
            _write_html(summary, html)
        if notify is not None:
            _send_monthly(store, summary, notify)


def _summary(store: LedgerStore, account_id: str, chosen: Month | None) -> MonthSummary:
    """The month's summary (``None``: the month before the latest session's)."""
    from alchemiser_ledger.report import Month, month_summary

    statement = _statement(store, account_id)
    if not statement.days:
        _fail(f"no sessions for account {account_id}", EXIT_NOTHING)
    month = chosen or Month.of(statement.days[-1].session).previous()
    fills = store.trades(account_id, start=month.first_day, end=month.last_day)
    summary = month_summary(statement, month, fills=len(fills))
    if summary is None:
        _fail(f"no sessions in {month} for account {account_id}", EXIT_NOTHING)
    return summary


# -- report --send -------------------------------------------------------------------------
def _notify_settings() -> NotifySettings:
    """The ``notify`` section from the environment; no channel configured ends the command.

    Only that section is read (the same :class:`NotifySettings` model and variables as the
    service's), so the report needs neither the broker's keys nor the service's other settings.
    """
    from pydantic_settings import BaseSettings, SettingsConfigDict

    from alchemiser_common.errors import ConfigurationError
    from alchemiser_common.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, load_settings
    from alchemiser_ledger.settings import NotifySettings

    class _NotifyOnly(BaseSettings):
        model_config = SettingsConfigDict(
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=ENV_NESTED_DELIMITER,
            env_file=".env",
            env_file_encoding="utf-8",
            extra="ignore",
            frozen=True,
        )
        notify: NotifySettings = NotifySettings()

    try:
        notify = load_settings(_NotifyOnly).notify
    except ConfigurationError as err:
        _fail(str(err))
    if not notify.channels():
        _fail(
            "no notification channel configured: set ALCHEMISER_NOTIFY__SMTP__HOST (and its "
            "sender and recipients) or ALCHEMISER_NOTIFY__WEBHOOK__URL"
        )
    return notify


def _send_monthly(store: LedgerStore, summary: MonthSummary, notify: NotifySettings) -> None:
    """Queue the month's notification (once per month and channel), send what is due once."""
    from alchemiser_ledger import app as composition
    from alchemiser_ledger.notify import MonthlyNotice, OutboxSender, queue, render_monthly

    notice = MonthlyNotice(
        account_id=summary.account_id,
        month=str(summary.month),
        start_equity=summary.start_equity,
        end_equity=summary.end_equity,
        pnl=summary.pnl,
        sessions=tuple((line.session, line.equity, line.day_pnl) for line in summary.sessions),
        strategies=tuple(
            (line.name, line.month_pnl, line.realised, line.unrealised)
            for line in summary.strategies
        ),
    )
    notification_id = monthly_notification_id(summary.account_id, summary.month)
    channels = composition.channels_for(notify)
    unit = queue(
        summary.account_id,
        notification_id,
        _MONTHLY_KIND,
        render_monthly(notice),
        sorted(channels),
        datetime.now(UTC),
    )
    with store.engine.begin() as connection:
        unit(connection)
    attempted = OutboxSender(
        store.engine,
        channels,
        now=lambda: datetime.now(UTC),
        backoff_initial_s=notify.backoff_initial_s,
        backoff_max_s=notify.backoff_max_s,
        max_attempts=notify.max_attempts,
    ).send_due()
    _report_outbox(store, notification_id, attempted)


def _outbox_rows(store: LedgerStore, notification_id: str) -> list[dict[str, Any]]:
    """The notification's outbox rows (one per channel), read in a deferred transaction."""
    import sqlalchemy as sa

    from alchemiser_ledger.adapters.schema import notification_table

    table = notification_table.c
    query = (
        sa.select(table.channel, table.status, table.attempts, table.sent_at, table.last_error)
        .where(table.notification_id == notification_id)
        .order_by(table.channel)
    )
    with (
        store.engine.connect().execution_options(sqlite_begin="DEFERRED") as connection,
        connection.begin(),
    ):
        return [dict(row) for row in connection.execute(query).mappings()]


def _channel_state(row: dict[str, Any]) -> tuple[str, bool]:
    """What became of the notification on one channel, and whether it was refused for good."""
    from alchemiser_ledger.notify import NotificationStatus

    status, error = NotificationStatus(row["status"]), row["last_error"] or "no error recorded"
    if status is NotificationStatus.SENT:
        return f"sent ({row['sent_at']:%Y-%m-%d %H:%M} UTC)", False
    if status is NotificationStatus.SENDING:
        return "being sent by another sender (the ledger service's)", False
    if status is NotificationStatus.PENDING and row["attempts"] == 0:
        return "queued, not attempted yet (the ledger service's sender sends it)", False
    if status is NotificationStatus.PENDING:
        return (
            f"deferred after {row['attempts']} attempt(s) ({error}); the ledger service's "
            "sender retries it, or run this command again later",
            False,
        )
    return f"{status.value}, not sent again: {error}", True


def _report_outbox(store: LedgerStore, notification_id: str, attempted: int) -> None:
    """Print each channel's state of the notification; one refused for good exits 1."""
    console = _console()
    console.print(Text(f"{notification_id}: {attempted} due notification(s) attempted now"))
    refused = False
    for row in _outbox_rows(store, notification_id):
        line, failed = _channel_state(row)
        refused = refused or failed
        console.print(Text(f"  {row['channel']}: {line}"))
    if refused:
        raise typer.Exit(EXIT_NOTHING)

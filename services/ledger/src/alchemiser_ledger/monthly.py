"""``alchemiser ledger report --send``: queue a month's notification once, send what is due.

The monthly notification's id is ``monthly:<account>:<YYYY-MM>`` and the outbox keys its rows
by it and the channel, so sending a month twice sends it once. The notification settings are
read alone (the ``notify`` section), so the report needs neither the broker's keys nor the
service's other settings; the rows are sent by the same :class:`OutboxSender` the service
runs, once, and each channel's state is printed (refused for good: exit 1).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from alchemiser_ledger.cli import EXIT_NOTHING, fail, plain_console

if TYPE_CHECKING:
    from alchemiser_ledger.adapters.store import LedgerStore
    from alchemiser_ledger.report import Month, MonthSummary
    from alchemiser_ledger.settings import NotifySettings

__all__ = ["monthly_notification_id", "notify_settings", "send_monthly"]

_MONTHLY_KIND = "monthly"


def monthly_notification_id(account_id: str, month: Month) -> str:
    """The outbox key of an account's monthly notification (one per month and channel)."""
    return f"{_MONTHLY_KIND}:{account_id}:{month}"


def notify_settings() -> NotifySettings:
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
        fail(str(err))
    if not notify.channels():
        fail(
            "no notification channel configured: set ALCHEMISER_NOTIFY__SMTP__HOST (and its "
            "sender and recipients) or ALCHEMISER_NOTIFY__WEBHOOK__URL"
        )
    return notify


def send_monthly(store: LedgerStore, summary: MonthSummary, notify: NotifySettings) -> None:
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
    console = plain_console()
    console.print(Text(f"{notification_id}: {attempted} due notification(s) attempted now"))
    refused = False
    for row in _outbox_rows(store, notification_id):
        line, failed = _channel_state(row)
        refused = refused or failed
        console.print(Text(f"  {row['channel']}: {line}"))
    if refused:
        raise typer.Exit(EXIT_NOTHING)

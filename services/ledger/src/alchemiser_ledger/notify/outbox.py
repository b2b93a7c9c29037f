"""The notification outbox: queue in the handler's transaction, send each row at most once.

**Queue.** :func:`queue` returns a unit of work that inserts one ``pending`` row per channel
into ``ledger_notifications``, run by the runtime inside the handler's inbox transaction: a
notification exists exactly when the event that caused it was recorded. The primary key
``(notification_id, channel)`` decides duplicates (``INSERT ... ON CONFLICT DO NOTHING``),
so a redelivered event queues nothing new.

**Send** (:class:`OutboxSender`), one row at a time, in this order:

1. *Claim*, one short transaction: ``UPDATE ... SET status='sending', attempts=attempts+1
   WHERE key AND status='pending' AND next_attempt_at <= now``; a row count of 0 means
   another sender took it (or it is no longer due), and it is skipped. The row's content is
   read in the same transaction.
2. *Deliver*, with **no** transaction open: the channel talks to the server.
3. *Record*, another short transaction, only on the row this claim made (same
   ``attempts``): delivered -> ``sent`` (``sent_at``); :class:`DeliveryDeferred` ->
   ``pending`` again at ``now + backoff`` (``initial * 2**(attempts-1)``, at most
   ``backoff_max_s``), or ``failed`` after ``max_attempts``; :class:`DeliveryRefused` ->
   ``failed``; :class:`DeliveryUncertain`, or any other exception (it may have been
   delivered) -> ``uncertain``, never retried. If the write fails (database down), the
   outcome is kept in memory and written first thing on the next round.

**Crash.** A row left ``sending`` means a sender stopped between claim and record: it may or
may not have been delivered. :meth:`OutboxSender.recover` (first thing in :meth:`run`) marks
such rows ``uncertain`` and never sends them again: at most once, never twice. Run one
sender per database; a second one starting while the first is mid-send marks that row
``uncertain`` until the first records its outcome over it.

A row whose channel has no configured sender stays ``pending`` (configure the channel and
it goes). Times are UTC; SQLite's naive datetimes are read as UTC.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from alchemiser_common.db import as_utc, insert_ignoring_duplicates, is_transient_database_error
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.inbox import UnitOfWork
from alchemiser_common.observability.logging import get_logger
from alchemiser_ledger.adapters.schema import notification_table
from alchemiser_ledger.notify.channels import (
    Channel,
    DeliveryDeferred,
    DeliveryRefused,
    DeliveryUncertain,
)
from alchemiser_ledger.notify.messages import Message

__all__ = ["DeliveryOutcome", "NotificationStatus", "OutboxSender", "queue"]

_ERROR_CHARS = 1000  # of an error message kept in last_error
_RECOVERED = "the sender stopped mid-send; it may have been delivered, so it is not sent again"

_log = get_logger("alchemiser.ledger.notify")
_t = notification_table.c


class NotificationStatus(StrEnum):
    """The ``status`` column of an outbox row."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


class DeliveryOutcome(StrEnum):
    """What one delivery attempt came to (what the ``on_outcome`` hook is told)."""

    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    """UTC, so SQLite (which drops the offset) compares like PostgreSQL."""
    converted = as_utc(moment)
    assert converted is not None
    return converted


def queue(  # noqa: PLR0917 - the outbox row's fields, in the order handlers pass them
    account_id: str,
    notification_id: str,
    kind: str,
    message: Message,
    channels: Sequence[str],
    now: datetime,
) -> UnitOfWork:
    """The unit of work queueing ``message`` once per channel (idempotent by primary key)."""
    at = _utc(now)
    rows = [
        {
            "notification_id": notification_id,
            "account_id": account_id,
            "channel": channel,
            "kind": kind,
            "subject": message.subject,
            "body_text": message.text,
            "body_html": message.html or None,
            "status": NotificationStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }
        for channel in sorted(set(channels))
    ]

    def record(connection: Connection) -> None:
        insert_ignoring_duplicates(connection, notification_table, rows)

    return record


@dataclass(frozen=True, slots=True)
class _Claim:
    notification_id: str
    channel: str
    account_id: str
    kind: str
    attempts: int
    message: Message


@dataclass(frozen=True, slots=True)
class _Outcome:
    notification_id: str
    channel: str
    attempts: int
    values: Mapping[str, object]


class OutboxSender:
    """Sends due outbox rows through the configured channels, each at most once."""

    def __init__(
        self,
        engine: Engine,
        channels: Mapping[str, Channel],
        *,
        now: Callable[[], datetime] = _utc_now,
        backoff_initial_s: float = 5.0,
        backoff_max_s: float = 300.0,
        max_attempts: int = 50,
        poll_interval_s: float = 1.0,
        on_outcome: Callable[[str, DeliveryOutcome], None] | None = None,
    ) -> None:
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ConfigurationError("need 0 < backoff_initial_s <= backoff_max_s")
        if max_attempts < 1 or poll_interval_s <= 0:
            raise ConfigurationError("need max_attempts >= 1 and poll_interval_s > 0")
        self._engine = engine
        self._channels = dict(channels)
        self._now = now
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._max_attempts = max_attempts
        self._poll_interval_s = poll_interval_s
        self._on_outcome = on_outcome
        self._unrecorded: list[_Outcome] = []

    # --- public ---------------------------------------------------------------------------

    def recover(self) -> int:
        """Mark rows left ``sending`` (a crash mid-send) ``uncertain``; returns how many."""
        stuck = _t.status == NotificationStatus.SENDING.value
        with self._engine.begin() as connection:
            rows = connection.execute(
                sa.select(_t.notification_id, _t.channel, _t.account_id, _t.kind).where(stuck)
            ).all()
            for notification_id, channel, _account_id, _kind in rows:  # exactly those logged
                connection.execute(
                    sa.update(notification_table)
                    .where(stuck, _t.notification_id == notification_id, _t.channel == channel)
                    .values(status=NotificationStatus.UNCERTAIN.value, last_error=_RECOVERED)
                )
        for notification_id, channel, account_id, kind in rows:
            _log.warning(
                "notification was being sent when the sender stopped; marked uncertain and "
                "not sent again",
                notification_id=notification_id,
                channel=channel,
                account_id=account_id,
                kind=kind,
            )
        return len(rows)

    def send_due(self, limit: int = 20) -> int:
        """Claim and send up to ``limit`` due rows; returns how many were attempted.

        Raises SQLAlchemy errors when the database fails (a claimed row's outcome is kept
        and recorded on the next call)."""
        return self._send_due(limit, None)

    def run(self, stop: threading.Event, *, limit: int = 20) -> None:
        """:meth:`recover`, then :meth:`send_due` every ``poll_interval_s`` until ``stop``
        is set (at once again while rows keep coming). Never raises: database errors (and
        any other failure) are logged and retried after ``poll_interval_s``."""
        while not stop.is_set():
            try:
                self.recover()
                break
            except sa_exc.SQLAlchemyError as err:
                _log_database_error(err, "recovering the outbox", self._poll_interval_s)
                stop.wait(self._poll_interval_s)
            except Exception:  # a background task must not die (BackgroundTask's contract)
                _log.exception("recovering the outbox failed; retrying")
                stop.wait(self._poll_interval_s)
        while not stop.is_set():
            busy = False
            try:
                busy = self._send_due(limit, stop) >= limit
            except sa_exc.SQLAlchemyError as err:
                _log_database_error(err, "sending due notifications", self._poll_interval_s)
            except Exception:  # a background task must not die (BackgroundTask's contract)
                _log.exception(
                    "notification sender failed; retrying", retry_in_s=self._poll_interval_s
                )
            if not busy:
                stop.wait(self._poll_interval_s)

    # --- steps ----------------------------------------------------------------------------

    def _send_due(self, limit: int, stop: threading.Event | None) -> int:
        self._record_unrecorded()
        attempted = 0
        for notification_id, channel in self._due(limit):
            if stop is not None and stop.is_set():
                break
            claim = self._claim(notification_id, channel)
            if claim is None:
                continue
            attempted += 1
            self._record(self._deliver(claim))
        return attempted

    def _due(self, limit: int) -> list[tuple[str, str]]:
        if not self._channels or limit < 1:
            return []
        query = (
            sa.select(_t.notification_id, _t.channel)
            .where(
                _t.status == NotificationStatus.PENDING.value,
                _t.next_attempt_at <= _utc(self._now()),
                _t.channel.in_(sorted(self._channels)),
            )
            .order_by(_t.next_attempt_at, _t.created_at, _t.notification_id, _t.channel)
            .limit(limit)
        )
        with (
            self._engine.connect().execution_options(sqlite_begin="DEFERRED") as connection,
            connection.begin(),
        ):
            return [(row[0], row[1]) for row in connection.execute(query)]

    def _claim(self, notification_id: str, channel: str) -> _Claim | None:
        key = (_t.notification_id == notification_id) & (_t.channel == channel)
        with self._engine.begin() as connection:
            claimed = connection.execute(
                sa.update(notification_table)
                .where(
                    key,
                    _t.status == NotificationStatus.PENDING.value,
                    _t.next_attempt_at <= _utc(self._now()),
                )
                .values(status=NotificationStatus.SENDING.value, attempts=_t.attempts + 1)
            )
            if claimed.rowcount != 1:
                return None
            row = connection.execute(
                sa.select(
                    _t.account_id, _t.kind, _t.attempts, _t.subject, _t.body_text, _t.body_html
                ).where(key)
            ).one()
        message = Message(subject=row.subject, text=row.body_text, html=row.body_html or "")
        return _Claim(notification_id, channel, row.account_id, row.kind, row.attempts, message)

    def _deliver(self, claim: _Claim) -> _Outcome:
        """Send with no transaction open; the exception class decides the outcome."""
        fields = {
            "notification_id": claim.notification_id,
            "channel": claim.channel,
            "account_id": claim.account_id,
            "kind": claim.kind,
            "attempts": claim.attempts,
        }
        try:
            self._channels[claim.channel].send(claim.message, message_id=claim.notification_id)
        except DeliveryDeferred as err:
            return self._deferred(claim, err, fields)
        except DeliveryRefused as err:
            _log.error("notification refused; not retried", error=str(err), **fields)
            return self._outcome(claim, DeliveryOutcome.FAILED, _failed(err))
        except DeliveryUncertain as err:
            _log.error(
                "notification may have been delivered; not retried", error=str(err), **fields
            )
            return self._outcome(claim, DeliveryOutcome.UNCERTAIN, _uncertain(err))
        except Exception as err:  # a bug in a channel: it may have sent, so never again
            _log.exception("notification channel failed unexpectedly; not retried", **fields)
            return self._outcome(claim, DeliveryOutcome.UNCERTAIN, _uncertain(err))
        _log.info("notification sent", **fields)
        values = {
            "status": NotificationStatus.SENT.value,
            "sent_at": _utc(self._now()),
            "last_error": None,
        }
        return self._outcome(claim, DeliveryOutcome.SENT, values)

    def _deferred(self, claim: _Claim, err: DeliveryDeferred, fields: dict[str, Any]) -> _Outcome:
        if claim.attempts >= self._max_attempts:
            _log.error("notification deferred too often; giving up", error=str(err), **fields)
            return self._outcome(claim, DeliveryOutcome.FAILED, _failed(err, gave_up=True))
        retry_at = _utc(self._now()) + self._backoff(claim.attempts)
        _log.warning(
            "notification deferred; will retry", error=str(err), retry_at=retry_at, **fields
        )
        values = {
            "status": NotificationStatus.PENDING.value,
            "next_attempt_at": retry_at,
            "last_error": _error_text(err),
        }
        return self._outcome(claim, DeliveryOutcome.DEFERRED, values)

    def _backoff(self, attempts: int) -> timedelta:
        exponent = min(max(attempts - 1, 0), 32)  # 2**32 * anything exceeds any sane maximum
        seconds = min(self._backoff_max_s, self._backoff_initial_s * 2**exponent)
        return timedelta(seconds=seconds)

    def _outcome(
        self, claim: _Claim, outcome: DeliveryOutcome, values: Mapping[str, object]
    ) -> _Outcome:
        if self._on_outcome is not None:
            try:
                self._on_outcome(claim.channel, outcome)
            except Exception:  # a metrics hook must not leave the row 'sending'
                _log.exception("notification outcome hook failed", channel=claim.channel)
        return _Outcome(claim.notification_id, claim.channel, claim.attempts, values)

    def _record(self, outcome: _Outcome) -> None:
        try:
            self._write(outcome)
        except sa_exc.SQLAlchemyError:
            self._unrecorded.append(outcome)
            raise

    def _record_unrecorded(self) -> None:
        while self._unrecorded:
            self._write(self._unrecorded[0])
            self._unrecorded.pop(0)

    def _write(self, outcome: _Outcome) -> None:
        """Only over this claim: same attempts, still ``sending`` (or ``uncertain`` if a
        recover ran meanwhile)."""
        with self._engine.begin() as connection:
            written = connection.execute(
                sa.update(notification_table)
                .where(
                    _t.notification_id == outcome.notification_id,
                    _t.channel == outcome.channel,
                    _t.attempts == outcome.attempts,
                    _t.status.in_(
                        [NotificationStatus.SENDING.value, NotificationStatus.UNCERTAIN.value]
                    ),
                )
                .values(**outcome.values)
            )
        if written.rowcount != 1:
            _log.warning(
                "notification row changed while it was being sent; outcome not recorded",
                notification_id=outcome.notification_id,
                channel=outcome.channel,
            )


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:_ERROR_CHARS]


def _failed(err: BaseException, *, gave_up: bool = False) -> dict[str, object]:
    text = _error_text(err)
    if gave_up:
        text = f"gave up after repeated deferrals; last: {text}"[:_ERROR_CHARS]
    return {"status": NotificationStatus.FAILED.value, "last_error": text}


def _uncertain(err: BaseException) -> dict[str, object]:
    return {"status": NotificationStatus.UNCERTAIN.value, "last_error": _error_text(err)}


def _log_database_error(err: sa_exc.SQLAlchemyError, doing: str, retry_in_s: float) -> None:
    orig = getattr(err, "orig", None)
    detail = f"{type(err).__name__}: {orig if orig is not None else err}"
    _log.warning(
        f"database error while {doing}; retrying",
        error=detail[:_ERROR_CHARS],
        transient=is_transient_database_error(err),
        retry_in_s=retry_in_s,
    )

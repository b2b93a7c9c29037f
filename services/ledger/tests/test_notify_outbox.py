"""Unit tests of the notification outbox over SQLite: queueing, claiming, outcomes, recovery."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alchemiser_common.db import as_utc, create_engine_from_url
from alchemiser_ledger.adapters.schema import metadata, notification_table
from alchemiser_ledger.notify import (
    DeliveryDeferred,
    DeliveryOutcome,
    DeliveryRefused,
    DeliveryUncertain,
    Message,
    OutboxSender,
    queue,
)

T0 = datetime(2024, 3, 1, 21, 0, tzinfo=UTC)
MESSAGE = Message(subject="Alchemiser: test", text="hello\n", html="<p>hello</p>")

Behaviour = Callable[[Message, str], None]


class Clock:
    """A settable clock."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class FakeChannel:
    """Records every send; each send runs the next behaviour (the last one repeats)."""

    def __init__(self, name: str, *behaviours: Behaviour) -> None:
        self.name = name
        self.sent: list[tuple[Message, str]] = []
        self._behaviours = list(behaviours)

    def send(self, message: Message, *, message_id: str) -> None:
        self.sent.append((message, message_id))
        if self._behaviours:
            behaviour = (
                self._behaviours.pop(0) if len(self._behaviours) > 1 else self._behaviours[0]
            )
            behaviour(message, message_id)


def raising(error: Exception) -> Behaviour:
    def behave(_message: Message, _message_id: str) -> None:
        raise error

    return behave


@pytest.fixture
def engine(ledger_engine: Engine) -> Engine:
    """The outbox's tables on SQLite or PostgreSQL (``conftest.py``)."""
    metadata.create_all(ledger_engine)
    return ledger_engine


def _queue(engine: Engine, notification_id: str = "workflow:acct-7:c-1", *channels: str) -> None:
    with engine.begin() as connection:
        queue("acct-7", notification_id, "workflow", MESSAGE, channels or ("email",), T0)(
            connection
        )


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(notification_table).order_by(
                notification_table.c.notification_id, notification_table.c.channel
            )
        )
        return [dict(row._mapping) for row in rows]


def _row(engine: Engine) -> dict[str, Any]:
    (row,) = _rows(engine)
    return row


def test_queue_when_queued_twice_then_one_row_per_channel_and_one_send_each(engine: Engine) -> None:
    _queue(engine, "n-1", "email", "webhook")
    _queue(engine, "n-1", "email", "webhook")  # a redelivered event
    email, webhook = FakeChannel("email"), FakeChannel("webhook")
    clock = Clock()
    sender = OutboxSender(engine, {"email": email, "webhook": webhook}, now=clock)

    assert [(row["channel"], row["status"], row["attempts"]) for row in _rows(engine)] == [
        ("email", "pending", 0),
        ("webhook", "pending", 0),
    ]
    assert sender.send_due() == 2
    assert sender.send_due() == 0

    assert email.sent == [(MESSAGE, "n-1")]
    assert webhook.sent == [(MESSAGE, "n-1")]
    for row in _rows(engine):
        assert row["status"] == "sent"
        assert row["attempts"] == 1
        assert as_utc(row["sent_at"]) == T0
        assert row["last_error"] is None
        assert row["body_html"] == "<p>hello</p>"


def test_send_due_when_deferred_then_pending_with_exponential_backoff(engine: Engine) -> None:
    _queue(engine)
    channel = FakeChannel("email", raising(DeliveryDeferred("SMTP 451 try later")))
    clock = Clock()
    sender = OutboxSender(
        engine, {"email": channel}, now=clock, backoff_initial_s=5, backoff_max_s=12
    )

    assert sender.send_due() == 1
    row = _row(engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert as_utc(row["next_attempt_at"]) == T0 + timedelta(seconds=5)
    assert "451 try later" in row["last_error"]

    clock.advance(4.9)
    assert sender.send_due() == 0  # not due yet
    clock.advance(0.1)
    assert sender.send_due() == 1
    assert as_utc(_row(engine)["next_attempt_at"]) == clock.at + timedelta(seconds=10)

    clock.advance(10)
    assert sender.send_due() == 1
    row = _row(engine)
    assert row["attempts"] == 3
    assert as_utc(row["next_attempt_at"]) == clock.at + timedelta(seconds=12)  # capped
    assert len(channel.sent) == 3


def test_send_due_when_deferred_max_attempts_times_then_failed(engine: Engine) -> None:
    _queue(engine)
    channel = FakeChannel("email", raising(DeliveryDeferred("connection refused")))
    clock = Clock()
    sender = OutboxSender(engine, {"email": channel}, now=clock, max_attempts=3)

    for _ in range(5):
        sender.send_due()
        clock.advance(3600)

    row = _row(engine)
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert row["last_error"].startswith("gave up after repeated deferrals")
    assert len(channel.sent) == 3


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DeliveryRefused("SMTP 535 bad credentials"), "failed"),
        (DeliveryUncertain("connection lost after DATA"), "uncertain"),
        (RuntimeError("a bug in the channel"), "uncertain"),
    ],
)
def test_send_due_when_refused_or_uncertain_then_never_retried(
    engine: Engine, error: Exception, status: str
) -> None:
    _queue(engine)
    channel = FakeChannel("email", raising(error))
    clock = Clock()
    sender = OutboxSender(engine, {"email": channel}, now=clock)

    sender.send_due()
    clock.advance(86_400)
    assert sender.send_due() == 0

    row = _row(engine)
    assert (row["status"], row["attempts"]) == (status, 1)
    assert str(error) in row["last_error"]
    assert len(channel.sent) == 1


def test_send_due_when_channel_not_configured_then_row_stays_pending(engine: Engine) -> None:
    _queue(engine, "n-1", "email", "webhook")
    email = FakeChannel("email")
    sender = OutboxSender(engine, {"email": email}, now=Clock())

    assert sender.send_due() == 1

    statuses = {row["channel"]: (row["status"], row["attempts"]) for row in _rows(engine)}
    assert statuses == {"email": ("sent", 1), "webhook": ("pending", 0)}


def test_send_due_when_another_sender_runs_meanwhile_then_it_claims_nothing(
    engine: Engine,
) -> None:
    _queue(engine)
    clock = Clock()
    rival_channel = FakeChannel("email")
    rival = OutboxSender(engine, {"email": rival_channel}, now=clock)
    seen_by_rival: list[int] = []

    def rival_runs(_message: Message, _message_id: str) -> None:
        seen_by_rival.append(rival.send_due())  # while this row is being sent

    channel = FakeChannel("email", rival_runs)
    OutboxSender(engine, {"email": channel}, now=clock).send_due()

    assert seen_by_rival == [0]
    assert rival_channel.sent == []
    assert len(channel.sent) == 1
    assert _row(engine)["status"] == "sent"


def test_recover_when_row_left_sending_then_uncertain_and_never_sent(engine: Engine) -> None:
    _queue(engine)
    with engine.begin() as connection:
        connection.execute(sa.update(notification_table).values(status="sending", attempts=1))
    channel = FakeChannel("email")
    clock = Clock()
    sender = OutboxSender(engine, {"email": channel}, now=clock)

    assert sender.recover() == 1
    clock.advance(86_400)
    assert sender.send_due() == 0
    assert sender.recover() == 0

    row = _row(engine)
    assert row["status"] == "uncertain"
    assert "not sent again" in row["last_error"]
    assert channel.sent == []


def test_send_due_when_outcome_write_fails_then_recorded_next_round_without_resending(
    tmp_path: Path,
) -> None:
    # SQLite only: the database is cut off by renaming the table under the sender
    engine = create_engine_from_url("sqlite:///" + str(tmp_path / "ledger.db"))
    metadata.create_all(engine)
    _queue(engine)

    def database_goes_away(_message: Message, _message_id: str) -> None:
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE ledger_notifications RENAME TO parked")

    channel = FakeChannel("email", database_goes_away, lambda _m, _i: None)
    sender = OutboxSender(engine, {"email": channel}, now=Clock())

    with pytest.raises(sa.exc.OperationalError):
        sender.send_due()
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE parked RENAME TO ledger_notifications")
    assert _row(engine)["status"] == "sending"  # the claim committed, the outcome did not

    assert sender.send_due() == 0

    row = _row(engine)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert len(channel.sent) == 1
    engine.dispose()


def test_send_due_then_outcome_hook_hears_each_attempt(engine: Engine) -> None:
    _queue(engine, "n-1", "email", "webhook")
    heard: list[tuple[str, DeliveryOutcome]] = []
    channels = {
        "email": FakeChannel("email"),
        "webhook": FakeChannel("webhook", raising(DeliveryDeferred("HTTP 503"))),
    }
    sender = OutboxSender(
        engine, channels, now=Clock(), on_outcome=lambda *args: heard.append(args)
    )

    sender.send_due()

    assert sorted(heard) == [("email", DeliveryOutcome.SENT), ("webhook", DeliveryOutcome.DEFERRED)]


def test_run_when_database_fails_then_loop_survives_and_sends_once_it_is_back(
    tmp_path: Path,
) -> None:
    engine = create_engine_from_url("sqlite:///" + str(tmp_path / "late.db"))  # no tables yet
    channel = FakeChannel("email")
    sender = OutboxSender(engine, {"email": channel}, poll_interval_s=0.02)
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
    thread.start()
    try:
        stop.wait(0.2)  # several rounds fail: no such table
        assert thread.is_alive()
        metadata.create_all(engine)
        with engine.begin() as connection:
            queue("acct-7", "n-1", "workflow", MESSAGE, ["email"], datetime.now(UTC))(connection)
        for _ in range(250):
            if channel.sent:
                break
            stop.wait(0.02)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert channel.sent == [(MESSAGE, "n-1")]
    assert _row(engine)["status"] == "sent"
    engine.dispose()


def test_outbox_sender_when_backoff_inverted_then_configuration_error(engine: Engine) -> None:
    from alchemiser_common.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        OutboxSender(engine, {}, backoff_initial_s=10, backoff_max_s=5)

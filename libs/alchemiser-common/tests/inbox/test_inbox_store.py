"""The inbox store contract (``lookup`` / ``record``), run against SQLite and PostgreSQL.

Waits are bounded: every thread is joined with a timeout, every event waited for with one.
The only fixed window is how long a blocked ``record`` must stay blocked; it can only make a
test too lenient, never fail a correct store.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg import sql
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, make_url

from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.inbox import (
    INBOX_VERSION_TABLE,
    Claim,
    ClaimOutcome,
    InboxEntry,
    InboxStore,
    InboxStoreError,
    InboxUnavailableError,
    InboxUsageError,
    PostgresInboxStore,
    SqliteInboxStore,
    StoredOutput,
    TransientError,
    UnitOfWork,
    inbox_store_for,
    inbox_table,
    metadata,
)
from alchemiser_common.inbox.store import INSERT_PAGE_ROWS

NOW = datetime(2025, 3, 4, 15, 45, 6, 789012, tzinfo=UTC)
WAIT_S = 10.0  # upper bound for a thread to reach a point; never reached when things work
BLOCKED_WINDOW_S = 0.3  # a waiting record must still be waiting after this long
RACE_KEYS = INSERT_PAGE_ROWS + 15  # more than one multi-row INSERT page

state_metadata = sa.MetaData()
# No key on purpose: a unit of work applied twice shows up as two rows.
state_table = sa.Table(
    "test_inbox_state",
    state_metadata,
    sa.Column("consumer", sa.String(), nullable=False),
    sa.Column("dedupe_key", sa.String(), nullable=False),
    sa.Column("note", sa.String(), nullable=False),
)

OUTPUTS = (
    StoredOutput(
        topic="portfolio.rebalance.planned.v1",
        key=b"acct-1",
        value=b"\x00\x00\x00\x00\x07\xff\xfe binary avro \x80",
        headers=(
            ("event_type", b"portfolio.rebalance.planned.v1"),
            ("raw", b"\xff\x00\xc3\x28"),  # not UTF-8
            ("empty", b""),
            ("raw", b"second value under a repeated name"),
        ),
    ),
    StoredOutput(topic="workflow.failed.v1", key=None, value=b"", headers=()),
    StoredOutput(topic="x.v1", key=b"", value=b"\x01" * 70_000, headers=(("ünïcode", b"\x00"),)),
)
OTHER_OUTPUTS = (StoredOutput(topic="other.v1", key=b"other", value=b"\xfe\xff other run"),)


def _entry(
    key: str,
    content_hash: str = "hash-a",
    *,
    outputs: tuple[StoredOutput, ...] = (),
    state: UnitOfWork | None = None,
    offset: int = 7,
    event_id: str = "evt-1",
) -> InboxEntry:
    return InboxEntry(
        dedupe_key=key,
        content_hash=content_hash,
        event_id=event_id,
        topic="strategy.signal.generated.v1",
        partition=2,
        offset=offset,
        outputs=outputs,
        state=state,
    )


def _write_state(consumer: str, key: str, note: str) -> UnitOfWork:
    def unit(connection: Connection) -> None:
        connection.execute(
            sa.insert(state_table).values(consumer=consumer, dedupe_key=key, note=note)
        )

    return unit


def _then(*units: UnitOfWork) -> UnitOfWork:
    def unit(connection: Connection) -> None:
        for step in units:
            step(connection)

    return unit


def _never_run(ran: list[str], key: str) -> UnitOfWork:
    def unit(_connection: Connection) -> None:
        ran.append(key)

    return unit


def _state_rows(engine: Engine, consumer: str) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        query = sa.select(state_table.c.dedupe_key, state_table.c.note).where(
            state_table.c.consumer == consumer
        )
        return sorted((row.dedupe_key, row.note) for row in connection.execute(query))


def _output(index: int) -> StoredOutput:
    return StoredOutput(
        topic="race.v1", key=f"k-{index}".encode(), value=b"\x80\xff" + bytes([index])
    )


def _instance_outputs(instance: str, key: str) -> tuple[StoredOutput, ...]:
    return (
        StoredOutput(
            topic="portfolio.rebalance.planned.v1",
            key=key.encode(),
            value=f"{instance}:{key}".encode() + b"\x00\xff\xfe",
            headers=(("instance", instance.encode()), ("raw", b"\xc3\x28")),
        ),
        StoredOutput(topic="audit.v1", key=None, value=instance.encode() * 3),
    )


class _Worker(threading.Thread):
    """Runs ``work`` in a daemon thread; :meth:`outcome` joins (bounded) and re-raises."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._work = work
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.result = self._work()
        except BaseException as err:  # reported by outcome()
            self.error = err
        finally:
            self.done.set()

    def outcome(self) -> Any:
        self.join(WAIT_S * 2)
        assert not self.is_alive(), "worker did not finish in time"
        if self.error is not None:
            raise self.error
        return self.result


def _hold(held: threading.Event, release: threading.Event) -> None:
    held.set()
    if not release.wait(WAIT_S):
        raise TimeoutError("never released")


class InboxStoreContract:
    """Behaviour every :class:`InboxStore` implementation must show (not collected itself)."""

    store_class: type[InboxStore]

    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def fresh_database_url(self) -> str:
        """A database nobody has migrated yet."""
        raise NotImplementedError

    @pytest.fixture
    def unavailable_store(self) -> InboxStore:
        """A store whose database cannot serve a write transaction right now."""
        raise NotImplementedError

    @pytest.fixture
    def engine(self, database_url: str) -> Iterator[Engine]:
        engine = create_engine_from_url(database_url)
        state_metadata.create_all(engine)
        yield engine
        engine.dispose()

    @pytest.fixture
    def store(self, engine: Engine) -> InboxStore:
        store = inbox_store_for(engine, clock=lambda: NOW)
        store.migrate()
        return store

    @pytest.fixture
    def consumer(self) -> str:
        return f"consumer-{uuid.uuid4().hex}"

    def await_blocked_writer(self, engine: Engine) -> None:
        """Return once another session is seen waiting for a lock (when observable)."""

    # -- record: claims ------------------------------------------------------------------
    def test_inbox_store_for_when_engine_given_then_dialect_implementation(
        self, store: InboxStore
    ) -> None:
        assert type(store) is self.store_class

    def test_record_when_key_is_new_then_row_and_outputs_are_committed(
        self, store: InboxStore, consumer: str
    ) -> None:
        claims = store.record(consumer, [_entry("k1", outputs=OUTPUTS)])

        assert claims == {"k1": Claim(ClaimOutcome.NEW)}
        claim = claims["k1"]
        assert (claim.stored_outputs, claim.stored_content_hash) == ((), None)
        assert (claim.stored_published, claim.error) == (False, None)
        record = store.get(consumer, "k1")
        assert record is not None
        assert (record.consumer, record.dedupe_key) == (consumer, "k1")
        assert (record.content_hash, record.event_id) == ("hash-a", "evt-1")
        assert (record.topic, record.partition, record.offset) == (
            "strategy.signal.generated.v1",
            2,
            7,
        )
        assert record.processed_at == NOW
        assert record.outputs == OUTPUTS

    def test_record_when_same_key_and_hash_then_duplicate_with_identical_outputs(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        store.record(consumer, [_entry("k1", outputs=OUTPUTS)])
        ran: list[str] = []

        claims = store.record(
            consumer,
            [
                _entry(
                    "k1",
                    outputs=OTHER_OUTPUTS,
                    state=_never_run(ran, "k1"),
                    offset=9,
                    event_id="evt-2",
                )
            ],
        )

        again = claims["k1"]
        assert again.outcome is ClaimOutcome.DUPLICATE
        assert (again.stored_content_hash, again.stored_published) == ("hash-a", False)
        assert again.error is None
        replayed = again.stored_outputs
        assert replayed == OUTPUTS
        for original, copy in zip(OUTPUTS, replayed, strict=True):
            assert (copy.topic, copy.key, copy.value, copy.headers) == (
                original.topic,
                original.key,
                original.value,
                original.headers,
            )
            assert all(type(value) is bytes for _, value in copy.headers)
        assert ran == [], "a duplicate's unit of work must not run"
        record = store.get(consumer, "k1")
        assert record is not None
        assert (record.event_id, record.offset) == ("evt-1", 7)
        assert record.outputs == OUTPUTS, "a duplicate's outputs must not be stored"
        assert _state_rows(engine, consumer) == []

    def test_mark_published_when_marked_then_duplicate_reports_published_and_replays_nothing(
        self, store: InboxStore, consumer: str
    ) -> None:
        store.record(consumer, [_entry("k1", outputs=OUTPUTS), _entry("k2", outputs=OUTPUTS)])
        store.mark_published(consumer, ["k1"])
        store.mark_published(consumer, [])
        store.mark_published(consumer, ["k1", "never-seen"])  # idempotent, unknown ignored
        store.mark_published(consumer + "-other", ["k2"])  # another consumer's key

        claims = store.record(consumer, [_entry("k1"), _entry("k2")])

        published, unpublished = claims["k1"], claims["k2"]
        assert published.outcome is ClaimOutcome.DUPLICATE
        assert published.stored_published is True
        assert published.stored_outputs == ()
        assert published.stored_content_hash == "hash-a"
        assert unpublished.outcome is ClaimOutcome.DUPLICATE
        assert unpublished.stored_published is False
        assert unpublished.stored_outputs == OUTPUTS
        record = store.get(consumer, "k1")
        assert record is not None and record.outputs == OUTPUTS  # kept, just not replayed

    def test_record_when_new_without_outputs_then_duplicate_replays_nothing(
        self, store: InboxStore, consumer: str
    ) -> None:
        assert store.record(consumer, [_entry("k1")]) == {"k1": Claim(ClaimOutcome.NEW)}

        claims = store.record(consumer, [_entry("k1", outputs=OUTPUTS)])

        assert claims["k1"].outcome is ClaimOutcome.DUPLICATE
        assert claims["k1"].stored_outputs == ()
        record = store.get(consumer, "k1")
        assert record is not None and record.outputs == ()

    def test_record_when_same_key_and_other_hash_then_conflict_and_nothing_changes(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        store.record(consumer, [_entry("k1", outputs=OUTPUTS[:1])])
        before = store.get(consumer, "k1")
        ran: list[str] = []

        claims = store.record(
            consumer,
            [
                _entry(
                    "k1",
                    "hash-b",
                    outputs=OUTPUTS[1:],
                    state=_then(_never_run(ran, "k1"), _write_state(consumer, "k1", "x")),
                    offset=8,
                    event_id="evt-2",
                )
            ],
        )

        other = claims["k1"]
        assert other.outcome is ClaimOutcome.CONFLICT
        assert other.stored_content_hash == "hash-a"
        assert other.stored_outputs == ()
        assert other.error is None
        assert ran == []
        assert store.get(consumer, "k1") == before
        assert before is not None and before.event_id == "evt-1"
        assert _state_rows(engine, consumer) == []

    def test_record_when_batch_mixes_new_duplicate_and_conflict_then_one_claim_each(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        store.record(consumer, [_entry("dup", outputs=OUTPUTS), _entry("conf")])

        claims = store.record(
            consumer,
            [
                _entry("new", outputs=OUTPUTS[1:], state=_write_state(consumer, "new", "n")),
                _entry("dup", state=_write_state(consumer, "dup", "d")),
                _entry("conf", "hash-b", state=_write_state(consumer, "conf", "c")),
            ],
        )

        assert {key: claim.outcome for key, claim in claims.items()} == {
            "new": ClaimOutcome.NEW,
            "dup": ClaimOutcome.DUPLICATE,
            "conf": ClaimOutcome.CONFLICT,
        }
        assert claims["dup"].stored_outputs == OUTPUTS
        assert _state_rows(engine, consumer) == [("new", "n")]
        record = store.get(consumer, "new")
        assert record is not None and record.outputs == OUTPUTS[1:]

    def test_record_when_two_entries_share_a_key_then_usage_error_and_nothing_written(
        self, store: InboxStore, consumer: str
    ) -> None:
        ran: list[str] = []
        entries = [
            _entry("k1", state=_never_run(ran, "first k1")),
            _entry("k2", state=_never_run(ran, "k2")),
            _entry("k1", "hash-b", outputs=OUTPUTS, state=_never_run(ran, "second k1")),
        ]

        with pytest.raises(InboxUsageError):
            store.record(consumer, entries)

        assert ran == []
        assert store.get(consumer, "k1") is None
        assert store.get(consumer, "k2") is None

    def test_record_and_lookup_when_no_entries_then_empty_result(
        self, store: InboxStore, consumer: str
    ) -> None:
        assert store.record(consumer, []) == {}
        assert store.record(consumer, [], before_commit=lambda: pytest.fail("no txn")) == {}
        assert store.lookup(consumer, {}) == {}

    def test_record_when_unit_of_work_writes_state_then_state_commits_with_row(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        seen_inside: list[str] = []

        def unit(connection: Connection) -> None:
            query = sa.select(inbox_table.c.dedupe_key).where(inbox_table.c.consumer == consumer)
            seen_inside.extend(connection.execute(query).scalars())
            _write_state(consumer, "k1", "done")(connection)

        claims = store.record(consumer, [_entry("k1", outputs=OUTPUTS[:1], state=unit)])

        assert claims == {"k1": Claim(ClaimOutcome.NEW)}
        assert seen_inside == ["k1"], "the unit of work runs in the transaction that holds the row"
        assert _state_rows(engine, consumer) == [("k1", "done")]
        record = store.get(consumer, "k1")
        assert record is not None and record.outputs == OUTPUTS[:1]

    def test_record_when_unit_of_work_raises_then_state_failed_and_only_its_entry_rolls_back(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        bug = RuntimeError("handler bug")

        def failing(connection: Connection) -> None:
            _write_state(consumer, "k1", "half")(connection)
            raise bug

        claims = store.record(
            consumer,
            [
                _entry("k0", outputs=OUTPUTS[:1], state=_write_state(consumer, "k0", "ok")),
                _entry("k1", outputs=OUTPUTS, state=failing),
                _entry("k2", outputs=OUTPUTS[1:], state=_write_state(consumer, "k2", "ok")),
            ],
        )

        assert claims["k1"].outcome is ClaimOutcome.STATE_FAILED
        assert claims["k1"].error is bug
        assert claims["k1"].stored_outputs == ()
        assert (claims["k0"], claims["k2"]) == (Claim(ClaimOutcome.NEW), Claim(ClaimOutcome.NEW))
        assert store.get(consumer, "k1") is None
        assert _state_rows(engine, consumer) == [("k0", "ok"), ("k2", "ok")]
        kept = store.get(consumer, "k0"), store.get(consumer, "k2")
        assert kept[0] is not None and kept[0].outputs == OUTPUTS[:1]
        assert kept[1] is not None and kept[1].outputs == OUTPUTS[1:]
        assert store.lookup(consumer, {"k1": "hash-a"}) == {}
        retry = store.record(consumer, [_entry("k1", state=_write_state(consumer, "k1", "r"))])
        assert retry == {"k1": Claim(ClaimOutcome.NEW)}

    def test_record_when_unit_of_work_hits_database_error_then_state_failed_and_others_commit(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        def broken(connection: Connection) -> None:
            _write_state(consumer, "k1", "half")(connection)
            connection.execute(sa.text("INSERT INTO no_such_table VALUES (1)"))

        claims = store.record(
            consumer,
            [
                _entry("k1", outputs=OUTPUTS, state=broken),
                _entry("k2", outputs=OUTPUTS[:1], state=_write_state(consumer, "k2", "ok")),
            ],
        )

        assert claims["k1"].outcome is ClaimOutcome.STATE_FAILED
        assert isinstance(claims["k1"].error, sa_exc.DBAPIError)
        assert claims["k2"] == Claim(ClaimOutcome.NEW)
        assert store.get(consumer, "k1") is None
        assert _state_rows(engine, consumer) == [("k2", "ok")]
        record = store.get(consumer, "k2")
        assert record is not None and record.outputs == OUTPUTS[:1]

    @pytest.mark.parametrize(
        "transient",
        [
            psycopg.errors.DeadlockDetected("deadlock detected"),
            sa_exc.TimeoutError("QueuePool limit reached"),
        ],
        ids=["deadlock", "pool-timeout"],
    )
    def test_record_when_unit_of_work_raises_transient_error_then_unavailable_and_nothing_commits(
        self, store: InboxStore, engine: Engine, consumer: str, transient: Exception
    ) -> None:
        def flaky(connection: Connection) -> None:
            _write_state(consumer, "k2", "half")(connection)
            raise transient

        entries = [
            _entry("k1", outputs=OUTPUTS, state=_write_state(consumer, "k1", "ok")),
            _entry("k2", outputs=OUTPUTS, state=flaky),
        ]

        with pytest.raises(InboxUnavailableError) as caught:
            store.record(consumer, entries)

        assert isinstance(caught.value, TransientError)
        assert caught.value.__cause__ is transient
        assert store.get(consumer, "k1") is None
        assert store.get(consumer, "k2") is None
        assert _state_rows(engine, consumer) == []

    def test_record_when_before_commit_raises_then_everything_rolls_back_and_error_propagates(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        entries = [
            _entry("k1", outputs=OUTPUTS, state=_write_state(consumer, "k1", "a")),
            _entry("k2", outputs=OUTPUTS[:1], state=_write_state(consumer, "k2", "b")),
        ]

        def crash() -> None:
            raise RuntimeError("crash before commit")

        with pytest.raises(RuntimeError, match="crash before commit"):
            store.record(consumer, entries, before_commit=crash)

        assert store.get(consumer, "k1") is None
        assert store.get(consumer, "k2") is None
        assert _state_rows(engine, consumer) == []
        assert store.record(consumer, entries) == {
            "k1": Claim(ClaimOutcome.NEW),
            "k2": Claim(ClaimOutcome.NEW),
        }

    def test_record_when_consumers_differ_then_claims_are_independent(
        self, store: InboxStore, consumer: str
    ) -> None:
        store.record(consumer, [_entry("k1", outputs=OUTPUTS[:1])])

        claims = store.record(consumer + "-other", [_entry("k1", "hash-b", outputs=OUTPUTS[1:2])])

        assert claims == {"k1": Claim(ClaimOutcome.NEW)}
        mine, theirs = store.get(consumer, "k1"), store.get(consumer + "-other", "k1")
        assert mine is not None and theirs is not None
        assert (mine.content_hash, mine.outputs) == ("hash-a", OUTPUTS[:1])
        assert (theirs.content_hash, theirs.outputs) == ("hash-b", OUTPUTS[1:2])
        assert store.lookup(consumer + "-third", {"k1": "hash-a"}) == {}

    def test_get_when_key_unknown_then_none(self, store: InboxStore, consumer: str) -> None:
        assert store.get(consumer, "never-seen") is None

    # -- lookup --------------------------------------------------------------------------
    def test_lookup_when_keys_recorded_then_only_existing_keys_by_hash(
        self, store: InboxStore, consumer: str
    ) -> None:
        store.record(
            consumer,
            [
                _entry("dup", outputs=OUTPUTS),
                _entry("empty"),
                _entry("conf", outputs=OUTPUTS[:1]),
                _entry("pub", outputs=OUTPUTS),
            ],
        )
        store.mark_published(consumer, ["pub"])

        claims = store.lookup(
            consumer,
            {"dup": "hash-a", "empty": "hash-a", "conf": "hash-b", "pub": "hash-a", "new": "h"},
        )

        assert set(claims) == {"dup", "empty", "conf", "pub"}
        assert claims["dup"] == Claim(
            ClaimOutcome.DUPLICATE, stored_outputs=OUTPUTS, stored_content_hash="hash-a"
        )
        assert claims["empty"] == Claim(ClaimOutcome.DUPLICATE, stored_content_hash="hash-a")
        assert claims["conf"] == Claim(ClaimOutcome.CONFLICT, stored_content_hash="hash-a")
        assert claims["pub"] == Claim(
            ClaimOutcome.DUPLICATE, stored_content_hash="hash-a", stored_published=True
        )

    def test_lookup_when_keys_unknown_then_empty_and_nothing_claimed(
        self, store: InboxStore, consumer: str
    ) -> None:
        assert store.lookup(consumer, {"k1": "hash-a", "k2": "hash-b"}) == {}

        assert store.record(consumer, [_entry("k1")]) == {"k1": Claim(ClaimOutcome.NEW)}
        assert store.get(consumer, "k2") is None

    def test_lookup_when_record_not_yet_committed_then_key_absent_without_waiting(
        self, store: InboxStore, consumer: str
    ) -> None:
        held, release = threading.Event(), threading.Event()
        first = _Worker(
            lambda: store.record(
                consumer,
                [_entry("k1", outputs=OUTPUTS)],
                before_commit=lambda: _hold(held, release),
            )
        )
        first.start()
        try:
            assert held.wait(WAIT_S)
            reader = _Worker(
                lambda: (store.lookup(consumer, {"k1": "hash-a"}), store.get(consumer, "k1"))
            )
            reader.start()
            assert reader.done.wait(WAIT_S), "a lookup must not wait for a writer"
            assert not release.is_set()
            assert reader.outcome() == ({}, None)
        finally:
            release.set()
        assert first.outcome() == {"k1": Claim(ClaimOutcome.NEW)}
        assert store.lookup(consumer, {"k1": "hash-a"})["k1"].stored_outputs == OUTPUTS

    # -- concurrency -------------------------------------------------------------------
    @pytest.mark.parametrize("held_in", ["unit of work", "before_commit"])
    def test_record_when_claimed_concurrently_then_second_waits_and_is_duplicate(
        self, store: InboxStore, engine: Engine, consumer: str, held_in: str
    ) -> None:
        held, release, second_started = threading.Event(), threading.Event(), threading.Event()

        def hold_unit(_connection: Connection) -> None:
            _hold(held, release)

        first_state = _write_state(consumer, "k1", "first")
        first = _Worker(
            lambda: store.record(
                consumer,
                [
                    _entry(
                        "k1",
                        outputs=OUTPUTS,
                        state=_then(first_state, hold_unit)
                        if held_in == "unit of work"
                        else first_state,
                    )
                ],
                before_commit=(lambda: _hold(held, release))
                if held_in == "before_commit"
                else None,
            )
        )

        def second_record() -> tuple[dict[str, Claim], bool]:
            second_started.set()
            entry = _entry(
                "k1",
                outputs=OTHER_OUTPUTS,
                state=_write_state(consumer, "k1", "second"),
                event_id="evt-2",
            )
            claims = store.record(consumer, [entry])
            return claims, release.is_set()

        second = _Worker(second_record)
        first.start()
        try:
            assert held.wait(WAIT_S)
            second.start()
            assert second_started.wait(WAIT_S)
            self.await_blocked_writer(engine)
            blocked = not second.done.wait(BLOCKED_WINDOW_S)
        finally:
            release.set()
        first_claims = first.outcome()
        second_claims, returned_after_release = second.outcome()

        assert blocked, "the second record must wait for the first transaction"
        assert returned_after_release, "the second record returned while the first was open"
        assert first_claims == {"k1": Claim(ClaimOutcome.NEW)}
        assert second_claims == {
            "k1": Claim(
                ClaimOutcome.DUPLICATE, stored_outputs=OUTPUTS, stored_content_hash="hash-a"
            )
        }
        record = store.get(consumer, "k1")
        assert record is not None and (record.event_id, record.outputs) == ("evt-1", OUTPUTS)
        assert _state_rows(engine, consumer) == [("k1", "first")]

    def test_record_when_first_rolls_back_then_waiting_record_is_new(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        held, release = threading.Event(), threading.Event()

        def crash_before_commit() -> None:
            _hold(held, release)
            raise RuntimeError("crash before commit")

        first = _Worker(
            lambda: store.record(
                consumer,
                [_entry("k1", outputs=OUTPUTS, state=_write_state(consumer, "k1", "first"))],
                before_commit=crash_before_commit,
            )
        )
        second = _Worker(
            lambda: store.record(
                consumer,
                [
                    _entry(
                        "k1",
                        outputs=OTHER_OUTPUTS,
                        state=_write_state(consumer, "k1", "second"),
                        event_id="evt-2",
                    )
                ],
            )
        )
        first.start()
        try:
            assert held.wait(WAIT_S)
            second.start()
            self.await_blocked_writer(engine)
            blocked = not second.done.wait(BLOCKED_WINDOW_S)
        finally:
            release.set()

        with pytest.raises(RuntimeError, match="crash before commit"):
            first.outcome()
        assert second.outcome() == {"k1": Claim(ClaimOutcome.NEW)}
        assert blocked, "the second record must wait for the first transaction"
        record = store.get(consumer, "k1")
        assert record is not None
        assert (record.event_id, record.outputs) == ("evt-2", OTHER_OUTPUTS)
        assert _state_rows(engine, consumer) == [("k1", "second")]

    def test_record_when_many_threads_race_then_exactly_one_is_new(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        workers = 6
        barrier = threading.Barrier(workers)

        def race(index: int) -> Claim:
            barrier.wait(WAIT_S)
            entry = _entry(
                "k1", outputs=(_output(index),), state=_write_state(consumer, "k1", f"w{index}")
            )
            return store.record(consumer, [entry])["k1"]

        threads = [_Worker(partial(race, index)) for index in range(workers)]
        for thread in threads:
            thread.start()
        claims: list[Claim] = [thread.outcome() for thread in threads]

        winners = [i for i, claim in enumerate(claims) if claim.outcome is ClaimOutcome.NEW]
        assert len(winners) == 1, claims
        winner = winners[0]
        for index, claim in enumerate(claims):
            if index != winner:
                assert claim.outcome is ClaimOutcome.DUPLICATE
                assert claim.stored_outputs == (_output(winner),)
        record = store.get(consumer, "k1")
        assert record is not None and record.outputs == (_output(winner),)
        assert _state_rows(engine, consumer) == [("k1", f"w{winner}")]

    def test_record_when_two_instances_record_same_batch_at_once_then_each_key_new_exactly_once(
        self, store: InboxStore, engine: Engine, database_url: str, consumer: str
    ) -> None:
        keys = [f"k{number:03d}" for number in range(RACE_KEYS)]
        barrier = threading.Barrier(2)

        def instance(name: str) -> dict[str, Claim]:
            own_engine = create_engine_from_url(database_url)
            try:
                own_store = inbox_store_for(own_engine, clock=lambda: NOW)
                entries = [
                    _entry(
                        key,
                        f"hash-{key}",
                        outputs=_instance_outputs(name, key),
                        state=_write_state(consumer, key, name),
                        event_id=f"evt-{key}",
                    )
                    for key in keys
                ]
                own_store.ping()  # connected before the start line
                barrier.wait(WAIT_S)
                return own_store.record(consumer, entries)
            finally:
                own_engine.dispose()

        workers = {name: _Worker(partial(instance, name)) for name in ("a", "b")}
        for worker in workers.values():
            worker.start()
        claims = {name: worker.outcome() for name, worker in workers.items()}

        assert set(claims["a"]) == set(claims["b"]) == set(keys)
        winners: dict[str, str] = {}
        for key in keys:
            a, b = claims["a"][key], claims["b"][key]
            assert {a.outcome, b.outcome} == {ClaimOutcome.NEW, ClaimOutcome.DUPLICATE}, key
            winner, loser = ("a", b) if a.outcome is ClaimOutcome.NEW else ("b", a)
            winners[key] = winner
            assert loser.stored_outputs == _instance_outputs(winner, key), key
            assert loser.stored_content_hash == f"hash-{key}"
            record = store.get(consumer, key)
            assert record is not None and record.outputs == _instance_outputs(winner, key)
        assert _state_rows(engine, consumer) == [(key, winners[key]) for key in keys]

    # -- lifecycle -----------------------------------------------------------------------
    def test_migrate_when_run_twice_then_second_is_noop(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        store.record(consumer, [_entry("k1", outputs=OUTPUTS)])

        store.migrate()

        with engine.connect() as connection:
            versions = connection.execute(
                sa.text(f"SELECT version_num FROM {INBOX_VERSION_TABLE}")
            ).all()
        assert [row.version_num for row in versions] == ["inbox_0001"]
        record = store.get(consumer, "k1")
        assert record is not None and record.outputs == OUTPUTS

    def test_migrate_when_several_callers_start_together_then_all_succeed(
        self, fresh_database_url: str
    ) -> None:
        engine = create_engine_from_url(fresh_database_url)
        try:
            store = inbox_store_for(engine)
            barrier = threading.Barrier(4)

            def migrate() -> None:
                barrier.wait(WAIT_S)
                store.migrate()

            threads = [_Worker(migrate) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.outcome()
            store.ping()
        finally:
            engine.dispose()

    def test_migrate_when_done_then_database_matches_table_metadata(
        self, store: InboxStore, engine: Engine
    ) -> None:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_name": lambda name, type_, _parent: (
                        type_ != "table" or name in metadata.tables
                    ),
                },
            )
            differences = compare_metadata(context, metadata)
        assert differences == []

    def test_ping_when_migrated_then_succeeds(self, store: InboxStore) -> None:
        store.ping()

    def test_ping_when_not_migrated_then_store_error(self, fresh_database_url: str) -> None:
        engine = create_engine_from_url(fresh_database_url)
        try:
            with pytest.raises(InboxStoreError):
                inbox_store_for(engine).ping()
        finally:
            engine.dispose()

    def test_record_when_database_unavailable_then_transient_error(
        self, unavailable_store: InboxStore, consumer: str
    ) -> None:
        ran: list[str] = []

        with pytest.raises(InboxUnavailableError) as caught:
            unavailable_store.record(
                consumer,
                [_entry("k1", outputs=OUTPUTS, state=_never_run(ran, "k1"))],
                before_commit=lambda: ran.append("before_commit"),
            )

        assert isinstance(caught.value, TransientError)
        assert caught.value.__cause__ is not None
        assert ran == [], "nothing may run without a transaction"

    def test_mark_published_when_database_unavailable_then_transient_error(
        self, unavailable_store: InboxStore, consumer: str
    ) -> None:
        with pytest.raises(InboxUnavailableError) as caught:
            unavailable_store.mark_published(consumer, ["k1"])
        assert isinstance(caught.value, TransientError)
        assert caught.value.__cause__ is not None


@contextmanager
def _sqlite_write_lock(sqlite_url: str) -> Iterator[None]:
    """Another writer holds the database's write lock for the duration."""
    holder = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


class TestSqliteInboxStore(InboxStoreContract):
    """The contract on SQLite (the embedded default)."""

    store_class = SqliteInboxStore

    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url

    @pytest.fixture
    def fresh_database_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'fresh' / 'fresh.sqlite'}"

    @pytest.fixture
    def impatient_store(self, store: InboxStore, sqlite_url: str) -> Iterator[InboxStore]:
        """A store on the migrated database whose busy timeout is 0.2 s."""
        impatient = create_engine_from_url(sqlite_url, sqlite_busy_timeout_seconds=0.2)
        try:
            yield inbox_store_for(impatient)
        finally:
            impatient.dispose()

    @pytest.fixture
    def unavailable_store(
        self, impatient_store: InboxStore, sqlite_url: str
    ) -> Iterator[InboxStore]:
        """Another writer holds the write lock longer than the store's busy timeout."""
        with _sqlite_write_lock(sqlite_url):
            yield impatient_store

    def test_get_ping_and_lookup_when_writer_holds_lock_then_answer_without_waiting(
        self, store: InboxStore, impatient_store: InboxStore, sqlite_url: str, consumer: str
    ) -> None:
        store.record(consumer, [_entry("k1", outputs=OUTPUTS)])

        with _sqlite_write_lock(sqlite_url):
            impatient_store.ping()
            assert impatient_store.get(consumer, "unknown") is None
            record = impatient_store.get(consumer, "k1")
            assert record is not None and record.outputs == OUTPUTS
            assert impatient_store.lookup(consumer, {"k1": "hash-a", "k2": "hash-a"}) == {
                "k1": Claim(
                    ClaimOutcome.DUPLICATE, stored_outputs=OUTPUTS, stored_content_hash="hash-a"
                )
            }
            with pytest.raises(InboxUnavailableError):  # the lock really is held
                impatient_store.record(consumer, [_entry("k2")])

    def test_sqlite_store_when_engine_not_from_helper_then_configuration_error(
        self, sqlite_url: str
    ) -> None:
        plain = sa.create_engine(sqlite_url.replace("/db/", "/"))
        try:
            with pytest.raises(ConfigurationError):
                inbox_store_for(plain)
            with pytest.raises(ConfigurationError):
                SqliteInboxStore(plain)
        finally:
            plain.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.integration
class TestPostgresInboxStore(InboxStoreContract):
    """The contract on PostgreSQL (psycopg 3)."""

    store_class = PostgresInboxStore

    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture
    def fresh_database_url(self, postgres_server_url: str) -> Iterator[str]:
        server = make_url(postgres_server_url)
        name = f"alchemiser_fresh_{uuid.uuid4().hex[:16]}"
        admin_url = server.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    @pytest.fixture
    def unavailable_store(self, postgres_server_url: str) -> Iterator[InboxStore]:
        """Nothing listens on the port: connection refused."""
        url = make_url(postgres_server_url).set(host="127.0.0.1", port=_free_port())
        engine = create_engine_from_url(url)
        try:
            yield inbox_store_for(engine)
        finally:
            engine.dispose()

    def await_blocked_writer(self, engine: Engine) -> None:
        """Poll ``pg_stat_activity`` until a session of this database waits on a lock."""
        query = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        deadline = time.monotonic() + WAIT_S
        with engine.connect() as connection:
            while connection.execute(query).scalar_one() == 0:
                connection.rollback()  # a fresh snapshot of the statistics
                assert time.monotonic() < deadline, "no session ever waited on a lock"
                threading.Event().wait(0.01)

    def test_ping_lookup_and_get_when_server_unreachable_then_transient_error(
        self, unavailable_store: InboxStore, consumer: str
    ) -> None:
        with pytest.raises(InboxUnavailableError):
            unavailable_store.ping()
        with pytest.raises(InboxUnavailableError):
            unavailable_store.lookup(consumer, {"k1": "hash-a"})
        with pytest.raises(InboxUnavailableError):
            unavailable_store.get(consumer, "k1")

    @pytest.mark.parametrize("dies_before", ["state write", "savepoint release", "commit"])
    def test_record_when_session_killed_mid_use_then_transient_error_and_rollback(
        self, store: InboxStore, engine: Engine, consumer: str, dies_before: str
    ) -> None:
        pids: list[int] = []

        def kill() -> None:
            with engine.connect() as admin:
                killed = admin.execute(
                    sa.select(sa.func.pg_terminate_backend(pids[0], 5000))
                ).scalar_one()
            assert killed is True

        def unit(connection: Connection) -> None:
            pids.append(connection.execute(sa.select(sa.func.pg_backend_pid())).scalar_one())
            _write_state(consumer, "k1", "before")(connection)
            if dies_before != "commit":
                kill()
            if dies_before == "state write":
                _write_state(consumer, "k1", "lost")(connection)

        entries = [
            _entry("k1", outputs=OUTPUTS[:1], state=unit),
            _entry("k2", outputs=OUTPUTS[1:], state=_write_state(consumer, "k2", "other")),
        ]

        with pytest.raises(InboxUnavailableError) as caught:
            store.record(consumer, entries, before_commit=kill if dies_before == "commit" else None)

        assert isinstance(caught.value, TransientError)
        assert pids, "the unit of work never ran"
        assert store.get(consumer, "k1") is None
        assert store.get(consumer, "k2") is None
        assert _state_rows(engine, consumer) == []
        retry = store.record(consumer, [_entry("k1"), _entry("k2")])
        assert retry == {"k1": Claim(ClaimOutcome.NEW), "k2": Claim(ClaimOutcome.NEW)}

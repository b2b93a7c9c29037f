"""The inbox store contract, run against SQLite and (integration) PostgreSQL."""

from __future__ import annotations

import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg import sql
from sqlalchemy.engine import Engine, make_url

from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.inbox import (
    INBOX_VERSION_TABLE,
    ClaimOutcome,
    InboxStore,
    InboxStoreError,
    InboxUnavailableError,
    InboxUsageError,
    PostgresInboxStore,
    SqliteInboxStore,
    StoredOutput,
    TransientError,
    inbox_store_for,
    metadata,
)

NOW = datetime(2025, 3, 4, 15, 45, 6, 789012, tzinfo=UTC)
WAIT_S = 10.0  # upper bound for a thread to reach a point; never reached when things work

state_metadata = sa.MetaData()
state_table = sa.Table(
    "test_inbox_state",
    state_metadata,
    sa.Column("consumer", sa.String(), primary_key=True),
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


def _claim_args(offset: int = 7, event_id: str = "evt-1") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "topic": "strategy.signal.generated.v1",
        "partition": 2,
        "offset": offset,
    }


def _state_notes(engine: Engine, consumer: str) -> list[str]:
    with engine.connect() as connection:
        query = sa.select(state_table.c.note).where(state_table.c.consumer == consumer)
        return list(connection.execute(query).scalars())


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
        """A store whose database cannot serve a transaction right now."""
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

    # -- claims --------------------------------------------------------------------------
    def test_inbox_store_for_when_engine_given_then_dialect_implementation(
        self, store: InboxStore
    ) -> None:
        assert type(store) is self.store_class

    def test_transaction_when_key_is_new_then_row_and_outputs_are_committed(
        self, store: InboxStore, consumer: str
    ) -> None:
        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx:
            assert tx.outcome is ClaimOutcome.NEW
            assert tx.stored_outputs == ()
            assert tx.stored_content_hash is None
            tx.record_outputs(OUTPUTS[:1])
            tx.record_outputs(OUTPUTS[1:])
            assert tx.recorded_outputs == OUTPUTS

        record = store.get(consumer, "k1")
        assert record is not None
        assert (record.content_hash, record.event_id) == ("hash-a", "evt-1")
        assert (record.topic, record.partition, record.offset) == (
            "strategy.signal.generated.v1",
            2,
            7,
        )
        assert record.processed_at == NOW
        assert record.outputs == OUTPUTS

    def test_transaction_when_same_key_and_hash_then_duplicate_with_identical_outputs(
        self, store: InboxStore, consumer: str
    ) -> None:
        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx:
            tx.record_outputs(OUTPUTS)

        with store.transaction(consumer, "k1", "hash-a", **_claim_args(9, "evt-2")) as again:
            assert again.outcome is ClaimOutcome.DUPLICATE
            assert again.stored_content_hash == "hash-a"
            assert again.stored_event_id == "evt-1"
            replayed = again.stored_outputs

        assert replayed == OUTPUTS
        for original, copy in zip(OUTPUTS, replayed, strict=True):
            assert (copy.key, copy.value, copy.headers) == (
                original.key,
                original.value,
                original.headers,
            )
            assert all(type(value) is bytes for _, value in copy.headers)
        record = store.get(consumer, "k1")
        assert record is not None
        assert (record.event_id, record.offset) == ("evt-1", 7)

    def test_mark_published_when_marked_then_duplicate_reports_published(
        self, store: InboxStore, consumer: str
    ) -> None:
        for key in ("k1", "k2"):
            with store.transaction(consumer, key, "hash-a", **_claim_args()) as tx:
                tx.record_outputs(OUTPUTS)
        store.mark_published(consumer, ["k1"])
        store.mark_published(consumer, [])

        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as published:
            assert published.outcome is ClaimOutcome.DUPLICATE
            assert published.stored_published is True
        with store.transaction(consumer, "k2", "hash-a", **_claim_args()) as unpublished:
            assert unpublished.outcome is ClaimOutcome.DUPLICATE
            assert unpublished.stored_published is False
            assert unpublished.stored_outputs == OUTPUTS

    def test_transaction_when_new_without_outputs_then_duplicate_replays_nothing(
        self, store: InboxStore, consumer: str
    ) -> None:
        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx:
            assert tx.outcome is ClaimOutcome.NEW

        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as again:
            assert again.outcome is ClaimOutcome.DUPLICATE
            assert again.stored_outputs == ()

    def test_transaction_when_same_key_and_other_hash_then_conflict_and_nothing_changes(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx:
            tx.record_outputs(OUTPUTS[:1])
        before = store.get(consumer, "k1")

        with store.transaction(consumer, "k1", "hash-b", **_claim_args(8, "evt-2")) as other:
            assert other.outcome is ClaimOutcome.CONFLICT
            assert other.stored_content_hash == "hash-a"
            assert other.stored_event_id == "evt-1"
            assert other.stored_outputs == ()
            with pytest.raises(InboxUsageError):
                other.record_outputs(OUTPUTS[1:])
            other.connection.execute(sa.insert(state_table).values(consumer=consumer, note="x"))

        assert store.get(consumer, "k1") == before
        assert _state_notes(engine, consumer) == []

    def test_record_outputs_when_duplicate_then_usage_error(
        self, store: InboxStore, consumer: str
    ) -> None:
        with store.transaction(consumer, "k1", "hash-a", **_claim_args()):
            pass
        with (
            store.transaction(consumer, "k1", "hash-a", **_claim_args()) as again,
            pytest.raises(InboxUsageError),
        ):
            again.record_outputs(OUTPUTS)
        record = store.get(consumer, "k1")
        assert record is not None
        assert record.outputs == ()

    def test_record_outputs_when_transaction_ended_then_usage_error(
        self, store: InboxStore, consumer: str
    ) -> None:
        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx:
            pass
        with pytest.raises(InboxUsageError):
            tx.record_outputs(OUTPUTS)

    def test_transaction_when_new_with_state_write_then_state_commits_with_row(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx:
            tx.connection.execute(sa.insert(state_table).values(consumer=consumer, note="done"))
            tx.record_outputs(OUTPUTS[:1])

        assert _state_notes(engine, consumer) == ["done"]
        assert store.get(consumer, "k1") is not None

    def test_transaction_when_body_raises_then_row_state_and_outputs_roll_back(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        with (
            pytest.raises(RuntimeError, match="handler bug"),
            store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx,
        ):
            tx.connection.execute(sa.insert(state_table).values(consumer=consumer, note="half"))
            tx.record_outputs(OUTPUTS)
            raise RuntimeError("handler bug")

        assert store.get(consumer, "k1") is None
        assert _state_notes(engine, consumer) == []
        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as retry:
            assert retry.outcome is ClaimOutcome.NEW

    def test_transaction_when_consumers_differ_then_claims_are_independent(
        self, store: InboxStore, consumer: str
    ) -> None:
        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as first:
            first.record_outputs(OUTPUTS[:1])
        with store.transaction(consumer + "-other", "k1", "hash-b", **_claim_args()) as second:
            assert second.outcome is ClaimOutcome.NEW
            second.record_outputs(OUTPUTS[1:2])

        mine, theirs = store.get(consumer, "k1"), store.get(consumer + "-other", "k1")
        assert mine is not None and theirs is not None
        assert (mine.content_hash, mine.outputs) == ("hash-a", OUTPUTS[:1])
        assert (theirs.content_hash, theirs.outputs) == ("hash-b", OUTPUTS[1:2])

    def test_get_when_key_unknown_then_none(self, store: InboxStore, consumer: str) -> None:
        assert store.get(consumer, "never-seen") is None

    # -- concurrency -------------------------------------------------------------------
    def test_transaction_when_claimed_concurrently_then_second_waits_and_is_duplicate(
        self, store: InboxStore, consumer: str
    ) -> None:
        claimed, release, second_done = threading.Event(), threading.Event(), threading.Event()
        results: dict[str, Any] = {}

        def first() -> None:
            with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx:
                results["first"] = tx.outcome
                tx.record_outputs(OUTPUTS)
                claimed.set()
                release.wait(WAIT_S)

        def second() -> None:
            with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx:
                results["second"] = (tx.outcome, tx.stored_outputs)
            second_done.set()

        first_thread = threading.Thread(target=first)
        first_thread.start()
        assert claimed.wait(WAIT_S)
        second_thread = threading.Thread(target=second)
        second_thread.start()
        blocked = not second_done.wait(0.5)
        release.set()
        first_thread.join(WAIT_S)
        second_thread.join(WAIT_S)

        assert blocked, "the second claim must wait for the first transaction"
        assert results["first"] is ClaimOutcome.NEW
        assert results["second"] == (ClaimOutcome.DUPLICATE, OUTPUTS)

    def test_transaction_when_first_claimant_rolls_back_then_waiting_claimant_is_new(
        self, store: InboxStore, consumer: str
    ) -> None:
        claimed, release = threading.Event(), threading.Event()
        results: dict[str, Any] = {}

        def first() -> None:
            try:
                with store.transaction(consumer, "k1", "hash-a", **_claim_args()):
                    claimed.set()
                    release.wait(WAIT_S)
                    raise RuntimeError("crash before commit")
            except RuntimeError:
                results["first"] = "rolled back"

        def second() -> None:
            with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx:
                results["second"] = tx.outcome

        first_thread = threading.Thread(target=first)
        first_thread.start()
        assert claimed.wait(WAIT_S)
        second_thread = threading.Thread(target=second)
        second_thread.start()
        second_thread.join(0.3)
        release.set()
        first_thread.join(WAIT_S)
        second_thread.join(WAIT_S)

        assert results == {"first": "rolled back", "second": ClaimOutcome.NEW}

    def test_transaction_when_many_threads_race_then_exactly_one_is_new(
        self, store: InboxStore, consumer: str
    ) -> None:
        workers = 6
        barrier = threading.Barrier(workers)
        outcomes: list[ClaimOutcome] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def claim(index: int) -> None:
            try:
                barrier.wait(WAIT_S)
                with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx:
                    if tx.outcome is ClaimOutcome.NEW:
                        tx.record_outputs(OUTPUTS[index % len(OUTPUTS) :][:1])
                    with lock:
                        outcomes.append(tx.outcome)
            except BaseException as err:  # pragma: no cover - reported below
                errors.append(err)

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S * 2)

        assert errors == []
        assert sorted(outcomes) == sorted(
            [ClaimOutcome.NEW] + [ClaimOutcome.DUPLICATE] * (workers - 1)
        )
        record = store.get(consumer, "k1")
        assert record is not None and len(record.outputs) == 1

    # -- lifecycle -----------------------------------------------------------------------
    def test_migrate_when_run_twice_then_second_is_noop(
        self, store: InboxStore, engine: Engine, consumer: str
    ) -> None:
        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx:
            tx.record_outputs(OUTPUTS)

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
            errors: list[BaseException] = []
            barrier = threading.Barrier(4)

            def migrate() -> None:
                try:
                    barrier.wait(WAIT_S)
                    store.migrate()
                except BaseException as err:  # pragma: no cover - reported below
                    errors.append(err)

            threads = [threading.Thread(target=migrate) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(WAIT_S * 3)
            assert errors == []
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

    def test_transaction_when_database_unavailable_then_transient_error(
        self, unavailable_store: InboxStore, consumer: str
    ) -> None:
        with (
            pytest.raises(InboxUnavailableError) as caught,
            unavailable_store.transaction(consumer, "k1", "hash-a", **_claim_args()),
        ):
            pytest.fail("the body must not run without a claim")
        assert isinstance(caught.value, TransientError)
        assert caught.value.__cause__ is not None


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
    def unavailable_store(self, store: InboxStore, sqlite_url: str) -> Iterator[InboxStore]:
        """Another writer holds the write lock longer than the store's busy timeout."""
        impatient = create_engine_from_url(sqlite_url, sqlite_busy_timeout_seconds=0.2)
        holder = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield inbox_store_for(impatient)
        finally:
            holder.rollback()
            holder.close()
            impatient.dispose()

    def test_get_and_ping_when_writer_holds_lock_then_answer_without_waiting(
        self, store: InboxStore, unavailable_store: InboxStore, consumer: str
    ) -> None:
        unavailable_store.ping()
        assert unavailable_store.get(consumer, "k1") is None

    def test_sqlite_store_when_engine_not_from_helper_then_configuration_error(
        self, sqlite_url: str
    ) -> None:
        plain = sa.create_engine(sqlite_url.replace("/db/", "/"))
        with pytest.raises(ConfigurationError):
            inbox_store_for(plain)


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

    def test_ping_when_server_unreachable_then_transient_error(
        self, unavailable_store: InboxStore
    ) -> None:
        with pytest.raises(InboxUnavailableError):
            unavailable_store.ping()

    @pytest.mark.parametrize("dies_before", ["state write", "commit"])
    def test_transaction_when_session_killed_mid_use_then_transient_error_and_rollback(
        self, store: InboxStore, engine: Engine, consumer: str, dies_before: str
    ) -> None:
        with (
            pytest.raises(InboxUnavailableError),
            store.transaction(consumer, "k1", "hash-a", **_claim_args()) as tx,
        ):
            tx.record_outputs(OUTPUTS[:1])
            pid = tx.connection.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
            with engine.connect() as admin:
                killed = admin.execute(
                    sa.select(sa.func.pg_terminate_backend(pid, 5000))
                ).scalar_one()
            assert killed is True
            if dies_before == "state write":
                tx.connection.execute(sa.insert(state_table).values(consumer=consumer, note="lost"))

        assert store.get(consumer, "k1") is None
        assert _state_notes(engine, consumer) == []
        with store.transaction(consumer, "k1", "hash-a", **_claim_args()) as retry:
            assert retry.outcome is ClaimOutcome.NEW

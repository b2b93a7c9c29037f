"""The inbox store: one database transaction per input, duplicates found by the primary key.

Usage by the processing loop, per decoded input record::

    with store.transaction(consumer, dedupe_key, content_hash, event_id=..., topic=...,
                           partition=..., offset=...) as tx:
        if tx.outcome is ClaimOutcome.DUPLICATE:
            re-emit tx.stored_outputs          # byte for byte, in order
        elif tx.outcome is ClaimOutcome.CONFLICT:
            dead-letter the input              # tx.stored_content_hash is the first input's
        else:                                  # NEW
            run the handler with tx.connection, then tx.record_outputs(outputs)

The claim is ``INSERT ... ON CONFLICT DO NOTHING`` on ``(consumer, dedupe_key)``: the primary
key decides, never a read-then-write. A concurrent claim of the same key waits for the first
transaction (PostgreSQL: on the index entry; SQLite: on ``BEGIN IMMEDIATE``) and then sees
its committed row (DUPLICATE) or, if it rolled back, claims the key itself (NEW).

Leaving the block normally commits a NEW claim (inbox row, the handler's state writes and the
stored outputs together); DUPLICATE and CONFLICT write nothing. Leaving it with an exception
rolls everything back, so the input will be handled again. Transient database failures, in
the store or in state writes made through ``tx.connection``, surface as
:class:`InboxUnavailableError`; other database failures of the store as
:class:`InboxStoreError`; a handler's own exceptions pass through unchanged.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from alchemiser_common.db import (
    is_transient_database_error,
    sqlite_engine_is_configured,
    upgrade_to_head,
)
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.inbox.batch import InboxBatch
from alchemiser_common.inbox.exceptions import InboxUnavailableError
from alchemiser_common.inbox.model import ClaimOutcome, InboxRecord, StoredOutput
from alchemiser_common.inbox.schema import (
    decode_headers,
    inbox_output_table,
    inbox_table,
    metadata,
)
from alchemiser_common.inbox.transaction import (
    DRIVER_ERRORS,
    InboxTransaction,
    describe_error,
    translated_errors,
)

__all__ = [
    "INBOX_VERSION_TABLE",
    "InboxStore",
    "PostgresInboxStore",
    "SqliteInboxStore",
    "inbox_store_for",
]

INBOX_VERSION_TABLE = "alembic_version_inbox"
"""Alembic version table of the inbox migrations (services keep their own trees and tables)."""

_MIGRATIONS = Path(__file__).parent / "migrations"
_log = logging.getLogger(__name__)


#: Rows per multi-row INSERT in a batch. Small pages keep each statement short enough for
#: psycopg's query-conversion cache; measured here, 25 beat both 10 and 100+ (make bench).
INSERT_PAGE_ROWS = 25


class InboxStore(ABC):
    """The inbox port: claim an input key, keep its outputs, re-emit them on redelivery.

    Implementations differ only in the dialect's insert-on-conflict statement; use
    :func:`inbox_store_for` to pick one for an engine. ``clock`` stamps ``processed_at``.
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def engine(self) -> Engine:
        """The engine the store uses."""
        return self._engine

    @abstractmethod
    def _claim_statement(self, row: Mapping[str, Any]) -> sa.Executable:
        """``INSERT row INTO inbox ON CONFLICT (consumer, dedupe_key) DO NOTHING RETURNING``.

        Yields one row when the key was claimed, none when it already existed.
        """

    def _connect(self, *, write: bool = True) -> Connection:
        """A new connection; ``write=False`` for reads that must not queue behind writers."""
        return self._engine.connect()

    # -- lifecycle -----------------------------------------------------------------------
    def migrate(self) -> None:
        """Create or upgrade the inbox tables (Alembic ``upgrade head``); idempotent.

        Safe to call from several processes at start-up: the upgrade is serialised by a
        PostgreSQL advisory lock (SQLite: the write lock) and later callers find it done.
        """
        with translated_errors("migrating the inbox tables"):
            upgrade_to_head(
                self._engine,
                script_location=_MIGRATIONS,
                version_table=INBOX_VERSION_TABLE,
                target_metadata=metadata,
            )

    def ping(self) -> None:
        """Check the database answers and the inbox table exists (readiness).

        Raises :class:`InboxUnavailableError` when unreachable, :class:`InboxStoreError` when
        reachable but not migrated.
        """
        with (
            translated_errors("pinging the inbox database"),
            self._connect(write=False) as connection,
        ):
            connection.execute(sa.select(sa.literal(1)).select_from(inbox_table).limit(0))

    def get(self, consumer: str, dedupe_key: str) -> InboxRecord | None:
        """The committed row for ``(consumer, dedupe_key)`` with its outputs, or ``None``."""
        with (
            translated_errors(f"reading {consumer}/{dedupe_key}"),
            self._connect(write=False) as connection,
        ):
            row = self._read_row(connection, consumer, dedupe_key)
            if row is None:
                return None
            return InboxRecord(
                consumer=row.consumer,
                dedupe_key=row.dedupe_key,
                content_hash=row.content_hash,
                event_id=row.event_id,
                topic=row.source_topic,
                partition=row.source_partition,
                offset=row.source_offset,
                processed_at=_as_utc(row.processed_at),
                outputs=self._read_outputs(connection, consumer, dedupe_key),
            )

    # -- the transaction -----------------------------------------------------------------
    @contextmanager
    def transaction(
        self,
        consumer: str,
        dedupe_key: str,
        content_hash: str,
        *,
        event_id: str,
        topic: str,
        partition: int,
        offset: int,
    ) -> Iterator[InboxTransaction]:
        """Open one database transaction and claim ``(consumer, dedupe_key)`` in it.

        See the module docstring for the outcomes and what commits when.
        """
        row = {
            "consumer": consumer,
            "dedupe_key": dedupe_key,
            "content_hash": content_hash,
            "event_id": event_id,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "processed_at": self._clock().astimezone(UTC),
        }
        with translated_errors("opening the inbox transaction"):
            connection = self._connect()
        try:
            with translated_errors(f"claiming {consumer}/{dedupe_key}"):
                connection.begin()
                tx = self._claim(connection, row)
            try:
                yield tx
            except BaseException as err:
                tx._close()
                _rollback_quietly(connection)
                if isinstance(err, DRIVER_ERRORS) and is_transient_database_error(err):
                    raise InboxUnavailableError(
                        f"database unavailable while handling {consumer}/{dedupe_key}: "
                        f"{describe_error(err)}"
                    ) from err
                raise
            tx._close()
            with translated_errors(f"committing {consumer}/{dedupe_key}"):
                if tx.outcome is ClaimOutcome.NEW:
                    connection.commit()
                else:
                    connection.rollback()
        finally:
            _close_quietly(connection)

    def now(self) -> datetime:
        """The store's clock, in UTC."""
        return self._clock().astimezone(UTC)

    def claim_many_statement(self) -> sa.Executable:
        """``INSERT ... ON CONFLICT DO NOTHING RETURNING dedupe_key``, run with many rows.

        SQLAlchemy's "insertmanyvalues" turns the executemany into multi-row inserts with one
        cached compiled form, so a batch of claims costs a round trip, not one per row.
        """
        dialect_insert = (
            postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        )
        return (
            dialect_insert(inbox_table)
            .on_conflict_do_nothing(index_elements=["consumer", "dedupe_key"])
            .returning(inbox_table.c.dedupe_key)
        )

    @contextmanager
    def batch(self, consumer: str) -> Iterator[InboxBatch]:
        """One database transaction for many inputs (see :mod:`alchemiser_common.inbox.batch`).

        Commits when the block ends normally (after writing the recorded outputs), rolls back
        on an exception; transient database failures surface as :class:`InboxUnavailableError`.
        """
        with translated_errors("opening an inbox batch"):
            connection = self._connect().execution_options(
                insertmanyvalues_page_size=INSERT_PAGE_ROWS
            )
        try:
            with translated_errors(f"beginning a batch of {consumer}"):
                connection.begin()
            batch = InboxBatch(self, consumer, connection)
            try:
                yield batch
                batch.flush()
            except BaseException as err:
                _rollback_quietly(connection)
                if isinstance(err, DRIVER_ERRORS) and is_transient_database_error(err):
                    raise InboxUnavailableError(
                        f"database unavailable in a batch of {consumer}: {describe_error(err)}"
                    ) from err
                raise
            with translated_errors(f"committing a batch of {consumer}"):
                connection.commit()
        finally:
            _close_quietly(connection)

    def _claim(self, connection: Connection, row: Mapping[str, Any]) -> InboxTransaction:
        consumer, dedupe_key = row["consumer"], row["dedupe_key"]
        common = {
            "consumer": consumer,
            "dedupe_key": dedupe_key,
            "content_hash": row["content_hash"],
            "connection": connection,
        }
        # RETURNING rather than rowcount: drivers report -1 for INSERT ... ON CONFLICT.
        inserted = connection.execute(self._claim_statement(row)).first() is not None
        if inserted:
            return InboxTransaction(outcome=ClaimOutcome.NEW, **common)
        existing = self._read_row(connection, consumer, dedupe_key)
        if existing is None:  # deleted between our insert and read (retention purge): retry
            raise InboxUnavailableError(f"inbox row {consumer}/{dedupe_key} vanished; retry")
        if existing.content_hash != row["content_hash"]:
            return InboxTransaction(
                outcome=ClaimOutcome.CONFLICT,
                stored_content_hash=existing.content_hash,
                stored_event_id=existing.event_id,
                **common,
            )
        return InboxTransaction(
            outcome=ClaimOutcome.DUPLICATE,
            stored_outputs=self._read_outputs(connection, consumer, dedupe_key),
            stored_content_hash=existing.content_hash,
            stored_event_id=existing.event_id,
            stored_published=existing.published_at is not None,
            **common,
        )

    def mark_published(self, consumer: str, dedupe_keys: Sequence[str]) -> None:
        """Record that the outputs of these inputs are committed to Kafka.

        Called after the Kafka transaction commits. A later duplicate of a published input
        re-emits nothing; one of an unpublished input (crash before this call) re-emits the
        stored outputs, which downstream dedupe recognises by their event ids.
        """
        if not dedupe_keys:
            return
        statement = (
            sa.update(inbox_table)
            .where(
                inbox_table.c.consumer == consumer,
                inbox_table.c.dedupe_key.in_(list(dedupe_keys)),
                inbox_table.c.published_at.is_(None),
            )
            .values(published_at=self._clock().astimezone(UTC))
        )
        with (
            translated_errors(f"marking {len(dedupe_keys)} input(s) published"),
            self._connect() as connection,
        ):
            connection.execute(statement)
            connection.commit()

    @staticmethod
    def _read_row(connection: Connection, consumer: str, dedupe_key: str) -> sa.Row[Any] | None:
        query = sa.select(inbox_table).where(
            inbox_table.c.consumer == consumer, inbox_table.c.dedupe_key == dedupe_key
        )
        return connection.execute(query).one_or_none()

    @staticmethod
    def _read_outputs(
        connection: Connection, consumer: str, dedupe_key: str
    ) -> tuple[StoredOutput, ...]:
        query = (
            sa.select(inbox_output_table)
            .where(
                inbox_output_table.c.consumer == consumer,
                inbox_output_table.c.dedupe_key == dedupe_key,
            )
            .order_by(inbox_output_table.c.seq)
        )
        return tuple(
            StoredOutput(
                topic=row.topic,
                key=None if row.key is None else bytes(row.key),
                value=bytes(row.value),
                headers=decode_headers(row.headers),
            )
            for row in connection.execute(query)
        )


class PostgresInboxStore(InboxStore):
    """The inbox on PostgreSQL (psycopg 3); claims run at READ COMMITTED.

    READ COMMITTED is what makes a blocked concurrent claim see the first transaction's
    committed row; it is pinned so a server-wide ``default_transaction_isolation`` cannot
    turn duplicates into serialization failures.
    """

    def _claim_statement(self, row: Mapping[str, Any]) -> sa.Executable:
        return (
            postgresql.insert(inbox_table)
            .values(dict(row))
            .on_conflict_do_nothing(index_elements=["consumer", "dedupe_key"])
            .returning(inbox_table.c.consumer)
        )

    def _connect(self, *, write: bool = True) -> Connection:
        return self._engine.connect().execution_options(isolation_level="READ COMMITTED")


class SqliteInboxStore(InboxStore):
    """The inbox on SQLite; needs an engine from ``create_engine_from_url`` (BEGIN IMMEDIATE)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        if not sqlite_engine_is_configured(engine):
            raise ConfigurationError(
                "SqliteInboxStore needs an engine from alchemiser_common.db."
                "create_engine_from_url (transactions must start with BEGIN IMMEDIATE)"
            )
        super().__init__(engine, clock=clock)

    def _claim_statement(self, row: Mapping[str, Any]) -> sa.Executable:
        return (
            sqlite.insert(inbox_table)
            .values(dict(row))
            .on_conflict_do_nothing(index_elements=["consumer", "dedupe_key"])
            .returning(inbox_table.c.consumer)
        )

    def _connect(self, *, write: bool = True) -> Connection:
        # Claims take the write lock up front (concurrent claims queue; no lock upgrade that
        # could fail half-way); reads use WAL snapshots and never wait for a writer.
        mode = "IMMEDIATE" if write else "DEFERRED"
        return self._engine.connect().execution_options(sqlite_begin=mode)


def inbox_store_for(engine: Engine, *, clock: Callable[[], datetime] | None = None) -> InboxStore:
    """The inbox store implementation for ``engine``'s dialect (PostgreSQL or SQLite)."""
    if engine.dialect.name == "postgresql":
        return PostgresInboxStore(engine, clock=clock)
    if engine.dialect.name == "sqlite":
        return SqliteInboxStore(engine, clock=clock)
    raise ConfigurationError(f"no inbox store for database dialect {engine.dialect.name!r}")


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rollback_quietly(connection: Connection) -> None:
    try:
        connection.rollback()
    except DRIVER_ERRORS as err:  # the connection is gone: the server rolled back already
        _log.warning("inbox rollback failed; the database discards the transaction: %s", err)


def _close_quietly(connection: Connection) -> None:
    try:
        connection.close()
    except DRIVER_ERRORS as err:
        _log.warning("closing the inbox connection failed: %s", err)

"""What execution knows of each workflow from the workflow topics (``execution_workflows``).

A row is written by the ``WorkflowStarted`` and ``WorkflowFailed`` handlers' units of work,
which the runtime runs in its inbox transaction (so a row commits with its event's inbox row,
on the service database). The primary key decides, never a read before the write: a trigger is
``INSERT ... ON CONFLICT DO NOTHING``; a failure is an upsert that sets the failure columns
only while they are empty, so a failure seen before its trigger still counts, the first failure
recorded stays, and a repeated one writes nothing. The plan handler asks
:meth:`WorkflowLog.status` in its own short read transaction: no transaction is held while a
handler runs.

The runtime commits a batch after all its handlers ran, so a plan handled after a failure of
its workflow in the same batch would not see the failure's row yet. The ``WorkflowFailed``
handler therefore also notes the failure in memory (:meth:`WorkflowLog.note_failure`), shared
by every :class:`WorkflowLog` of the same engine in the process, and :meth:`WorkflowLog.status`
reports a noted failure as well as a committed one.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from alchemiser_common.db import as_utc, is_transient_database_error
from alchemiser_common.events import WorkflowFailed, WorkflowStarted
from alchemiser_common.inbox import UnitOfWork
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.adapters.schema import workflow_table
from alchemiser_execution.domain.plan_rules import WorkflowFailure, WorkflowStatus
from alchemiser_execution.exceptions import AttemptStoreUnavailableError

__all__ = ["WorkflowLog", "failure_of", "record_failure", "record_workflow"]

NOTED_FAILURES_MAX = 10_000
"""Failures kept in memory per engine (oldest dropped first): a note only has to outlive the
batch that handled the failure, after which the committed row answers."""

_WorkflowKey = tuple[str, str]

# The statements are built once (SQLAlchemy then skips coercing them and generating their
# cache keys on every call), one per dialect where ``ON CONFLICT`` differs; an INSERT's
# columns are the keys of the parameters it is executed with.
_KEY = ["account_id", "correlation_id"]
_FAILURE_COLUMNS = ("failed_at", "failure_step", "failure_reason")


def _dialect(connection: Connection) -> str:
    """Which dialect's statement to run (PostgreSQL's, else SQLite's)."""
    return "postgresql" if connection.dialect.name == "postgresql" else "sqlite"


_RECORD_WORKFLOW = {
    "postgresql": postgresql.insert(workflow_table).on_conflict_do_nothing(index_elements=_KEY),
    "sqlite": sqlite.insert(workflow_table).on_conflict_do_nothing(index_elements=_KEY),
}


def record_workflow(event: WorkflowStarted, seen_at: datetime) -> UnitOfWork:
    """The unit of work that records ``event``'s workflow (idempotent by its primary key)."""
    row = {
        "account_id": event.account_id,
        "correlation_id": str(event.correlation_id),
        "as_of": event.as_of,
        "seen_at": seen_at,
    }

    def write(connection: Connection) -> None:
        connection.execute(_RECORD_WORKFLOW[_dialect(connection)], row)

    return write


def failure_of(event: WorkflowFailed) -> WorkflowFailure:
    """The failure ``event`` reports, as execution records it."""
    return WorkflowFailure(
        failure_step=event.failure_step.value,
        reason=event.reason,
        failed_at=event.occurred_at,
    )


def _failure_upsert(insert: Callable[[sa.Table], Any]) -> Any:
    """``insert``'s upsert that fills the failure columns of a row only while they are empty."""
    statement = insert(workflow_table)
    return statement.on_conflict_do_update(
        index_elements=_KEY,
        set_={name: statement.excluded[name] for name in _FAILURE_COLUMNS},
        where=workflow_table.c.failed_at.is_(None),
    )


_RECORD_FAILURE = {
    "postgresql": _failure_upsert(postgresql.insert),
    "sqlite": _failure_upsert(sqlite.insert),
}


def record_failure(event: WorkflowFailed, seen_at: datetime) -> UnitOfWork:
    """The unit of work that records ``event``'s workflow as failed (idempotent, first wins).

    Inserts the workflow if its trigger was not seen yet (``seen_at``), else fills the failure
    columns of its row if they are still empty.
    """
    failure = failure_of(event)
    row = {
        "account_id": event.account_id,
        "correlation_id": str(event.correlation_id),
        "as_of": None,
        "seen_at": seen_at,
        "failed_at": failure.failed_at,
        "failure_step": failure.failure_step,
        "failure_reason": failure.reason,
    }

    def write(connection: Connection) -> None:
        connection.execute(_RECORD_FAILURE[_dialect(connection)], row)

    return write


class _NotedFailures:
    """Failures handled in this process, by workflow (bounded, thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: OrderedDict[_WorkflowKey, WorkflowFailure] = OrderedDict()

    def add(self, key: _WorkflowKey, failure: WorkflowFailure) -> None:
        with self._lock:
            self._failures.setdefault(key, failure)
            while len(self._failures) > NOTED_FAILURES_MAX:
                self._failures.popitem(last=False)

    def get(self, key: _WorkflowKey) -> WorkflowFailure | None:
        with self._lock:
            return self._failures.get(key)


_NOTES: weakref.WeakKeyDictionary[Engine, _NotedFailures] = weakref.WeakKeyDictionary()
_NOTES_LOCK = threading.Lock()


def _notes_of(engine: Engine) -> _NotedFailures:
    with _NOTES_LOCK:
        notes = _NOTES.get(engine)
        if notes is None:
            notes = _NOTES[engine] = _NotedFailures()
        return notes


_STATUS = sa.select(
    workflow_table.c.failed_at, workflow_table.c.failure_step, workflow_table.c.failure_reason
).where(
    workflow_table.c.account_id == sa.bindparam("account_id"),
    workflow_table.c.correlation_id == sa.bindparam("correlation_id"),
)


class WorkflowLog:
    """Reads (and migrates) ``execution_workflows`` on the database the runtime writes it to."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._noted = _notes_of(engine)

    @property
    def engine(self) -> Engine:
        """The engine the log reads through."""
        return self._engine

    def migrate(self) -> None:
        """Create or upgrade the execution tables here (the one execution migration tree)."""
        AttemptStore(self._engine).migrate()

    def note_failure(self, event: WorkflowFailed) -> None:
        """Remember ``event``'s failure until its row is committed (see the module docstring)."""
        self._noted.add((event.account_id, str(event.correlation_id)), failure_of(event))

    def status(self, account_id: str, correlation_id: str) -> WorkflowStatus:
        """Whether the workflow was seen (its row is committed) and how it failed, if it did."""
        parameters = {"account_id": account_id, "correlation_id": correlation_id}
        try:
            with (
                self._engine.connect().execution_options(sqlite_begin="DEFERRED") as connection,
                connection.begin(),
            ):
                row = connection.execute(_STATUS, parameters).one_or_none()
        except sa_exc.SQLAlchemyError as err:
            if not is_transient_database_error(err):
                raise
            raise AttemptStoreUnavailableError(
                f"reading the known workflows: database unavailable: {err}"
            ) from err
        failed_at = as_utc(row.failed_at) if row is not None else None
        if row is not None and failed_at is not None:
            failure: WorkflowFailure | None = WorkflowFailure(
                failure_step=row.failure_step or "",
                reason=row.failure_reason or "",
                failed_at=failed_at,
            )
        else:
            failure = self._noted.get((account_id, correlation_id))
        return WorkflowStatus(known=row is not None, failure=failure)

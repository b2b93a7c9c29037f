"""The workflows execution has seen started (``execution_workflows``).

A row is written by the ``WorkflowStarted`` handler's unit of work, which the runtime runs in
its inbox transaction (so it commits with the trigger's inbox row, on the service database);
``INSERT ... ON CONFLICT DO NOTHING`` lets the primary key decide, so a repeated trigger writes
nothing. The plan handler asks :meth:`WorkflowLog.is_known` in its own short read transaction:
no transaction is held while a handler runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from alchemiser_common.db import is_transient_database_error
from alchemiser_common.events import WorkflowStarted
from alchemiser_common.inbox import UnitOfWork
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.adapters.schema import workflow_table
from alchemiser_execution.exceptions import AttemptStoreUnavailableError

__all__ = ["WorkflowLog", "record_workflow"]


def record_workflow(event: WorkflowStarted, seen_at: datetime) -> UnitOfWork:
    """The unit of work that records ``event``'s workflow (idempotent by its primary key)."""
    row = {
        "account_id": event.account_id,
        "correlation_id": str(event.correlation_id),
        "as_of": event.as_of,
        "seen_at": seen_at,
    }

    def write(connection: Connection) -> None:
        insert: Any = (
            postgresql.insert(workflow_table)
            if connection.dialect.name == "postgresql"
            else sqlite.insert(workflow_table)
        )
        connection.execute(
            insert.values(row).on_conflict_do_nothing(
                index_elements=["account_id", "correlation_id"]
            )
        )

    return write


class WorkflowLog:
    """Reads (and migrates) ``execution_workflows`` on the database the runtime writes it to."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The engine the log reads through."""
        return self._engine

    def migrate(self) -> None:
        """Create or upgrade the execution tables here (the one execution migration tree)."""
        AttemptStore(self._engine).migrate()

    def is_known(self, account_id: str, correlation_id: str) -> bool:
        """Whether the workflow was seen started (its row is committed)."""
        query = sa.select(
            sa.exists().where(
                workflow_table.c.account_id == account_id,
                workflow_table.c.correlation_id == correlation_id,
            )
        )
        try:
            with (
                self._engine.connect().execution_options(sqlite_begin="DEFERRED") as connection,
                connection.begin(),
            ):
                return bool(connection.execute(query).scalar_one())
        except sa_exc.SQLAlchemyError as err:
            if not is_transient_database_error(err):
                raise
            raise AttemptStoreUnavailableError(
                f"reading the known workflows: database unavailable: {err}"
            ) from err

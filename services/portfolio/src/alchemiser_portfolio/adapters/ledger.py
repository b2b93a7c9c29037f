"""The workflow ledger: the plans the service emitted and the workflows that finished.

Reads are one short read transaction each (:meth:`WorkflowLedger.account_workflows`), never
held across the handler. Writes are units of work (:func:`plan_recorded`,
:func:`workflows_finished`) that a handler returns in its ``HandlerResult``: the runtime runs
them inside its inbox transaction, with the input's inbox row, so a plan is recorded exactly
when its ``RebalancePlanned`` is. Duplicates are decided by the primary keys
(``INSERT ... ON CONFLICT DO NOTHING``): recording the same row twice is a no-op.

Transient database failures of a read raise :class:`LedgerUnavailableError` (a
``TransientError``), so the runtime retries the input.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from alchemiser_common.db import (
    insert_ignoring_duplicates,
    outage_as,
    transaction,
    upgrade_to_head,
)
from alchemiser_common.inbox import UnitOfWork
from alchemiser_portfolio.adapters.schema import (
    PORTFOLIO_VERSION_TABLE,
    finished_table,
    metadata,
    plan_table,
)
from alchemiser_portfolio.domain.sequencing import AccountWorkflows, PlanRef, WorkflowEnd
from alchemiser_portfolio.exceptions import LedgerUnavailableError

__all__ = ["WorkflowLedger", "plan_recorded", "workflows_finished"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Built once: SQLAlchemy then skips coercing the statements and generating their cache keys
# on every call. The unfinished plans are found by the plans' own mark (indexed); the finished
# workflows still decide, for a plan recorded after its workflow's outcome (left unmarked).
_UNFINISHED = (
    sa.select(plan_table.c.correlation_id, plan_table.c.planned_at)
    .where(
        plan_table.c.account_id == sa.bindparam("account_id"),
        plan_table.c.finished_at.is_(None),
        plan_table.c.correlation_id != sa.bindparam("excluding"),
        ~sa.exists().where(
            finished_table.c.account_id == plan_table.c.account_id,
            finished_table.c.correlation_id == plan_table.c.correlation_id,
        ),
    )
    .order_by(plan_table.c.planned_at, plan_table.c.correlation_id)
)

_MARK_FINISHED = (
    sa.update(plan_table)
    .where(
        plan_table.c.account_id == sa.bindparam("b_account_id"),
        plan_table.c.correlation_id == sa.bindparam("b_correlation_id"),
        plan_table.c.finished_at.is_(None),
    )
    .values(finished_at=sa.bindparam("b_finished_at"))
)

_FINISHED_AMONG = sa.select(finished_table.c.correlation_id).where(
    finished_table.c.account_id == sa.bindparam("account_id"),
    finished_table.c.correlation_id.in_(sa.bindparam("asking", expanding=True)),
)


class WorkflowLedger:
    """Reads the ledger's tables over SQLAlchemy Core (PostgreSQL or SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The engine the ledger reads through."""
        return self._engine

    def migrate(self) -> None:
        """Create or upgrade the portfolio tables (Alembic, own version table)."""
        with self._translated("migrating the portfolio tables"):
            upgrade_to_head(
                self._engine,
                script_location=_MIGRATIONS,
                version_table=PORTFOLIO_VERSION_TABLE,
                target_metadata=metadata,
            )

    def account_workflows(
        self, account_id: str, *, excluding: str, asking: Collection[str] = ()
    ) -> AccountWorkflows:
        """``account_id``'s plans (other than ``excluding``'s) with no finished workflow, and
        which workflows of ``asking`` have finished: one short read transaction."""
        parameters = {"account_id": account_id, "excluding": excluding}
        with self._read("reading the account's workflows") as connection:
            rows = connection.execute(_UNFINISHED, parameters).all()
            done: set[str] = set()
            if asking:
                among = {"account_id": account_id, "asking": sorted(asking)}
                done = set(connection.execute(_FINISHED_AMONG, among).scalars())
        unfinished = tuple(PlanRef(_as_utc(at), correlation_id) for correlation_id, at in rows)
        return AccountWorkflows(unfinished=unfinished, finished=frozenset(done))

    def _translated(self, what: str) -> AbstractContextManager[None]:
        return outage_as(LedgerUnavailableError, what)

    def _read(self, what: str) -> AbstractContextManager[Connection]:
        return transaction(self._engine, LedgerUnavailableError, what)


def plan_recorded(account_id: str, correlation_id: str, planned_at: datetime) -> UnitOfWork:
    """The unit of work recording one emitted plan (idempotent)."""
    row = {"account_id": account_id, "correlation_id": correlation_id, "planned_at": planned_at}

    def record(connection: Connection) -> None:
        insert_ignoring_duplicates(connection, plan_table, [row])

    return record


def workflows_finished(
    account_id: str, correlation_ids: Iterable[str], outcome: WorkflowEnd, finished_at: datetime
) -> UnitOfWork:
    """The unit of work recording that these workflows finished (idempotent: the first
    outcome recorded for a workflow stays)."""
    rows = [
        {
            "account_id": account_id,
            "correlation_id": correlation_id,
            "outcome": outcome.value,
            "finished_at": finished_at,
        }
        for correlation_id in sorted(set(correlation_ids))
    ]
    marks = [
        {
            "b_account_id": row["account_id"],
            "b_correlation_id": row["correlation_id"],
            "b_finished_at": finished_at,
        }
        for row in rows
    ]

    def record(connection: Connection) -> None:
        insert_ignoring_duplicates(connection, finished_table, rows)
        if marks:  # the plans keep the first outcome's time, as the finished rows do
            connection.execute(_MARK_FINISHED, marks)

    return record

"""The workflow ledger's contract on SQLite and (integration) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from alchemiser_common.db import create_engine_from_url
from alchemiser_common.inbox import UnitOfWork
from alchemiser_portfolio.adapters.ledger import WorkflowLedger, plan_recorded, workflows_finished
from alchemiser_portfolio.adapters.schema import finished_table, metadata
from alchemiser_portfolio.domain import PlanRef, WorkflowEnd

T0 = datetime(2025, 3, 14, 19, 45, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)


class WorkflowLedgerContract:
    """Behaviour every back end must show (not collected: no ``Test`` prefix)."""

    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def ledger(self, database_url: str) -> Iterator[WorkflowLedger]:
        engine = create_engine_from_url(database_url)
        ledger = WorkflowLedger(engine)
        ledger.migrate()
        ledger.migrate()  # idempotent
        yield ledger
        engine.dispose()

    @staticmethod
    def _run(ledger: WorkflowLedger, *units: UnitOfWork) -> None:
        with ledger.engine.begin() as connection:
            for unit in units:
                unit(connection)

    def test_migrations_when_applied_then_match_the_tables(self, ledger: WorkflowLedger) -> None:
        with ledger.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
        ours = [d for d in diff if "portfolio" in str(d) and "alembic_version" not in str(d)]
        assert ours == []

    def test_account_workflows_when_plans_and_outcomes_then_only_unfinished_others(
        self, ledger: WorkflowLedger
    ) -> None:
        self._run(
            ledger,
            plan_recorded("A", "w-2", T1),
            plan_recorded("A", "w-1", T0),
            plan_recorded("A", "w-3", T1),
            plan_recorded("A", "w-current", T1),
            plan_recorded("B", "w-b", T0),
            workflows_finished("A", ["w-3", "w-never-planned"], WorkflowEnd.COMPLETED, T1),
        )

        state = ledger.account_workflows("A", excluding="w-current", asking=["w-3", "w-9"])

        assert state.unfinished == (PlanRef(T0, "w-1"), PlanRef(T1, "w-2"))
        assert state.finished == frozenset({"w-3"})

    def test_units_of_work_when_run_twice_then_first_rows_stay(
        self, ledger: WorkflowLedger
    ) -> None:
        self._run(ledger, plan_recorded("A", "w-1", T0))
        self._run(ledger, plan_recorded("A", "w-1", T1))
        self._run(ledger, workflows_finished("A", ["w-1"], WorkflowEnd.COMPLETED, T0))
        self._run(ledger, workflows_finished("A", ["w-1", "w-1"], WorkflowEnd.ABANDONED, T1))

        assert ledger.account_workflows("A", excluding="x").unfinished == ()
        with ledger.engine.connect() as connection:
            rows = connection.execute(sa.select(finished_table)).mappings().all()
        assert [(row["correlation_id"], row["outcome"]) for row in rows] == [("w-1", "completed")]


class TestWorkflowLedgerOnSqlite(WorkflowLedgerContract):
    """The contract on an SQLite file."""

    @pytest.fixture
    def database_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'portfolio.db'}"


@pytest.mark.integration
class TestWorkflowLedgerOnPostgres(WorkflowLedgerContract):
    """The contract on PostgreSQL (the tables dropped before each test)."""

    @pytest.fixture
    def database_url(self, postgres_url: str) -> Iterator[str]:
        engine = sa.create_engine(postgres_url)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS portfolio_finished_workflows"))
            connection.execute(sa.text("DROP TABLE IF EXISTS portfolio_plans"))
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version_portfolio"))
        engine.dispose()
        yield postgres_url

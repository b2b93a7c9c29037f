"""The workflow ledger's contract on SQLite and (integration) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import alchemiser_portfolio.adapters.ledger
from alchemiser_common.db import create_engine_from_url, upgrade_to
from alchemiser_common.inbox import UnitOfWork
from alchemiser_portfolio.adapters.ledger import WorkflowLedger, plan_recorded, workflows_finished
from alchemiser_portfolio.adapters.schema import (
    PORTFOLIO_VERSION_TABLE,
    finished_table,
    metadata,
    plan_table,
)
from alchemiser_portfolio.domain import PlanRef, WorkflowEnd

_MIGRATIONS = Path(alchemiser_portfolio.adapters.ledger.__file__).parent / "migrations"
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

    def test_account_workflows_when_a_plan_is_recorded_after_its_outcome_then_not_unfinished(
        self, ledger: WorkflowLedger
    ) -> None:
        self._run(ledger, workflows_finished("A", ["w-late"], WorkflowEnd.FAILED, T0))
        self._run(ledger, plan_recorded("A", "w-late", T1), plan_recorded("A", "w-open", T1))

        assert ledger.account_workflows("A", excluding="x").unfinished == (PlanRef(T1, "w-open"),)

    def test_workflows_finished_when_recorded_then_plans_marked_with_the_first_outcome_time(
        self, ledger: WorkflowLedger
    ) -> None:
        self._run(ledger, plan_recorded("A", "w-1", T0), plan_recorded("A", "w-2", T0))
        self._run(ledger, workflows_finished("A", ["w-1"], WorkflowEnd.COMPLETED, T0))
        self._run(ledger, workflows_finished("A", ["w-1"], WorkflowEnd.ABANDONED, T1))

        assert _plan_marks(ledger) == {"w-1": T0, "w-2": None}

    def test_migration_when_plans_were_finished_before_it_then_marked_from_their_outcomes(
        self, database_url: str
    ) -> None:
        engine = create_engine_from_url(database_url)
        try:
            upgrade_to(
                engine,
                "portfolio_0001",
                script_location=_MIGRATIONS,
                version_table=PORTFOLIO_VERSION_TABLE,
                target_metadata=metadata,
            )
            with engine.begin() as connection:
                connection.execute(
                    sa.text(
                        "INSERT INTO portfolio_plans (account_id, correlation_id, planned_at) "
                        "VALUES ('A', 'w-1', :t0), ('A', 'w-2', :t0)"
                    ),
                    {"t0": T0},
                )
                connection.execute(
                    sa.insert(finished_table),
                    [
                        {
                            "account_id": "A",
                            "correlation_id": "w-1",
                            "outcome": "completed",
                            "finished_at": T1,
                        }
                    ],
                )
            ledger = WorkflowLedger(engine)
            ledger.migrate()

            assert _plan_marks(ledger) == {"w-1": T1, "w-2": None}
            assert ledger.account_workflows("A", excluding="x").unfinished == (PlanRef(T0, "w-2"),)
        finally:
            engine.dispose()


def _plan_marks(ledger: WorkflowLedger) -> dict[str, datetime | None]:
    with ledger.engine.connect() as connection:
        rows = connection.execute(sa.select(plan_table.c.correlation_id, plan_table.c.finished_at))
        return {
            correlation_id: None if at is None else at.replace(tzinfo=at.tzinfo or UTC)
            for correlation_id, at in rows
        }


class TestWorkflowLedgerOnSqlite(WorkflowLedgerContract):
    """The contract on an SQLite file."""

    @pytest.fixture
    def database_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'portfolio.db'}"

    def test_account_workflows_when_many_finished_plans_then_read_through_the_index(
        self, ledger: WorkflowLedger
    ) -> None:
        finished = [f"w-{n}" for n in range(50)]
        self._run(ledger, *(plan_recorded("A", name, T0) for name in finished))
        self._run(ledger, workflows_finished("A", finished, WorkflowEnd.COMPLETED, T1))
        seen: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "FROM portfolio_plans" in statement:
                seen.append((statement, parameters))

        sa.event.listen(ledger.engine, "before_cursor_execute", record)
        try:
            assert ledger.account_workflows("A", excluding="x").unfinished == ()
        finally:
            sa.event.remove(ledger.engine, "before_cursor_execute", record)
        ((statement, parameters),) = seen
        with ledger.engine.connect() as connection:
            plan = [
                row[-1]
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]
        assert any("ix_portfolio_plans_account_finished" in line for line in plan), plan


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

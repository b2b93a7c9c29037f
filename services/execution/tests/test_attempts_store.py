"""The attempts store's (and the workflow log's) contract on SQLite and (integration) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from alchemiser_common.db import create_engine_from_url
from alchemiser_common.events import FailureStep, OrderSide, OrderType
from alchemiser_execution.adapters import attempts as attempts_module
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.adapters.schema import EXECUTION_VERSION_TABLE, metadata, workflow_table
from alchemiser_execution.adapters.workflows import WorkflowLog
from alchemiser_execution.domain import Attempt, AttemptState, PlannedOrder, WorkflowFailure
from alchemiser_execution.domain.runs import ExecutionRun, RunStatus
from alchemiser_execution.testing import (
    buy,
    fail_workflow,
    failure_for,
    planned,
    register_workflow,
)

T0 = datetime(2025, 3, 14, 19, 45, tzinfo=UTC)
DAY = date(2025, 3, 14)
ORDER = PlannedOrder(
    leg=0,
    symbol="TQQQ",
    side=OrderSide.BUY,
    qty=Decimal("192.226550"),
    price=Decimal("52.34"),
    fractionable=True,
    full_liquidation=False,
    client_order_id="alc-x",
)


def _run(correlation_id: str = "c-1", **changes: object) -> ExecutionRun:
    run = ExecutionRun(
        account_id="acct",
        correlation_id=correlation_id,
        plan_hash="f" * 64,
        input_event_id="e-1",
        status=RunStatus.RUNNING,
        orders=(ORDER,),
        trading_day=DAY,
        reserved_value=Decimal("10061.137627"),
        started_at=T0,
    )
    return replace(run, **changes)  # type: ignore[arg-type]


def _alembic(engine: sa.Engine, action: str, revision: str) -> None:
    """``alembic upgrade|downgrade <revision>`` of the execution tree (as ``migrate`` runs it)."""
    config = Config()
    config.set_main_option(
        "script_location", str(Path(attempts_module.__file__).parent / "migrations")
    )
    config.attributes["version_table"] = EXECUTION_VERSION_TABLE
    config.attributes["target_metadata"] = metadata
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def _workflow_rows(engine: sa.Engine) -> list[dict[str, object]]:
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(sa.select(workflow_table)).mappings()]


def _attempt(cid: str = "alc-x", attempt: int = 0) -> Attempt:
    return Attempt(
        account_id="acct",
        correlation_id="c-1",
        leg=0,
        attempt=attempt,
        client_order_id=cid,
        symbol="TQQQ",
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT,
        qty=Decimal("192.226550"),
        limit_price=Decimal("52.35"),
        close_position=False,
        state=AttemptState.PENDING,
        created_at=T0,
        updated_at=T0,
    )


class AttemptStoreContract:
    """Behaviour every back end must show (not collected: no ``Test`` prefix)."""

    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def store(self, database_url: str) -> Iterator[AttemptStore]:
        engine = create_engine_from_url(database_url)
        store = AttemptStore(engine, clock=lambda: T0)
        store.migrate()
        store.migrate()  # idempotent
        yield store
        engine.dispose()

    def test_migrations_when_applied_then_match_the_tables(self, store: AttemptStore) -> None:
        with store.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
        ours = [d for d in diff if "execution" in str(d) and "alembic_version" not in str(d)]
        assert ours == []

    def test_run_when_started_twice_then_first_wins_and_round_trips(
        self, store: AttemptStore
    ) -> None:
        first = store.start_run(_run())
        again = store.start_run(_run(plan_hash="0" * 64))
        assert again == first == store.find_run("acct", "c-1")
        assert again.orders == (ORDER,)

    def test_ledger_when_runs_recorded_then_sums_other_runs_of_the_day(
        self, store: AttemptStore
    ) -> None:
        store.start_run(_run("c-1", reserved_value=Decimal(100)))
        store.start_run(_run("c-2", reserved_value=Decimal(250)))
        store.start_run(_run("c-3", reserved_value=Decimal(999), status=RunStatus.REFUSED))
        store.start_run(_run("c-4", reserved_value=Decimal(7), trading_day=date(2025, 3, 13)))
        store.finish_run("acct", "c-2", Decimal("240.5"))
        assert store.traded_value_on("acct", DAY, excluding="c-9") == Decimal("340.5")
        assert store.traded_value_on("acct", DAY, excluding="c-1") == Decimal("240.5")

    def test_last_run_change_when_runs_changed_then_latest_of_the_other_runs_not_refused(
        self, database_url: str
    ) -> None:
        moments = [datetime(2025, 3, 14, 19, minute, tzinfo=UTC) for minute in range(6)]
        now = iter(moments)
        engine = create_engine_from_url(database_url)
        try:
            store = AttemptStore(engine, clock=lambda: next(now))
            store.migrate()
            assert store.last_run_change("acct", excluding="c-9") is None
            store.start_run(_run("c-1"))  # minute 0
            store.start_run(_run("c-2"))  # minute 1
            store.finish_run("acct", "c-1", Decimal(1))  # minute 2: c-1 is now the latest
            store.start_run(_run("c-3", status=RunStatus.REFUSED))  # minute 3: never counts
            store.start_run(_run("c-4", account_id="other"))  # minute 4: another account

            assert store.last_run_change("acct", excluding="c-9") == moments[2]
            assert store.last_run_change("acct", excluding="c-1") == moments[1]
            assert store.last_run_change("other", excluding="c-4") is None
        finally:
            engine.dispose()

    def test_attempt_when_added_twice_then_constraint_returns_the_first(
        self, store: AttemptStore
    ) -> None:
        first = store.add_pending(_attempt())
        assert store.add_pending(replace(_attempt(), qty=Decimal(1))) == first
        assert store.attempts_of("acct", "c-1") == [first]

    def test_attempt_when_saved_then_state_and_fills_exact(self, store: AttemptStore) -> None:
        store.add_pending(_attempt())
        filled = replace(
            _attempt(),
            state=AttemptState.FILLED,
            broker_order_id="b-1",
            broker_status="filled",
            filled_qty=Decimal("192.226550"),
            filled_avg_price=Decimal("52.3412"),
            filled_at=T0,
        )
        store.save(filled)
        assert store.find_attempt("alc-x") == filled
        assert store.unsettled() == []

    def test_unsettled_when_attempts_in_every_state_then_only_open_ones(
        self, store: AttemptStore
    ) -> None:
        for n, state in enumerate(AttemptState):
            store.add_pending(replace(_attempt(f"alc-{n}", n), state=state))
        states = {attempt.state for attempt in store.unsettled()}
        assert states == {AttemptState.PENDING, AttemptState.UNKNOWN, AttemptState.SUBMITTED}

    def test_workflow_started_unit_of_work_when_run_twice_then_one_row_and_known(
        self, store: AttemptStore
    ) -> None:
        event = planned([buy("TQQQ", "1000")])
        log = WorkflowLog(store.engine)
        assert not log.status(event.account_id, str(event.correlation_id)).known
        register_workflow(store, event)
        register_workflow(store, event)  # a second trigger of the same workflow: no error
        rows = _workflow_rows(store.engine)
        assert [(row["account_id"], row["correlation_id"]) for row in rows] == [
            (event.account_id, str(event.correlation_id))
        ]
        status = log.status(event.account_id, str(event.correlation_id))
        assert status.known and status.failure is None
        assert not log.status("other-account", str(event.correlation_id)).known

    def test_workflow_failed_unit_of_work_when_after_trigger_then_failure_on_the_row(
        self, store: AttemptStore
    ) -> None:
        event = register_workflow(store, planned([buy("TQQQ", "1000")]))
        failure = fail_workflow(store, event, failure_for(event, reason="timeout"))
        (row,) = _workflow_rows(store.engine)
        assert (row["failure_step"], row["failure_reason"]) == ("strategy", "timeout")
        status = WorkflowLog(store.engine).status(event.account_id, str(event.correlation_id))
        assert status.known
        assert status.failure == WorkflowFailure("strategy", "timeout", failure.occurred_at)

    def test_workflow_failed_unit_of_work_when_before_trigger_then_counts_and_trigger_keeps_it(
        self, store: AttemptStore
    ) -> None:
        event = planned([buy("TQQQ", "1000")])
        fail_workflow(store, event)
        register_workflow(store, event)  # the trigger consumed after the failure
        (row,) = _workflow_rows(store.engine)
        assert row["failure_reason"] == "no_session"
        status = WorkflowLog(store.engine).status(event.account_id, str(event.correlation_id))
        assert status.known and status.failure is not None

    def test_workflow_failed_unit_of_work_when_run_again_or_another_failure_then_first_stays(
        self, store: AttemptStore
    ) -> None:
        event = register_workflow(store, planned([buy("TQQQ", "1000")]))
        first = failure_for(event, step=FailureStep.STRATEGY, reason="timeout")
        fail_workflow(store, event, first)
        before = _workflow_rows(store.engine)
        fail_workflow(store, event, first)  # a redelivery: nothing new written
        assert _workflow_rows(store.engine) == before
        later = failure_for(event, step=FailureStep.EXECUTION, reason="orders_failed")
        fail_workflow(store, event, later)
        assert _workflow_rows(store.engine) == before

    def test_migration_0003_when_upgrading_rows_of_0002_then_kept_without_failure_and_reversible(
        self, database_url: str
    ) -> None:
        engine = create_engine_from_url(database_url)
        try:
            _alembic(engine, "upgrade", "execution_0002")
            with engine.begin() as connection:
                connection.execute(
                    sa.text(
                        "INSERT INTO execution_workflows (account_id, correlation_id, seen_at) "
                        "VALUES ('acct', 'c-1', :seen_at)"
                    ),
                    {"seen_at": T0},
                )
            AttemptStore(engine).migrate()
            status = WorkflowLog(engine).status("acct", "c-1")
            assert status.known and status.failure is None
            _alembic(engine, "downgrade", "execution_0002")
            columns = {c["name"] for c in sa.inspect(engine).get_columns("execution_workflows")}
            assert columns == {"account_id", "correlation_id", "as_of", "seen_at"}
            with engine.connect() as connection:
                count = connection.execute(sa.text("SELECT count(*) FROM execution_workflows"))
                assert count.scalar_one() == 1
        finally:
            engine.dispose()


class TestAttemptStoreOnSqlite(AttemptStoreContract):
    """The contract on an SQLite file."""

    @pytest.fixture
    def database_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'attempts.db'}"


@pytest.mark.integration
class TestAttemptStoreOnPostgres(AttemptStoreContract):
    """The contract on PostgreSQL (a fresh database per test)."""

    @pytest.fixture
    def database_url(self, postgres_url: str) -> Iterator[str]:
        engine = sa.create_engine(postgres_url)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS execution_workflows"))
            connection.execute(sa.text("DROP TABLE IF EXISTS execution_order_attempts"))
            connection.execute(sa.text("DROP TABLE IF EXISTS execution_runs"))
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version_execution"))
        engine.dispose()
        yield postgres_url

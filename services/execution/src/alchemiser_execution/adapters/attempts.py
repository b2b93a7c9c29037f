"""The attempts store: execution runs and order attempts in the service's database.

Every write is its own short transaction on the store's engine, committed before the call
returns, so a PENDING attempt is durable *before* its order is sent. Never write these rows
through the runtime's ``context.connection``: that batch transaction commits only after the
handler returns, and a crash in between would lose the record of an order the broker holds.

Duplicates are decided by the constraints (primary key of a run, the two unique keys of an
attempt), never by a read before the write: a second insert finds the first row and returns
it. Transient database failures raise :class:`AttemptStoreUnavailableError` (a
``TransientError``), so the runtime retries the input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from alchemiser_common.db import as_utc, outage_as, transaction, upgrade_to_head
from alchemiser_common.events import OrderSide, OrderType
from alchemiser_execution.adapters.schema import (
    EXECUTION_VERSION_TABLE,
    attempt_table,
    metadata,
    run_table,
)
from alchemiser_execution.domain.attempts import Attempt, AttemptState
from alchemiser_execution.domain.runs import ExecutionRun, RunStatus
from alchemiser_execution.domain.sizing import PlannedOrder
from alchemiser_execution.exceptions import AttemptStoreUnavailableError

__all__ = ["AttemptStore"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_OPEN_STATES = (
    AttemptState.PENDING.value,
    AttemptState.UNKNOWN.value,
    AttemptState.SUBMITTED.value,
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


# The statements are built once: a prebuilt statement keeps its cache key, so SQLAlchemy
# neither coerces it nor generates its key again on every call. Values come as bound
# parameters; an UPDATE's WHERE parameters are named ``b_...`` (a column's own name is
# reserved for its SET value).

# runs

_FIND_RUN = sa.select(run_table).where(
    run_table.c.account_id == sa.bindparam("account_id"),
    run_table.c.correlation_id == sa.bindparam("correlation_id"),
)

_INSERT_RUN = run_table.insert()  # the columns are the keys of the parameters

_FINISH_RUN = (
    run_table.update()
    .where(
        run_table.c.account_id == sa.bindparam("b_account_id"),
        run_table.c.correlation_id == sa.bindparam("b_correlation_id"),
        run_table.c.status == RunStatus.RUNNING.value,
    )
    .values(
        status=RunStatus.DONE.value,
        traded_value=sa.bindparam("traded_value"),
        updated_at=sa.bindparam("updated_at"),
    )
)

# The newest first by the (account, updated_at) index, stopping at the first that counts: a
# max() over the account's runs would read every run it ever had.
_LAST_RUN_CHANGE = (
    sa.select(run_table.c.updated_at)
    .where(
        run_table.c.account_id == sa.bindparam("account_id"),
        run_table.c.correlation_id != sa.bindparam("excluding"),
        run_table.c.status != RunStatus.REFUSED.value,
    )
    .order_by(run_table.c.updated_at.desc())
    .limit(1)
)

_TRADED_ON = sa.select(run_table.c.reserved_value, run_table.c.traded_value).where(
    run_table.c.account_id == sa.bindparam("account_id"),
    run_table.c.trading_day == sa.bindparam("trading_day"),
    run_table.c.correlation_id != sa.bindparam("excluding"),
    run_table.c.status != RunStatus.REFUSED.value,
)

# attempts

_ATTEMPTS_OF = (
    sa.select(attempt_table)
    .where(
        attempt_table.c.account_id == sa.bindparam("account_id"),
        attempt_table.c.correlation_id == sa.bindparam("correlation_id"),
    )
    .order_by(attempt_table.c.leg, attempt_table.c.attempt)
)

_ATTEMPTS_FOR_WORKFLOW = (
    sa.select(attempt_table)
    .where(attempt_table.c.correlation_id == sa.bindparam("correlation_id"))
    .order_by(attempt_table.c.account_id, attempt_table.c.leg, attempt_table.c.attempt)
)

_FIND_ATTEMPT = sa.select(attempt_table).where(
    attempt_table.c.client_order_id == sa.bindparam("client_order_id")
)

_INSERT_ATTEMPT = attempt_table.insert()  # the columns are the keys of the parameters

# what a save writes: every column but the surrogate id and the attempt's identity
_ATTEMPT_IDENTITY = frozenset(
    {"id", "account_id", "correlation_id", "leg", "attempt", "client_order_id"}
)
_ATTEMPT_CHANGES = tuple(c.name for c in attempt_table.c if c.name not in _ATTEMPT_IDENTITY)
_SAVE_ATTEMPT = (
    attempt_table.update()
    .where(attempt_table.c.client_order_id == sa.bindparam("b_client_order_id"))
    .values({name: sa.bindparam(name) for name in _ATTEMPT_CHANGES})
)

_UNSETTLED = (
    sa.select(attempt_table)
    .where(attempt_table.c.state.in_(_OPEN_STATES))
    .order_by(attempt_table.c.id)
)


class AttemptStore:
    """Runs and attempts over SQLAlchemy Core (PostgreSQL or SQLite)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._engine = engine
        self._clock = clock

    @property
    def engine(self) -> Engine:
        """The engine the store writes through."""
        return self._engine

    def now(self) -> datetime:
        """The store's clock (UTC)."""
        return self._clock()

    def migrate(self) -> None:
        """Create or upgrade the execution tables (Alembic, own version table)."""
        with self._translated("migrating the execution tables"):
            upgrade_to_head(
                self._engine,
                script_location=_MIGRATIONS,
                version_table=EXECUTION_VERSION_TABLE,
                target_metadata=metadata,
            )

    # ------------------------------------------------------------------- runs

    def find_run(self, account_id: str, correlation_id: str) -> ExecutionRun | None:
        """The run of ``(account_id, correlation_id)``, if one was recorded."""
        parameters = {"account_id": account_id, "correlation_id": correlation_id}
        with self._transaction("reading a run", write=False) as connection:
            row = connection.execute(_FIND_RUN, parameters).mappings().one_or_none()
        return None if row is None else _run_from_row(row)

    def start_run(self, run: ExecutionRun) -> ExecutionRun:
        """Record ``run``; if the workflow already has a run, return that one instead."""
        try:
            with self._transaction("recording a run", write=True) as connection:
                connection.execute(_INSERT_RUN, _run_values(run, self.now()))
            return run
        except sa_exc.IntegrityError:
            existing = self.find_run(run.account_id, run.correlation_id)
            if existing is None:
                raise
            return existing

    def finish_run(self, account_id: str, correlation_id: str, traded_value: Decimal) -> None:
        """Mark a run DONE with the value it traded (replacing its reservation in the ledger)."""
        parameters = {
            "b_account_id": account_id,
            "b_correlation_id": correlation_id,
            "traded_value": traded_value,
            "updated_at": self.now(),
        }
        with self._transaction("finishing a run", write=True) as connection:
            connection.execute(_FINISH_RUN, parameters)

    def last_run_change(self, account_id: str, *, excluding: str) -> datetime | None:
        """When the account's latest other run (not refused) last changed, or ``None``."""
        parameters = {"account_id": account_id, "excluding": excluding}
        with self._transaction("reading the account's last run", write=False) as connection:
            moment = connection.execute(_LAST_RUN_CHANGE, parameters).scalar_one_or_none()
        return None if moment is None else as_utc(moment)

    def traded_value_on(self, account_id: str, day: date, *, excluding: str) -> Decimal:
        """What the account's other runs of ``day`` traded (or reserved, while running)."""
        parameters = {"account_id": account_id, "trading_day": day, "excluding": excluding}
        with self._transaction("reading the daily ledger", write=False) as connection:
            rows = connection.execute(_TRADED_ON, parameters).all()
        return sum(
            (traded if traded is not None else reserved for reserved, traded in rows), Decimal(0)
        )

    # --------------------------------------------------------------- attempts

    def attempts_of(self, account_id: str, correlation_id: str) -> list[Attempt]:
        """Every attempt of a run, by leg and attempt number."""
        parameters = {"account_id": account_id, "correlation_id": correlation_id}
        with self._transaction("reading attempts", write=False) as connection:
            rows = connection.execute(_ATTEMPTS_OF, parameters).mappings().all()
        return [_attempt_from_row(row) for row in rows]

    def attempts_for_workflow(self, correlation_id: str) -> list[Attempt]:
        """Every attempt of a workflow, whatever the account (for operators)."""
        parameters = {"correlation_id": correlation_id}
        with self._transaction("reading attempts", write=False) as connection:
            rows = connection.execute(_ATTEMPTS_FOR_WORKFLOW, parameters).mappings().all()
        return [_attempt_from_row(row) for row in rows]

    def find_attempt(self, client_order_id: str) -> Attempt | None:
        """The attempt recorded under ``client_order_id``, if any."""
        parameters = {"client_order_id": client_order_id}
        with self._transaction("reading an attempt", write=False) as connection:
            row = connection.execute(_FIND_ATTEMPT, parameters).mappings().one_or_none()
        return None if row is None else _attempt_from_row(row)

    def add_pending(self, attempt: Attempt) -> Attempt:
        """Record ``attempt`` (PENDING) before its order is sent; an existing one wins."""
        try:
            with self._transaction("recording a pending attempt", write=True) as connection:
                connection.execute(_INSERT_ATTEMPT, _attempt_values(attempt))
            return attempt
        except sa_exc.IntegrityError:
            existing = self.find_attempt(attempt.client_order_id)
            if existing is None:
                raise
            return existing

    def save(self, attempt: Attempt) -> Attempt:
        """Store ``attempt``'s new state and broker facts (by ``client_order_id``)."""
        values = _attempt_values(attempt)
        parameters = {name: values[name] for name in _ATTEMPT_CHANGES}
        parameters["b_client_order_id"] = attempt.client_order_id
        with self._transaction("updating an attempt", write=True) as connection:
            connection.execute(_SAVE_ATTEMPT, parameters)
        return attempt

    def unsettled(self) -> list[Attempt]:
        """Attempts whose broker state may differ from ours: PENDING, UNKNOWN, SUBMITTED."""
        with self._transaction("reading unsettled attempts", write=False) as connection:
            rows = connection.execute(_UNSETTLED).mappings().all()
        return [_attempt_from_row(row) for row in rows]

    # -------------------------------------------------------------- internals

    def _translated(self, what: str) -> AbstractContextManager[None]:
        return outage_as(AttemptStoreUnavailableError, what)

    def _transaction(self, what: str, *, write: bool) -> AbstractContextManager[Connection]:
        return transaction(self._engine, AttemptStoreUnavailableError, what, write=write)


# ------------------------------------------------------------------ row mapping


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _orders_json(orders: tuple[PlannedOrder, ...]) -> str:
    return json.dumps(
        [
            {
                "leg": order.leg,
                "symbol": order.symbol,
                "side": order.side.value,
                "qty": str(order.qty),
                "price": str(order.price),
                "fractionable": order.fractionable,
                "full_liquidation": order.full_liquidation,
                "client_order_id": order.client_order_id,
                "error": order.error,
                "skipped": order.skipped,
            }
            for order in orders
        ],
        sort_keys=True,
    )


def _orders_from_json(text: str) -> tuple[PlannedOrder, ...]:
    return tuple(
        PlannedOrder(
            leg=int(item["leg"]),
            symbol=item["symbol"],
            side=OrderSide(item["side"]),
            qty=Decimal(item["qty"]),
            price=Decimal(item["price"]),
            fractionable=bool(item["fractionable"]),
            full_liquidation=bool(item["full_liquidation"]),
            client_order_id=item["client_order_id"],
            error=item["error"],
            skipped=item["skipped"],
        )
        for item in json.loads(text)
    )


def _run_values(run: ExecutionRun, now: datetime) -> dict[str, Any]:
    return {
        "account_id": run.account_id,
        "correlation_id": run.correlation_id,
        "plan_hash": run.plan_hash,
        "input_event_id": run.input_event_id,
        "status": run.status.value,
        "reason": run.reason,
        "detail": run.detail,
        "refused_symbols": json.dumps(list(run.refused_symbols)),
        "orders": _orders_json(run.orders),
        "trading_day": run.trading_day,
        "reserved_value": run.reserved_value,
        "traded_value": run.traded_value,
        "started_at": run.started_at,
        "updated_at": now,
    }


def _run_from_row(row: Mapping[Any, Any]) -> ExecutionRun:
    started = as_utc(row["started_at"])
    assert started is not None
    return ExecutionRun(
        account_id=row["account_id"],
        correlation_id=row["correlation_id"],
        plan_hash=row["plan_hash"],
        input_event_id=row["input_event_id"],
        status=RunStatus(row["status"]),
        orders=_orders_from_json(row["orders"]),
        trading_day=row["trading_day"],
        reserved_value=row["reserved_value"],
        started_at=started,
        reason=row["reason"],
        detail=row["detail"],
        refused_symbols=tuple(json.loads(row["refused_symbols"])),
        traded_value=row["traded_value"],
    )


def _attempt_values(attempt: Attempt) -> dict[str, Any]:
    return {
        "account_id": attempt.account_id,
        "correlation_id": attempt.correlation_id,
        "leg": attempt.leg,
        "attempt": attempt.attempt,
        "client_order_id": attempt.client_order_id,
        "symbol": attempt.symbol,
        "side": attempt.side.value,
        "order_type": attempt.order_type.value,
        "qty": attempt.qty,
        "limit_price": attempt.limit_price,
        "close_position": attempt.close_position,
        "state": attempt.state.value,
        "broker_order_id": attempt.broker_order_id,
        "broker_status": attempt.broker_status,
        "filled_qty": attempt.filled_qty,
        "filled_avg_price": attempt.filled_avg_price,
        "submitted_at": attempt.submitted_at,
        "filled_at": attempt.filled_at,
        "error": attempt.error,
        "created_at": attempt.created_at,
        "updated_at": attempt.updated_at,
    }


def _attempt_from_row(row: Mapping[Any, Any]) -> Attempt:
    created, updated = as_utc(row["created_at"]), as_utc(row["updated_at"])
    assert created is not None and updated is not None
    return Attempt(
        account_id=row["account_id"],
        correlation_id=row["correlation_id"],
        leg=row["leg"],
        attempt=row["attempt"],
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=OrderSide(row["side"]),
        order_type=OrderType(row["order_type"]),
        qty=row["qty"],
        limit_price=row["limit_price"],
        close_position=bool(row["close_position"]),
        state=AttemptState(row["state"]),
        created_at=created,
        updated_at=updated,
        broker_order_id=row["broker_order_id"],
        broker_status=row["broker_status"],
        filled_qty=row["filled_qty"],
        filled_avg_price=row["filled_avg_price"],
        submitted_at=as_utc(row["submitted_at"]),
        filled_at=as_utc(row["filled_at"]),
        error=row["error"],
    )

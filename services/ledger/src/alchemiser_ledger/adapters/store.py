"""The ledger's store: reads over SQLAlchemy Core, and the units of work the handlers return.

Reads are one short read transaction each, never held across a handler. Writes are units of
work (:func:`signal_recorded`, :func:`trades_booked`, :func:`workflow_finished`,
:func:`snapshot_taken`) that a handler returns in its ``HandlerResult``: the runtime runs them
inside its inbox transaction with the input's inbox row, so the ledger records an event
exactly when the runtime marks it handled. Rows are keyed so that recording the same thing
twice is a no-op (``INSERT ... ON CONFLICT DO NOTHING``), except the session's snapshot,
which a later workflow of the same session replaces (it is the later state of the account).

Transient database failures of a read raise :class:`LedgerUnavailableError` (a
``TransientError``), so the runtime retries the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from alchemiser_common.db import (
    as_utc,
    insert_ignoring_duplicates,
    outage_as,
    transaction,
    upgrade_to_head,
)
from alchemiser_common.inbox import UnitOfWork
from alchemiser_ledger.adapters.schema import (
    LEDGER_VERSION_TABLE,
    allocation_table,
    fill_part_table,
    metadata,
    position_table,
    snapshot_table,
    target_table,
    trade_table,
    workflow_table,
)
from alchemiser_ledger.domain import DailySnapshot, Fill, Side, StrategyBook, StrategyTargets
from alchemiser_ledger.exceptions import LedgerUnavailableError

__all__ = [
    "LedgerStore",
    "SnapshotRow",
    "TradeRow",
    "WorkflowRow",
    "signal_recorded",
    "snapshot_taken",
    "trades_booked",
    "workflow_finished",
]

_MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    """What the ledger knows of one workflow."""

    account_id: str
    correlation_id: str
    session: date | None
    signal_at: datetime | None
    equity_before: Decimal | None
    outcome: str | None
    failure_step: str | None
    reason: str | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One order of a settled workflow; a fill when ``qty`` (filled) is above zero.

    ``parts`` maps each strategy file to its quantity and realised P&L (fees deducted).
    """

    account_id: str
    client_order_id: str
    seq: int
    correlation_id: str
    session: date | None
    leg: int
    broker_order_id: str | None
    symbol: str
    side: str
    order_type: str
    requested_qty: Decimal | None
    notional: Decimal | None
    qty: Decimal
    price: Decimal | None
    fees: Decimal
    status: str
    error: str | None
    filled_at: datetime | None
    parts: Mapping[str, tuple[Decimal, Decimal]]

    @property
    def is_fill(self) -> bool:
        """Whether anything filled (a quantity at a price)."""
        return self.qty > 0 and self.price is not None

    def as_fill(self) -> Fill:
        """This row as the domain's :class:`Fill` (only when :attr:`is_fill`)."""
        assert self.price is not None
        return Fill(
            symbol=self.symbol,
            side=Side(self.side),
            qty=self.qty,
            price=self.price,
            fees=self.fees,
            client_order_id=self.client_order_id,
            broker_order_id=self.broker_order_id,
        )


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """The account at the end of a session's (last) workflow."""

    account_id: str
    session: date
    correlation_id: str
    equity: Decimal
    cash: Decimal
    taken_at: datetime
    positions: Mapping[str, tuple[Decimal, Decimal]]
    """symbol -> (quantity, price)."""

    def as_daily(self) -> DailySnapshot:
        """This snapshot as the domain's :class:`DailySnapshot`."""
        return DailySnapshot(
            session=self.session,
            equity=self.equity,
            cash=self.cash,
            positions={symbol: qty for symbol, (qty, _) in self.positions.items()},
            closes={symbol: price for symbol, (_, price) in self.positions.items()},
        )


class LedgerStore:
    """Reads the ledger's tables (PostgreSQL or SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The engine the store reads through."""
        return self._engine

    def migrate(self) -> None:
        """Create or upgrade the ledger's tables (Alembic, own version table)."""
        with self._translated("migrating the ledger tables"):
            upgrade_to_head(
                self._engine,
                script_location=_MIGRATIONS,
                version_table=LEDGER_VERSION_TABLE,
                target_metadata=metadata,
            )

    def is_migrated(self) -> bool:
        """Whether the ledger's tables exist in this database."""
        with self._translated("inspecting the database"):
            return sa.inspect(self._engine).has_table(workflow_table.name)

    # -- one workflow ----------------------------------------------------------------------
    def workflow(self, account_id: str, correlation_id: str) -> WorkflowRow | None:
        """The workflow's row, or ``None``."""
        query = sa.select(workflow_table).where(
            workflow_table.c.account_id == account_id,
            workflow_table.c.correlation_id == correlation_id,
        )
        with self._read("reading a workflow") as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _workflow_row(row)

    def targets(self, account_id: str, correlation_id: str) -> StrategyTargets | None:
        """The workflow's targets per strategy file (``None``: no signal recorded)."""
        allocations = sa.select(allocation_table.c.strategy, allocation_table.c.allocation).where(
            allocation_table.c.account_id == account_id,
            allocation_table.c.correlation_id == correlation_id,
        )
        weights = sa.select(
            target_table.c.strategy, target_table.c.symbol, target_table.c.weight
        ).where(
            target_table.c.account_id == account_id,
            target_table.c.correlation_id == correlation_id,
        )
        with self._read("reading the workflow's targets") as connection:
            if not _signal_recorded(connection, account_id, correlation_id):
                return None
            allocation_rows = connection.execute(allocations).all()
            weight_rows = connection.execute(weights).all()
        per_strategy: dict[str, dict[str, Decimal]] = {}
        for strategy, symbol, weight in weight_rows:
            per_strategy.setdefault(strategy, {})[symbol] = weight
        return StrategyTargets(
            allocations={strategy: allocation for strategy, allocation in allocation_rows},
            weights=per_strategy,
        )

    def workflow_trades(self, account_id: str, correlation_id: str) -> list[TradeRow]:
        """The workflow's trade rows in booking order."""
        return self.trades(account_id, correlation_id=correlation_id, fills_only=False)

    def allocations(self, account_id: str, correlation_id: str) -> list[tuple[str, Decimal]]:
        """The workflow's strategy allocations, by strategy name."""
        query = (
            sa.select(allocation_table.c.strategy, allocation_table.c.allocation)
            .where(
                allocation_table.c.account_id == account_id,
                allocation_table.c.correlation_id == correlation_id,
            )
            .order_by(allocation_table.c.strategy)
        )
        with self._read("reading the allocations") as connection:
            return [(strategy, allocation) for strategy, allocation in connection.execute(query)]

    # -- the account's history -------------------------------------------------------------
    def accounts(self) -> list[str]:
        """Every account with a workflow in the ledger, sorted."""
        query = sa.select(workflow_table.c.account_id).distinct().order_by("account_id")
        with self._read("reading the accounts") as connection:
            return list(connection.execute(query).scalars())

    def inception_equity(self, account_id: str) -> Decimal | None:
        """The account's equity before its first recorded workflow (the P&L base)."""
        query = (
            sa.select(workflow_table.c.equity_before)
            .where(
                workflow_table.c.account_id == account_id,
                workflow_table.c.equity_before.is_not(None),
            )
            .order_by(workflow_table.c.signal_at, workflow_table.c.correlation_id)
            .limit(1)
        )
        with self._read("reading the inception") as connection:
            value: Decimal | None = connection.execute(query).scalar_one_or_none()
        return value

    def trades(
        self,
        account_id: str,
        *,
        correlation_id: str | None = None,
        start: date | None = None,
        end: date | None = None,
        fills_only: bool = True,
    ) -> list[TradeRow]:
        """The account's trade rows in booking order (fills only unless told), by session."""
        trades = trade_table.c
        query = sa.select(trade_table).where(trades.account_id == account_id).order_by(trades.seq)
        if correlation_id is not None:
            query = query.where(trades.correlation_id == correlation_id)
        if start is not None:
            query = query.where(trades.session >= start)
        if end is not None:
            query = query.where(trades.session <= end)
        parts_query = sa.select(fill_part_table).where(fill_part_table.c.account_id == account_id)
        with self._read("reading the trades") as connection:
            rows = connection.execute(query).mappings().all()
            parts: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}
            for part in connection.execute(parts_query).mappings():
                parts.setdefault(part["client_order_id"], {})[part["strategy"]] = (
                    part["qty"],
                    part["realised"],
                )
        found = [_trade_row(row, parts.get(row["client_order_id"], {})) for row in rows]
        # Decimals are text on SQLite: compare them here, not in SQL.
        return [trade for trade in found if trade.is_fill] if fills_only else found

    def book(self, account_id: str) -> tuple[StrategyBook, int]:
        """The account's strategy book after every booked fill, and the next ``seq``."""
        book = StrategyBook()
        next_seq = 1
        for trade in self.trades(account_id, fills_only=False):
            next_seq = trade.seq + 1
            if trade.is_fill and trade.parts:
                book, _ = book.apply(
                    trade.as_fill(), {strategy: qty for strategy, (qty, _) in trade.parts.items()}
                )
        return book, next_seq

    def snapshots(self, account_id: str) -> list[SnapshotRow]:
        """The account's snapshots, by session."""
        query = (
            sa.select(snapshot_table)
            .where(snapshot_table.c.account_id == account_id)
            .order_by(snapshot_table.c.session)
        )
        positions = sa.select(position_table).where(position_table.c.account_id == account_id)
        with self._read("reading the snapshots") as connection:
            rows = connection.execute(query).mappings().all()
            held: dict[date, dict[str, tuple[Decimal, Decimal]]] = {}
            for position in connection.execute(positions).mappings():
                held.setdefault(position["session"], {})[position["symbol"]] = (
                    position["qty"],
                    position["price"],
                )
        return [
            SnapshotRow(
                account_id=row["account_id"],
                session=row["session"],
                correlation_id=row["correlation_id"],
                equity=row["equity"],
                cash=row["cash"],
                taken_at=_utc(row["taken_at"]),
                positions=held.get(row["session"], {}),
            )
            for row in rows
        ]

    # -- plumbing --------------------------------------------------------------------------
    def _translated(self, what: str) -> AbstractContextManager[None]:
        return outage_as(LedgerUnavailableError, what)

    def _read(self, what: str) -> AbstractContextManager[Connection]:
        return transaction(self._engine, LedgerUnavailableError, what)


def _signal_recorded(connection: Connection, account_id: str, correlation_id: str) -> bool:
    """Whether the workflow's signal was recorded (its ``signal_at`` is set)."""
    query = sa.select(workflow_table.c.signal_at).where(
        workflow_table.c.account_id == account_id,
        workflow_table.c.correlation_id == correlation_id,
    )
    return connection.execute(query).scalar_one_or_none() is not None


def _utc(moment: datetime) -> datetime:
    converted = as_utc(moment)
    assert converted is not None
    return converted


def _workflow_row(row: sa.RowMapping) -> WorkflowRow:
    return WorkflowRow(
        account_id=row["account_id"],
        correlation_id=row["correlation_id"],
        session=row["session"],
        signal_at=as_utc(row["signal_at"]),
        equity_before=row["equity_before"],
        outcome=row["outcome"],
        failure_step=row["failure_step"],
        reason=row["reason"],
        finished_at=as_utc(row["finished_at"]),
    )


def _trade_row(row: sa.RowMapping, parts: Mapping[str, tuple[Decimal, Decimal]]) -> TradeRow:
    return TradeRow(
        account_id=row["account_id"],
        client_order_id=row["client_order_id"],
        seq=row["seq"],
        correlation_id=row["correlation_id"],
        session=row["session"],
        leg=row["leg"],
        broker_order_id=row["broker_order_id"],
        symbol=row["symbol"],
        side=row["side"],
        order_type=row["order_type"],
        requested_qty=row["requested_qty"],
        notional=row["notional"],
        qty=row["qty"],
        price=row["price"],
        fees=row["fees"],
        status=row["status"],
        error=row["error"],
        filled_at=as_utc(row["filled_at"]),
        parts=dict(sorted(parts.items())),
    )


def signal_recorded(
    account_id: str,
    correlation_id: str,
    *,
    session: date,
    signal_at: datetime,
    equity_before: Decimal | None,
    allocations: Sequence[tuple[str, Decimal, str]],
    targets: Mapping[str, Mapping[str, Decimal]],
) -> UnitOfWork:
    """Record a workflow's signal: its session, the equity before it and its targets.

    ``allocations`` is ``(strategy, allocation, status)`` per strategy file; ``targets`` each
    strategy's own weight per symbol. A workflow row an outcome created first is completed.
    """
    workflow = {
        "account_id": account_id,
        "correlation_id": correlation_id,
        "session": session,
        "signal_at": signal_at,
        "equity_before": equity_before,
    }
    allocation_rows = [
        {
            "account_id": account_id,
            "correlation_id": correlation_id,
            "strategy": strategy,
            "allocation": allocation,
            "status": status,
        }
        for strategy, allocation, status in allocations
    ]
    target_rows = [
        {
            "account_id": account_id,
            "correlation_id": correlation_id,
            "strategy": strategy,
            "symbol": symbol,
            "weight": weight,
        }
        for strategy, weights in sorted(targets.items())
        for symbol, weight in sorted(weights.items())
    ]

    def record(connection: Connection) -> None:
        insert_ignoring_duplicates(connection, workflow_table, [workflow])
        connection.execute(
            sa.update(workflow_table)
            .where(
                workflow_table.c.account_id == account_id,
                workflow_table.c.correlation_id == correlation_id,
                workflow_table.c.signal_at.is_(None),
            )
            .values(session=session, signal_at=signal_at, equity_before=equity_before)
        )
        insert_ignoring_duplicates(connection, allocation_table, allocation_rows)
        insert_ignoring_duplicates(connection, target_table, target_rows)

    return record


def trades_booked(
    account_id: str, rows: Sequence[Mapping[str, Any]], parts: Sequence[Mapping[str, Any]]
) -> UnitOfWork:
    """Record a workflow's trade rows (``ledger_trades`` columns) and their strategy parts."""
    trade_rows = [{"account_id": account_id, **row} for row in rows]
    part_rows = [{"account_id": account_id, **part} for part in parts]

    def record(connection: Connection) -> None:
        insert_ignoring_duplicates(connection, trade_table, trade_rows)
        insert_ignoring_duplicates(connection, fill_part_table, part_rows)

    return record


def workflow_finished(
    account_id: str,
    correlation_id: str,
    *,
    outcome: str,
    finished_at: datetime,
    failure_step: str | None = None,
    reason: str | None = None,
) -> UnitOfWork:
    """Record a workflow's outcome (the first outcome recorded stays)."""
    values = {
        "outcome": outcome,
        "finished_at": finished_at,
        "failure_step": failure_step,
        "reason": reason,
    }

    def record(connection: Connection) -> None:
        insert_ignoring_duplicates(
            connection,
            workflow_table,
            [{"account_id": account_id, "correlation_id": correlation_id}],
        )
        connection.execute(
            sa.update(workflow_table)
            .where(
                workflow_table.c.account_id == account_id,
                workflow_table.c.correlation_id == correlation_id,
                workflow_table.c.outcome.is_(None),
            )
            .values(**values)
        )

    return record


def snapshot_taken(
    account_id: str,
    session: date,
    correlation_id: str,
    *,
    equity: Decimal,
    cash: Decimal,
    taken_at: datetime,
    positions: Mapping[str, tuple[Decimal, Decimal]],
) -> UnitOfWork:
    """Record the account at the end of a workflow as the session's snapshot (replacing an
    earlier workflow's of the same session). ``positions``: symbol -> (quantity, price)."""
    keys = (snapshot_table.c.account_id == account_id, snapshot_table.c.session == session)
    position_keys = (
        position_table.c.account_id == account_id,
        position_table.c.session == session,
    )
    position_rows = [
        {"account_id": account_id, "session": session, "symbol": symbol, "qty": qty, "price": price}
        for symbol, (qty, price) in sorted(positions.items())
    ]

    def record(connection: Connection) -> None:
        connection.execute(sa.delete(position_table).where(*position_keys))
        connection.execute(sa.delete(snapshot_table).where(*keys))
        connection.execute(
            sa.insert(snapshot_table).values(
                account_id=account_id,
                session=session,
                correlation_id=correlation_id,
                equity=equity,
                cash=cash,
                taken_at=taken_at,
            )
        )
        if position_rows:
            connection.execute(sa.insert(position_table), position_rows)

    return record

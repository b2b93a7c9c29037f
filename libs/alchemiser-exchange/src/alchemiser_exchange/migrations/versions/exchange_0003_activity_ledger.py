"""Add ``exchange_activity`` (the accounts' ledger) and ``exchange_account.first_session_date``.

The portfolio history replays the ledger, so the accounts already there get one:

* one ``FILL`` per order with fills, in its session, at its average price, with its fees (an
  order filled in several sessions or parts counts once, in the session it was placed in:
  earlier versions kept no more than that);
* a ``JNLC`` and ``JNLS`` per account and symbol for what the fills do not explain (the
  operator's ``set_cash``/``set_position``, cent differences of orders filled in parts),
  dated the account's first session, so replaying the ledger ends at the stored cash and
  positions. An account with no session yet gets them dated 0001-01-01: before any session.

The first session is the earliest of the account's clock and its orders' sessions.

Revision ID: exchange_0003
Revises: exchange_0002
Create Date: 2027-01-10
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "exchange_0003"
down_revision: str | None = "exchange_0002"
branch_labels: str | None = None
depends_on: str | None = None

_CENT = Decimal("0.01")


def _decimal() -> sa.types.TypeEngine[Any]:
    """Exact decimals: unconstrained NUMERIC, text on SQLite (see ``ExactDecimal``)."""
    return sa.Numeric().with_variant(sa.String(), "sqlite")


def upgrade() -> None:
    """Add the column and the table, then write the ledger of the accounts already there."""
    op.add_column("exchange_account", sa.Column("first_session_date", sa.Date(), nullable=True))
    op.create_table(
        "exchange_activity",
        sa.Column("account_number", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("activity_type", sa.String(8), nullable=False),
        sa.Column("session_date", sa.Date(), nullable=False),
        sa.Column("broker_order_id", sa.String(64), nullable=True),
        sa.Column("symbol", sa.String(32), nullable=True),
        sa.Column("position_change", _decimal(), nullable=False),
        sa.Column("cash_change", _decimal(), nullable=False),
        sa.Column("price", _decimal(), nullable=True),
        sa.Column("fee", _decimal(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_number", "sequence", name="pk_exchange_activity"),
        sa.ForeignKeyConstraint(
            ["account_number"],
            ["exchange_account.account_number"],
            name="fk_exchange_activity_account",
        ),
    )
    _write_ledgers(op.get_bind())


def downgrade() -> None:
    """Drop the table and the column."""
    op.drop_table("exchange_activity")
    with op.batch_alter_table("exchange_account") as batch:
        batch.drop_column("first_session_date")


# -- the backfill: plain tables of this revision (the application's may change later) ---------

_account = sa.table(
    "exchange_account",
    sa.column("account_number", sa.String()),
    sa.column("cash", _decimal()),
    sa.column("starting_cash", _decimal()),
    sa.column("session_date", sa.Date()),
    sa.column("first_session_date", sa.Date()),
)
_position = sa.table(
    "exchange_position",
    sa.column("account_number", sa.String()),
    sa.column("symbol", sa.String()),
    sa.column("qty", _decimal()),
    sa.column("avg_entry_price", _decimal()),
)
_order = sa.table(
    "exchange_order",
    sa.column("account_number", sa.String()),
    sa.column("sequence", sa.BigInteger()),
    sa.column("broker_order_id", sa.String()),
    sa.column("symbol", sa.String()),
    sa.column("side", sa.String()),
    sa.column("filled_qty", _decimal()),
    sa.column("filled_avg_price", _decimal()),
    sa.column("fees", _decimal()),
    sa.column("session_date", sa.Date()),
    sa.column("filled_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_activity = sa.table(
    "exchange_activity",
    sa.column("account_number", sa.String()),
    sa.column("sequence", sa.BigInteger()),
    sa.column("activity_type", sa.String()),
    sa.column("session_date", sa.Date()),
    sa.column("broker_order_id", sa.String()),
    sa.column("symbol", sa.String()),
    sa.column("position_change", _decimal()),
    sa.column("cash_change", _decimal()),
    sa.column("price", _decimal()),
    sa.column("fee", _decimal()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def _exact(value: Any) -> Decimal:
    """A stored decimal (text on SQLite) as a ``Decimal``."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _write_ledgers(connection: Connection) -> None:
    """Each account's first session, its orders' fills and the journals that reconcile them."""
    now = datetime.now(UTC)
    for account in connection.execute(sa.select(_account)).mappings().all():
        number = account["account_number"]
        fills = (
            connection.execute(
                sa.select(_order)
                .where(_order.c.account_number == number, _order.c.filled_avg_price.is_not(None))
                .order_by(_order.c.sequence)
            )
            .mappings()
            .all()
        )
        placed = connection.execute(
            sa.select(sa.func.min(_order.c.session_date)).where(_order.c.account_number == number)
        ).scalar_one_or_none()
        known = [day for day in (account["session_date"], placed) if day is not None]
        first = min(known) if known else None
        connection.execute(
            sa.update(_account)
            .where(_account.c.account_number == number)
            .values(first_session_date=first)
        )
        cash = _exact(account["starting_cash"])
        held: dict[str, Decimal] = {}
        rows: list[dict[str, Any]] = []
        for fill in fills:
            qty, price, fee = (
                _exact(fill[name]) for name in ("filled_qty", "filled_avg_price", "fees")
            )
            amount = (qty * price).quantize(_CENT, rounding=ROUND_HALF_EVEN)
            moved, change = (qty, -amount - fee) if fill["side"] == "buy" else (-qty, amount - fee)
            cash += change
            held[fill["symbol"]] = held.get(fill["symbol"], Decimal(0)) + moved
            rows.append(
                _row(
                    "FILL",
                    fill["session_date"],
                    fill["filled_at"] or fill["updated_at"],
                    broker_order_id=fill["broker_order_id"],
                    symbol=fill["symbol"],
                    position_change=moved,
                    cash_change=change,
                    price=price,
                    fee=fee,
                )
            )
        opening = first or date.min
        journals: list[dict[str, Any]] = []
        if _exact(account["cash"]) != cash:
            journals.append(_row("JNLC", opening, now, cash_change=_exact(account["cash"]) - cash))
        positions = connection.execute(
            sa.select(_position).where(_position.c.account_number == number)
        ).mappings()
        stored = {
            row["symbol"]: (_exact(row["qty"]), _exact(row["avg_entry_price"])) for row in positions
        }
        for symbol in sorted(set(held) | set(stored)):
            qty, entry = stored.get(symbol, (Decimal(0), None))
            if qty != held.get(symbol, Decimal(0)):
                journals.append(
                    _row(
                        "JNLS",
                        opening,
                        now,
                        symbol=symbol,
                        position_change=qty - held.get(symbol, Decimal(0)),
                        price=entry,
                    )
                )
        sqlite = connection.dialect.name == "sqlite"
        for sequence, row in enumerate(journals + rows, start=1):
            values = {
                name: str(value) if sqlite and isinstance(value, Decimal) else value
                for name, value in row.items()
            }
            connection.execute(
                sa.insert(_activity).values(account_number=number, sequence=sequence, **values)
            )


def _row(kind: str, session: date, at: datetime, **values: Any) -> dict[str, Any]:
    """One ledger row; decimals as ``Decimal`` (text on SQLite when written)."""
    row: dict[str, Any] = {
        "activity_type": kind,
        "session_date": session,
        "broker_order_id": None,
        "symbol": None,
        "position_change": Decimal(0),
        "cash_change": Decimal(0),
        "price": None,
        "fee": Decimal(0),
        "created_at": at,
    }
    return row | values

"""The ledger service's tables (SQLAlchemy Core); created by the migrations beside them.

Every table is keyed by the account, so one database holds any number of accounts:

* ``ledger_workflows`` — one row per workflow the ledger heard of: its session (the signal's
  ``as_of``), when the signal came, the account's equity then (the first one is the ledger's
  inception value) and its outcome once known.
* ``ledger_allocations`` / ``ledger_targets`` — each strategy file's allocation and its own
  target weights in that workflow (from ``strategy.signal.generated.v1``): what attribution
  splits fills by.
* ``ledger_trades`` — the trade ledger: one row per order of a settled workflow, with its
  ``client_order_id``, broker order id, symbol, side, filled quantity, average price and fees,
  the workflow and the session (a fill is a row with a filled quantity). ``seq`` orders the
  rows as they were booked.
* ``ledger_fill_parts`` — each fill split over the strategy files (quantity and the realised
  P&L of that part, fees deducted).
* ``ledger_snapshots`` / ``ledger_snapshot_positions`` — the account at the end of each
  workflow, read from the broker (equity, cash; each position's quantity and price).
* ``ledger_notifications`` — the notification outbox (see :mod:`alchemiser_ledger.notify`).

Decimals are exact in both back ends (:class:`~alchemiser_common.db.ExactDecimal`). The
primary keys decide duplicates (``INSERT ... ON CONFLICT DO NOTHING``). Keep this module and
``migrations/versions`` in step (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa

from alchemiser_common.db import ExactDecimal

__all__ = [
    "LEDGER_VERSION_TABLE",
    "allocation_table",
    "fill_part_table",
    "metadata",
    "notification_table",
    "position_table",
    "snapshot_table",
    "target_table",
    "trade_table",
    "workflow_table",
]

LEDGER_VERSION_TABLE = "alembic_version_ledger"
"""Alembic version table of the ledger's migration tree."""

metadata = sa.MetaData()
"""The ledger's tables only."""

_ACCOUNT = 64
_ID = 64

workflow_table = sa.Table(
    "ledger_workflows",
    metadata,
    sa.Column("account_id", sa.String(_ACCOUNT), nullable=False),
    sa.Column("correlation_id", sa.String(_ID), nullable=False),
    sa.Column("session", sa.Date(), nullable=True),
    sa.Column("signal_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("equity_before", ExactDecimal(), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("failure_step", sa.String(32), nullable=True),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("account_id", "correlation_id", name="pk_ledger_workflows"),
)

allocation_table = sa.Table(
    "ledger_allocations",
    metadata,
    sa.Column("account_id", sa.String(_ACCOUNT), nullable=False),
    sa.Column("correlation_id", sa.String(_ID), nullable=False),
    sa.Column("strategy", sa.String(255), nullable=False),
    sa.Column("allocation", ExactDecimal(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.PrimaryKeyConstraint(
        "account_id", "correlation_id", "strategy", name="pk_ledger_allocations"
    ),
)

target_table = sa.Table(
    "ledger_targets",
    metadata,
    sa.Column("account_id", sa.String(_ACCOUNT), nullable=False),
    sa.Column("correlation_id", sa.String(_ID), nullable=False),
    sa.Column("strategy", sa.String(255), nullable=False),
    sa.Column("symbol", sa.String(16), nullable=False),
    sa.Column("weight", ExactDecimal(), nullable=False),
    sa.PrimaryKeyConstraint(
        "account_id", "correlation_id", "strategy", "symbol", name="pk_ledger_targets"
    ),
)

trade_table = sa.Table(
    "ledger_trades",
    metadata,
    sa.Column("account_id", sa.String(_ACCOUNT), nullable=False),
    sa.Column("client_order_id", sa.String(128), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("correlation_id", sa.String(_ID), nullable=False),
    sa.Column("session", sa.Date(), nullable=True),
    sa.Column("leg", sa.Integer(), nullable=False),
    sa.Column("broker_order_id", sa.String(128), nullable=True),
    sa.Column("symbol", sa.String(16), nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("order_type", sa.String(16), nullable=False),
    sa.Column("requested_qty", ExactDecimal(), nullable=True),
    sa.Column("notional", ExactDecimal(), nullable=True),
    sa.Column("qty", ExactDecimal(), nullable=False),
    sa.Column("price", ExactDecimal(), nullable=True),
    sa.Column("fees", ExactDecimal(), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("account_id", "client_order_id", name="pk_ledger_trades"),
    sa.UniqueConstraint("account_id", "seq", name="uq_ledger_trades_account_seq"),
)
"""Every order of every settled workflow; a fill is a row with ``qty`` (the filled quantity)
above zero and its average ``price``; orders that filled nothing are kept (``qty`` 0) so the
notification can list them."""

fill_part_table = sa.Table(
    "ledger_fill_parts",
    metadata,
    sa.Column("account_id", sa.String(_ACCOUNT), nullable=False),
    sa.Column("client_order_id", sa.String(128), nullable=False),
    sa.Column("strategy", sa.String(255), nullable=False),
    sa.Column("qty", ExactDecimal(), nullable=False),
    sa.Column("realised", ExactDecimal(), nullable=False),
    sa.PrimaryKeyConstraint(
        "account_id", "client_order_id", "strategy", name="pk_ledger_fill_parts"
    ),
)

snapshot_table = sa.Table(
    "ledger_snapshots",
    metadata,
    sa.Column("account_id", sa.String(_ACCOUNT), nullable=False),
    sa.Column("session", sa.Date(), nullable=False),
    sa.Column("correlation_id", sa.String(_ID), nullable=False),
    sa.Column("equity", ExactDecimal(), nullable=False),
    sa.Column("cash", ExactDecimal(), nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("account_id", "session", name="pk_ledger_snapshots"),
)

position_table = sa.Table(
    "ledger_snapshot_positions",
    metadata,
    sa.Column("account_id", sa.String(_ACCOUNT), nullable=False),
    sa.Column("session", sa.Date(), nullable=False),
    sa.Column("symbol", sa.String(16), nullable=False),
    sa.Column("qty", ExactDecimal(), nullable=False),
    sa.Column("price", ExactDecimal(), nullable=False),
    sa.PrimaryKeyConstraint("account_id", "session", "symbol", name="pk_ledger_snapshot_positions"),
)

notification_table = sa.Table(
    "ledger_notifications",
    metadata,
    sa.Column("notification_id", sa.String(128), nullable=False),
    sa.Column("account_id", sa.String(_ACCOUNT), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.Text(), nullable=False),
    sa.Column("body_text", sa.Text(), nullable=False),
    sa.Column("body_html", sa.Text(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("notification_id", "channel", name="pk_ledger_notifications"),
)
"""One row per (notification, channel): ``status`` is ``pending`` (to send at
``next_attempt_at``), ``sending`` (claimed), ``sent``, ``failed`` (refused for good) or
``uncertain`` (the process stopped mid-send: never sent again, so at most once)."""

sa.Index(
    "ix_ledger_notifications_due",
    notification_table.c.status,
    notification_table.c.next_attempt_at,
)

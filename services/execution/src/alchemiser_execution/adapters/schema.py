"""The execution service's tables (SQLAlchemy Core); created by the migrations beside them.

* ``execution_runs`` — one row per (account, workflow): the plan hash it executes, the sized
  orders (so a resumed run places exactly what the first one planned), its status, and the
  value it reserved or traded on its UTC trading day (the daily ledger the circuit breaker
  sums).
* ``execution_order_attempts`` — one row per order attempt, written PENDING before the order
  is sent. ``(account_id, correlation_id, leg, attempt)`` and ``client_order_id`` are unique.
* ``execution_workflows`` — one row per workflow seen started on ``workflow.started.v1`` or
  failed on ``workflow.failed.v1`` (``(account_id, correlation_id)`` is the primary key;
  ``seen_at`` is when either was first recorded): execution acts only on plans of a workflow
  recorded here, and not on a new plan of one that failed (``failed_at`` set, with the first
  failure's step and reason).

Keep this module and ``migrations/versions`` in step (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa

from alchemiser_common.db import ExactDecimal

__all__ = [
    "EXECUTION_VERSION_TABLE",
    "attempt_table",
    "metadata",
    "run_table",
    "workflow_table",
]

EXECUTION_VERSION_TABLE = "alembic_version_execution"
"""Alembic version table of the execution migration tree."""

metadata = sa.MetaData()

run_table = sa.Table(
    "execution_runs",
    metadata,
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("correlation_id", sa.String(36), nullable=False),
    sa.Column("plan_hash", sa.String(64), nullable=False),
    sa.Column("input_event_id", sa.String(36), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(64), nullable=True),
    sa.Column("detail", sa.Text(), nullable=True),
    sa.Column("refused_symbols", sa.Text(), nullable=False),
    sa.Column("orders", sa.Text(), nullable=False),
    sa.Column("trading_day", sa.Date(), nullable=False),
    sa.Column("reserved_value", ExactDecimal(), nullable=False),
    sa.Column("traded_value", ExactDecimal(), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("account_id", "correlation_id", name="pk_execution_runs"),
    sa.Index("ix_execution_runs_account_day", "account_id", "trading_day"),
    # The account's latest change, read newest first (migration execution_0004).
    sa.Index("ix_execution_runs_account_updated", "account_id", "updated_at"),
)

attempt_table = sa.Table(
    "execution_order_attempts",
    metadata,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("correlation_id", sa.String(36), nullable=False),
    sa.Column("leg", sa.Integer(), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("client_order_id", sa.String(48), nullable=False),
    sa.Column("symbol", sa.String(32), nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("order_type", sa.String(16), nullable=False),
    sa.Column("qty", ExactDecimal(), nullable=False),
    sa.Column("limit_price", ExactDecimal(), nullable=True),
    sa.Column("close_position", sa.Boolean(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("broker_order_id", sa.String(64), nullable=True),
    sa.Column("broker_status", sa.String(32), nullable=True),
    sa.Column("filled_qty", ExactDecimal(), nullable=False),
    sa.Column("filled_avg_price", ExactDecimal(), nullable=True),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name="pk_execution_order_attempts"),
    sa.UniqueConstraint(
        "account_id", "correlation_id", "leg", "attempt", name="uq_execution_attempt_leg"
    ),
    sa.UniqueConstraint("client_order_id", name="uq_execution_attempt_client_order_id"),
    sa.Index("ix_execution_attempts_state", "state"),
)

workflow_table = sa.Table(
    "execution_workflows",
    metadata,
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("correlation_id", sa.String(36), nullable=False),
    sa.Column("as_of", sa.Date(), nullable=True),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("failure_step", sa.String(32), nullable=True),
    sa.Column("failure_reason", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("account_id", "correlation_id", name="pk_execution_workflows"),
)

"""The portfolio service's tables (SQLAlchemy Core); created by the migrations beside them.

The workflow ledger, by which the account's next plan waits for its previous workflow
(see :mod:`alchemiser_portfolio.sequencing`):

* ``portfolio_plans`` — one row per plan the service emitted: ``(account_id, correlation_id)``,
  when it was planned and, once its workflow's outcome is recorded, when that workflow
  finished. Written with the ``SignalGenerated`` input's inbox row; ``finished_at`` with the
  outcome's. Indexed by (account, ``finished_at``), so the account's unfinished plans are
  found without walking every plan it ever had.
* ``portfolio_finished_workflows`` — one row per finished workflow: ``completed`` or
  ``failed`` (from ``workflow.completed.v1`` / ``workflow.failed.v1``), or ``abandoned`` (the
  service stopped waiting for it). Written with the outcome's inbox row.

The primary keys decide duplicates (``INSERT ... ON CONFLICT DO NOTHING``). Keep this module and
``migrations/versions`` in step (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["PORTFOLIO_VERSION_TABLE", "finished_table", "metadata", "plan_table"]

PORTFOLIO_VERSION_TABLE = "alembic_version_portfolio"
"""Alembic version table of the portfolio migration tree."""

metadata = sa.MetaData()

plan_table = sa.Table(
    "portfolio_plans",
    metadata,
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("correlation_id", sa.String(36), nullable=False),
    sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("account_id", "correlation_id", name="pk_portfolio_plans"),
    sa.Index("ix_portfolio_plans_account_finished", "account_id", "finished_at"),
)

finished_table = sa.Table(
    "portfolio_finished_workflows",
    metadata,
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("correlation_id", sa.String(36), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("account_id", "correlation_id", name="pk_portfolio_finished_workflows"),
)

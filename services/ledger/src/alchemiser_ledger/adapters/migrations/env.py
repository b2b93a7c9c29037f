"""Alembic environment of the ledger tables; see :func:`alchemiser_common.db.upgrade_to_head`."""

from __future__ import annotations

from alchemiser_common.db import run_alembic_env

run_alembic_env()

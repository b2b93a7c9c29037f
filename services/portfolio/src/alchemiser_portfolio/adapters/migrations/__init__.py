"""Alembic migrations of the portfolio tables (version table ``alembic_version_portfolio``).

Run them with :meth:`alchemiser_portfolio.adapters.ledger.WorkflowLedger.migrate`; no
``alembic.ini`` is used.
"""

__all__: list[str] = []

"""Alembic migrations of the execution tables (version table ``alembic_version_execution``).

Run them with :meth:`alchemiser_execution.adapters.attempts.AttemptStore.migrate`; no
``alembic.ini`` is used.
"""

__all__: list[str] = []

"""Alembic migrations of the exchange's tables.

Version table ``alembic_version_exchange``; run them with
:meth:`alchemiser_exchange.book.Exchange.migrate` (no ``alembic.ini``).
"""

__all__: list[str] = []

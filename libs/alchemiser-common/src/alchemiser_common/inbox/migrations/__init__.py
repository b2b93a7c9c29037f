"""Alembic migrations of the inbox tables (version table ``alembic_version_inbox``).

Run them with :meth:`alchemiser_common.inbox.InboxStore.migrate`; no ``alembic.ini`` is used.
"""

__all__: list[str] = []

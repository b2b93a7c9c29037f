"""The exchange's tables: what the Alembic migration creates matches ``schema.metadata``."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from alchemiser_exchange import Exchange
from alchemiser_exchange.schema import EXCHANGE_VERSION_TABLE, metadata


def test_migrate_when_done_then_database_matches_table_metadata(exchange: Exchange) -> None:
    exchange.migrate()  # a second run is a no-op

    with exchange.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_name": lambda name, type_, _parent: (
                    type_ != "table" or name in metadata.tables
                ),
            },
        )
        differences = compare_metadata(context, metadata)

    assert differences == []


def test_migrate_when_done_then_own_version_table_at_head(exchange: Exchange) -> None:
    with exchange.engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        version = connection.execute(
            sa.text(f"SELECT version_num FROM {EXCHANGE_VERSION_TABLE}")
        ).scalar_one()

    assert set(metadata.tables) <= tables
    assert "alembic_version" not in tables  # never the services' own version table
    assert version == "exchange_0004"

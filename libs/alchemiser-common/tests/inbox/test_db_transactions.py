"""``outage_as`` and ``transaction``: a database outage becomes the service's transient error."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from alchemiser_common.db import create_engine_from_url, outage_as, transaction
from alchemiser_common.errors import TransientError


class StoreUnavailableError(TransientError):
    """A service's own outage error."""


def test_outage_when_pool_times_out_then_the_services_error_names_the_step() -> None:
    with (
        pytest.raises(StoreUnavailableError, match="reading the plans: database unavailable"),
        outage_as(StoreUnavailableError, "reading the plans"),
    ):
        raise sa_exc.TimeoutError("QueuePool limit reached")


def test_outage_when_integrity_or_programming_error_then_unchanged() -> None:
    integrity = sa_exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
    with pytest.raises(sa_exc.IntegrityError), outage_as(StoreUnavailableError, "x"):
        raise integrity
    with pytest.raises(sa_exc.ProgrammingError), outage_as(StoreUnavailableError, "x"):
        raise sa_exc.ProgrammingError("SELECT", {}, Exception("no such table"))


def test_transaction_when_written_then_committed_and_read_back(
    tmp_path: Path,
) -> None:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        with transaction(engine, StoreUnavailableError, "creating", write=True) as connection:
            connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            connection.execute(sa.text("INSERT INTO t VALUES (1)"))
        with transaction(engine, StoreUnavailableError, "reading") as connection:
            assert connection.execute(sa.text("SELECT x FROM t")).scalar_one() == 1
    finally:
        engine.dispose()

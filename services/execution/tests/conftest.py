"""Fixtures shared by the execution service's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alchemiser_common.db import create_engine_from_url
from alchemiser_execution.adapters.attempts import AttemptStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AttemptStore]:
    """A migrated attempt store on a fresh SQLite file."""
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'attempts.db'}")
    attempts = AttemptStore(engine)
    attempts.migrate()
    yield attempts
    engine.dispose()

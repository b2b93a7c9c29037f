"""Pytest fixture ``fake_alpaca`` (a fresh fake Alpaca server per test) and settings for it.

Load with ``pytest_plugins = ["alchemiser_devtools.fake_alpaca.fixtures"]`` in a
``conftest.py``. The server listens on a free 127.0.0.1 port and is stopped when the test
ends; its state starts with $100,000 cash, no positions and no prices.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from alchemiser_broker.alpaca_settings import AlpacaSettings
from alchemiser_devtools.fake_alpaca.server import FakeAlpaca

__all__ = ["alpaca_settings_for", "fake_alpaca"]


def alpaca_settings_for(fake: FakeAlpaca, **overrides: Any) -> AlpacaSettings:
    """Paper settings pointing both Alpaca clients at ``fake``, with test-friendly timing."""
    values: dict[str, Any] = {
        "api_key": SecretStr(fake.api_key),
        "secret_key": SecretStr(fake.secret_key),
        "url_override": fake.url,
        "data_url_override": fake.url,
        "request_timeout_s": 0.5,
        "max_retries": 3,
        "retry_backoff_s": 0.0,
        "max_rate_limit_wait_s": 2.0,
    }
    values.update(overrides)
    return AlpacaSettings(**values)


@pytest.fixture
def fake_alpaca() -> Iterator[FakeAlpaca]:
    """A running :class:`FakeAlpaca`; see :func:`alpaca_settings_for` to reach it."""
    with FakeAlpaca() as fake:
        yield fake

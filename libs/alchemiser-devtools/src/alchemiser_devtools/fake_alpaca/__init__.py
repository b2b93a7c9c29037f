"""A local fake of Alpaca's trading API (and its latest-trade/quote market data) for tests.

* :class:`FakeAlpaca` — the HTTP server (context manager), with fault injection per route.
* :class:`FakeAlpacaState` — its in-memory account, prices, positions and order book.
* :class:`Fault`, :class:`FillMode` — injectable failures and fill behaviour.
* :mod:`.fixtures` — the ``fake_alpaca`` pytest fixture.
"""

from __future__ import annotations

from alchemiser_devtools.fake_alpaca.server import (
    FAKE_API_KEY,
    FAKE_SECRET_KEY,
    ROUTES,
    FakeAlpaca,
    Fault,
)
from alchemiser_devtools.fake_alpaca.shapes import FakeOrder, FakePosition
from alchemiser_devtools.fake_alpaca.state import (
    DUPLICATE_MESSAGE,
    FakeAlpacaState,
    FillMode,
)

__all__ = [
    "DUPLICATE_MESSAGE",
    "FAKE_API_KEY",
    "FAKE_SECRET_KEY",
    "ROUTES",
    "FakeAlpaca",
    "FakeAlpacaState",
    "FakeOrder",
    "FakePosition",
    "Fault",
    "FillMode",
]

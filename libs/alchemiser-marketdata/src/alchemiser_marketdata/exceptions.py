"""Errors raised by market-data sources, classified by what the caller may do next.

* :class:`InvalidDatasetError` — a dataset file is malformed (the message names file and row):
  fix the data; retrying cannot help.
* :class:`MarketDataRequestError` — the data provider refused the request (bad symbol,
  credentials, subscription): fix the configuration; retrying cannot help.
* :class:`MarketDataUnavailableError` — transient (timeouts, 429, 5xx) after the adapter's own
  bounded retries: a ``TransientError``, so the runtime retries the input later.
"""

from __future__ import annotations

from alchemiser_common.errors import AlchemiserError, TransientError

__all__ = [
    "InvalidDatasetError",
    "MarketDataError",
    "MarketDataRequestError",
    "MarketDataUnavailableError",
]


class MarketDataError(AlchemiserError):
    """Root of the errors raised by market-data sources."""


class InvalidDatasetError(MarketDataError):
    """A dataset file or its metadata is malformed; the message names the file and row."""


class MarketDataRequestError(MarketDataError):
    """The provider answered the request with a permanent refusal (4xx other than 429)."""


class MarketDataUnavailableError(MarketDataError, TransientError):
    """The provider could not be reached or kept failing transiently: retry later."""

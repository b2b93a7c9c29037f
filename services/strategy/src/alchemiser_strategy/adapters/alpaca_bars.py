"""Daily bars from Alpaca's market-data API through alpaca-py's ``StockHistoricalDataClient``.

One ``get_daily_bars`` call is one logical request for every symbol (``symbols=A,B,C``),
paginated by alpaca-py. Hardening around the SDK, which sets no timeout and retries only
429/504 three times, 3 s apart:

* every HTTP request gets ``timeout_s`` (a requests adapter mounted on the client's session);
* the SDK's own retry is switched off and replaced by ours: up to ``max_retries`` retries on
  429, 5xx, timeouts and connection errors, with exponential backoff (honouring
  ``Retry-After``), then :class:`MarketDataUnavailableError` (a ``TransientError``);
* any other 4xx is :class:`MarketDataRequestError` at once (bad symbol, key, subscription).

A retry repeats the whole paginated request, so a failure on page 3 re-reads pages 1-2;
daily bars for a few dozen symbols are one to three pages, so this stays cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import requests
import structlog
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.models.bars import Bar as AlpacaBar
from alpaca.data.models.bars import BarSet
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from requests.adapters import HTTPAdapter

from alchemiser_common.errors import ConfigurationError
from alchemiser_marketdata import (
    Bar,
    MarketDataError,
    MarketDataRequestError,
    MarketDataUnavailableError,
    PriceHistory,
)
from alchemiser_strategy.settings import AlpacaDataSettings

__all__ = ["CLOSE_ON_LOOKBACK_DAYS", "AlpacaBarsMarketData", "AlpacaDataSettings"]

MARKET_TIMEZONE = ZoneInfo("America/New_York")
"""Alpaca stamps a daily bar at midnight New York time; its date there is the session."""

CLOSE_ON_LOOKBACK_DAYS = 14
"""``close_on`` looks this many calendar days back for the last bar (long weekends, halts)."""

_TRANSIENT_NETWORK_ERRORS = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)
"""Transport failures worth another try (timeouts, refused or reset connections, cut bodies)."""

_log = structlog.get_logger("alchemiser.strategy.market_data")


class _TimeoutAdapter(HTTPAdapter):
    """A requests transport adapter that applies a default timeout to every request."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout_s
        return super().send(request, **kwargs)


def _harden(client: StockHistoricalDataClient, timeout_s: float) -> None:
    """Give the SDK's session a timeout and switch its fixed-delay retry off (ours replaces it).

    alpaca-py exposes neither setting, so this touches two private attributes; if a new
    alpaca-py renames them, start-up fails here instead of running without a timeout.
    """
    session = getattr(client, "_session", None)
    if not isinstance(session, requests.Session) or not isinstance(
        getattr(client, "_retry", None), int
    ):
        raise ConfigurationError(
            "alpaca-py's StockHistoricalDataClient has no _session/_retry; "
            "cannot set a request timeout: check the alpaca-py version"
        )
    adapter = _TimeoutAdapter(timeout_s)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    client._retry = 0  # the SDK offers no public switch


class AlpacaBarsMarketData:
    """A :class:`~alchemiser_marketdata.MarketDataPort` over Alpaca daily bars."""

    def __init__(
        self,
        settings: AlpacaDataSettings,
        *,
        client: StockHistoricalDataClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._client = client or StockHistoricalDataClient(
            api_key=settings.api_key.get_secret_value(),
            secret_key=settings.secret_key.get_secret_value(),
            url_override=settings.url_override,
        )
        _harden(self._client, settings.timeout_s)
        self._sleep = sleep

    def get_daily_bars(
        self, symbols: Iterable[str], start: date, end: date
    ) -> dict[str, PriceHistory]:
        """Daily bars dated ``start`` to ``end`` inclusive for every symbol, in one request.

        Symbols Alpaca has no bars for in the range are absent from the result.
        """
        wanted = sorted(set(symbols))
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        if not wanted:
            return {}
        request = StockBarsRequest(
            symbol_or_symbols=wanted,
            timeframe=TimeFrame.Day,
            start=datetime.combine(start, clock_time.min, tzinfo=MARKET_TIMEZONE),
            end=datetime.combine(end, clock_time(23, 59, 59), tzinfo=MARKET_TIMEZONE),
            feed=DataFeed(self._settings.feed),
            adjustment=Adjustment(self._settings.adjustment),
        )
        barset = self._fetch(request, wanted)
        return _histories(barset.data, set(wanted), start, end)

    def close_on(self, symbol: str, day: date) -> Decimal | None:
        """The close of the last bar at or before ``day`` (looks back two weeks at most)."""
        start = day - timedelta(days=CLOSE_ON_LOOKBACK_DAYS)
        history = self.get_daily_bars([symbol], start, day).get(symbol)
        return None if history is None else history.close_on(day)

    def _fetch(self, request: StockBarsRequest, symbols: list[str]) -> BarSet:
        attempts = self._settings.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                result = self._client.get_stock_bars(request)
            except APIError as err:
                status = err.status_code
                if status is None or (status != 429 and status < 500):
                    raise MarketDataRequestError(
                        f"Alpaca refused the bars request for {len(symbols)} symbols: "
                        f"HTTP {status}: {str(err)[:300]}"
                    ) from err
                failure: Exception = err
                reason, retry_after = f"HTTP {status}", _retry_after(err)
            except _TRANSIENT_NETWORK_ERRORS as err:
                failure, reason, retry_after = err, f"{type(err).__name__}: {err}", None
            except (ValueError, TypeError) as err:
                raise MarketDataError(f"Alpaca answered with malformed bars: {err}") from err
            else:
                if not isinstance(result, BarSet):
                    raise MarketDataError(f"expected a BarSet, got {type(result).__name__}")
                return result
            if attempt == attempts:
                raise MarketDataUnavailableError(
                    f"Alpaca bars unavailable after {attempts} attempts (last: {reason})"
                ) from failure
            delay = self._delay(attempt, retry_after)
            _log.warning(
                "market data request failed; retrying",
                reason=reason,
                attempt=attempt,
                attempts=attempts,
                retry_in_s=delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff (initial x 2^(attempt-1)), at least Retry-After, capped."""
        backoff = self._settings.backoff_initial_s * 2.0 ** (attempt - 1)
        if retry_after is not None:
            backoff = max(backoff, retry_after)
        return min(backoff, self._settings.backoff_max_s)


def _retry_after(err: APIError) -> float | None:
    response = err.response
    header: object = None if response is None else response.headers.get("Retry-After")
    try:
        return None if header is None else max(0.0, float(str(header)))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _decimal(value: float) -> Decimal:
    """A JSON number parsed to float back to its shortest decimal text (``133.52`` stays)."""
    return Decimal(repr(value))


def _histories(
    data: Mapping[str, list[AlpacaBar]], wanted: set[str], start: date, end: date
) -> dict[str, PriceHistory]:
    histories: dict[str, PriceHistory] = {}
    for symbol in sorted(data):
        if symbol not in wanted:
            continue
        by_day: dict[date, Bar] = {}
        for raw in data[symbol]:
            day = raw.timestamp.astimezone(MARKET_TIMEZONE).date()
            if not start <= day <= end:
                continue
            if day in by_day:
                raise MarketDataError(f"Alpaca returned two daily bars for {symbol} on {day}")
            try:
                by_day[day] = Bar(
                    date=day,
                    symbol=symbol,
                    open=_decimal(raw.open),
                    high=_decimal(raw.high),
                    low=_decimal(raw.low),
                    close=_decimal(raw.close),
                    volume=int(raw.volume),
                )
            except ValueError as err:
                raise MarketDataError(f"Alpaca bar for {symbol} on {day}: {err}") from err
        if by_day:
            histories[symbol] = PriceHistory(symbol, [by_day[day] for day in sorted(by_day)])
    return histories

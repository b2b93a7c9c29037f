"""AlpacaBarsMarketData through the real alpaca-py client against a local fake data API."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import ValidationError

from alchemiser_common.errors import TransientError
from alchemiser_marketdata import (
    MarketDataError,
    MarketDataPort,
    MarketDataRequestError,
    MarketDataUnavailableError,
)
from alchemiser_strategy.adapters.alpaca_bars import AlpacaBarsMarketData, AlpacaDataSettings


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class FakeAlpaca:
    """A scripted HTTP server on 127.0.0.1 answering /v2/stocks/bars like Alpaca does."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.seen: list[Seen] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                fake.seen.append(Seen(url.path, parse_qs(url.query), dict(self.headers.items())))
                reply = fake.replies.popleft() if fake.replies else Reply(500, {"message": "?"})
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def bars(self, bars: dict[str, list[dict[str, Any]]], token: str | None = None) -> None:
        self.replies.append(Reply(body={"bars": bars, "next_page_token": token}))

    def fail(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        for _ in range(times):
            body = {"code": 40000000 + status, "message": f"fake {status}"}
            self.replies.append(Reply(status, body, headers or {}))


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    server = FakeAlpaca()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(timeout=5)


def settings(url: str, **overrides: Any) -> AlpacaDataSettings:
    values: dict[str, Any] = {
        "api_key": "key-id",
        "secret_key": "very-secret",
        "url_override": url,
        "timeout_s": 2.0,
        "max_retries": 3,
        "backoff_initial_s": 0.5,
        "backoff_max_s": 4.0,
    }
    values.update(overrides)
    return AlpacaDataSettings(**values)


def daily(day: str, close: float, volume: int = 1000, hour: int = 5) -> dict[str, Any]:
    """One raw daily bar as Alpaca sends it: stamped at midnight New York time, in UTC."""
    return {
        "t": f"{day}T{hour:02d}:00:00Z",
        "o": round(close * 0.99, 2),
        "h": round(close * 1.01, 2),
        "l": round(close * 0.98, 2),
        "c": close,
        "v": volume,
        "n": 10,
        "vw": close,
    }


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_get_daily_bars_when_several_symbols_then_one_request_for_all(fake: FakeAlpaca) -> None:
    fake.bars(
        {
            "SPY": [daily("2024-01-02", 472.65), daily("2024-01-03", 468.79)],
            "QQQ": [daily("2024-01-02", 402.26)],
            "TQQQ": [daily("2024-01-03", 48.12)],
        }
    )
    source = AlpacaBarsMarketData(settings(fake.url))

    result = source.get_daily_bars(
        ["SPY", "TQQQ", "QQQ", "SPY"], date(2024, 1, 2), date(2024, 1, 3)
    )

    assert len(fake.seen) == 1
    request = fake.seen[0]
    assert request.path == "/v2/stocks/bars"
    assert request.query["symbols"] == ["QQQ,SPY,TQQQ"]
    assert request.query["timeframe"] == ["1Day"]
    assert request.query["feed"] == ["iex"]
    assert request.query["adjustment"] == ["all"]
    assert request.query["start"] == ["2024-01-02T05:00:00+00:00"]  # midnight New York, in UTC
    assert request.query["end"] == ["2024-01-04T04:59:59+00:00"]
    assert request.headers["APCA-API-KEY-ID"] == "key-id"
    assert request.headers["APCA-API-SECRET-KEY"] == "very-secret"
    assert set(result) == {"SPY", "QQQ", "TQQQ"}
    assert result["SPY"].days == (date(2024, 1, 2), date(2024, 1, 3))
    assert isinstance(source, MarketDataPort)


def test_get_daily_bars_when_paginated_then_pages_merged_per_symbol(fake: FakeAlpaca) -> None:
    fake.bars(
        {
            "SPY": [daily("2024-01-02", 1.0), daily("2024-01-03", 2.0)],
            "QQQ": [daily("2024-01-02", 5.0)],
        },
        token="page-2",
    )
    fake.bars(
        {
            "QQQ": [daily("2024-01-03", 6.0), daily("2024-01-04", 7.0)],
            "SPY": [daily("2024-01-04", 3.0)],
        }
    )
    source = AlpacaBarsMarketData(settings(fake.url, feed="sip"))

    result = source.get_daily_bars(["SPY", "QQQ"], date(2024, 1, 2), date(2024, 1, 4))

    assert len(fake.seen) == 2
    assert "page_token" not in fake.seen[0].query
    assert fake.seen[1].query["page_token"] == ["page-2"]
    assert fake.seen[1].query["symbols"] == ["QQQ,SPY"]
    assert fake.seen[1].query["feed"] == ["sip"]
    assert [float(c) for c in result["SPY"].close_values] == [1.0, 2.0, 3.0]
    assert [float(c) for c in result["QQQ"].close_values] == [5.0, 6.0, 7.0]


def test_get_daily_bars_when_numbers_arrive_then_exact_decimals_and_new_york_dates(
    fake: FakeAlpaca,
) -> None:
    fake.bars(
        {
            "SPY": [
                {
                    "t": "2024-07-01T04:00:00Z",
                    "o": 545.63,
                    "h": 545.88,
                    "l": 542.52,
                    "c": 545.34,
                    "v": 40297779,
                    "n": 5,
                    "vw": 544.1,
                },
                {
                    "t": "2024-12-02T05:00:00Z",
                    "o": 0.1,
                    "h": 0.3,
                    "l": 0.1,
                    "c": 0.2,
                    "v": 7,
                    "n": 1,
                    "vw": 0.2,
                },
            ]
        }
    )
    source = AlpacaBarsMarketData(settings(fake.url))

    spy = source.get_daily_bars(["SPY"], date(2024, 6, 1), date(2024, 12, 31))["SPY"]

    first, second = spy.bars
    assert first.date == date(2024, 7, 1)  # 04:00Z is midnight EDT
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("545.63"),
        Decimal("545.88"),
        Decimal("542.52"),
        Decimal("545.34"),
    )
    assert first.volume == 40297779
    assert second.date == date(2024, 12, 2)  # 05:00Z is midnight EST
    assert second.close == Decimal("0.2")  # not 0.200000000000000011102230246251565


def test_get_daily_bars_when_429_then_backs_off_and_succeeds(fake: FakeAlpaca) -> None:
    fake.fail(429)
    fake.fail(429)
    fake.bars({"SPY": [daily("2024-01-02", 472.65)]})
    sleeps = Sleeps()
    source = AlpacaBarsMarketData(settings(fake.url), sleep=sleeps)

    result = source.get_daily_bars(["SPY"], date(2024, 1, 2), date(2024, 1, 2))

    assert result["SPY"].last_bar.close == Decimal("472.65")
    assert len(fake.seen) == 3
    assert sleeps == [0.5, 1.0]


def test_get_daily_bars_when_retry_after_given_then_waits_at_least_that(fake: FakeAlpaca) -> None:
    fake.fail(429, headers={"Retry-After": "3"})
    fake.bars({"SPY": [daily("2024-01-02", 1.0)]})
    sleeps = Sleeps()

    AlpacaBarsMarketData(settings(fake.url), sleep=sleeps).get_daily_bars(
        ["SPY"], date(2024, 1, 2), date(2024, 1, 2)
    )

    assert sleeps == [3.0]


def test_get_daily_bars_when_5xx_persists_then_unavailable_after_bounded_retries(
    fake: FakeAlpaca,
) -> None:
    fake.fail(503, times=10)
    sleeps = Sleeps()
    source = AlpacaBarsMarketData(settings(fake.url, max_retries=3), sleep=sleeps)

    with pytest.raises(
        MarketDataUnavailableError, match=r"after 4 attempts \(last: HTTP 503\)"
    ) as caught:
        source.get_daily_bars(["SPY"], date(2024, 1, 2), date(2024, 1, 2))

    assert isinstance(caught.value, TransientError)
    assert "fake 503" in str(caught.value.__cause__)
    assert len(fake.seen) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_get_daily_bars_when_server_too_slow_then_times_out_and_retries(fake: FakeAlpaca) -> None:
    fake.replies.append(Reply(body={"bars": {}, "next_page_token": None}, delay_s=1.5))
    fake.bars({"SPY": [daily("2024-01-02", 9.5)]})
    sleeps = Sleeps()
    source = AlpacaBarsMarketData(settings(fake.url, timeout_s=0.3), sleep=sleeps)

    started = time.monotonic()
    result = source.get_daily_bars(["SPY"], date(2024, 1, 2), date(2024, 1, 2))

    assert time.monotonic() - started < 1.4
    assert result["SPY"].last_bar.close == Decimal("9.5")
    assert len(sleeps) == 1


def test_get_daily_bars_when_server_unreachable_then_unavailable(fake: FakeAlpaca) -> None:
    url = fake.url
    fake.server.shutdown()
    fake.server.server_close()
    source = AlpacaBarsMarketData(settings(url, max_retries=1), sleep=Sleeps())

    with pytest.raises(MarketDataUnavailableError, match="ConnectionError"):
        source.get_daily_bars(["SPY"], date(2024, 1, 2), date(2024, 1, 2))


@pytest.mark.parametrize("status", [400, 401, 403, 422])
def test_get_daily_bars_when_client_error_then_request_error_without_retry(
    fake: FakeAlpaca, status: int
) -> None:
    fake.fail(status, times=3)
    sleeps = Sleeps()
    source = AlpacaBarsMarketData(settings(fake.url), sleep=sleeps)

    with pytest.raises(MarketDataRequestError, match=f"HTTP {status}") as caught:
        source.get_daily_bars(["SPY"], date(2024, 1, 2), date(2024, 1, 2))

    assert not isinstance(caught.value, TransientError)
    assert len(fake.seen) == 1
    assert sleeps == []


def test_get_daily_bars_when_body_malformed_then_permanent_error(fake: FakeAlpaca) -> None:
    fake.replies.append(Reply(body={"unexpected": []}))

    with pytest.raises(MarketDataError, match="malformed") as caught:
        AlpacaBarsMarketData(settings(fake.url)).get_daily_bars(
            ["SPY"], date(2024, 1, 2), date(2024, 1, 2)
        )

    assert not isinstance(caught.value, TransientError)
    assert len(fake.seen) == 1


def test_get_daily_bars_when_symbol_has_no_bars_then_absent(fake: FakeAlpaca) -> None:
    fake.bars({"SPY": [daily("2024-01-02", 1.0)]})

    result = AlpacaBarsMarketData(settings(fake.url)).get_daily_bars(
        ["SPY", "DELISTED"], date(2024, 1, 2), date(2024, 1, 2)
    )

    assert set(result) == {"SPY"}


def test_get_daily_bars_when_no_symbols_then_no_request(fake: FakeAlpaca) -> None:
    assert (
        AlpacaBarsMarketData(settings(fake.url)).get_daily_bars(
            [], date(2024, 1, 2), date(2024, 1, 3)
        )
        == {}
    )
    assert fake.seen == []


def test_close_on_when_weekend_then_last_close_before(fake: FakeAlpaca) -> None:
    fake.bars({"SPY": [daily("2024-01-04", 467.28), daily("2024-01-05", 467.92)]})

    close = AlpacaBarsMarketData(settings(fake.url)).close_on("SPY", date(2024, 1, 7))

    assert close == Decimal("467.92")
    assert fake.seen[0].query["symbols"] == ["SPY"]
    assert fake.seen[0].query["start"] == ["2023-12-24T05:00:00+00:00"]


def test_settings_when_secret_printed_then_masked_and_feed_validated() -> None:
    configured = settings("http://127.0.0.1:1")

    assert "very-secret" not in repr(configured)
    assert configured.feed == "iex"
    with pytest.raises(ValidationError):
        settings("http://127.0.0.1:1", feed="nasdaq")
    with pytest.raises(ValidationError):
        settings("http://127.0.0.1:1", timeout_s=0)

"""AlpacaBroker reads through the real alpaca-py clients against the fake Alpaca server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC
from decimal import Decimal

import pytest

from alchemiser_broker import (
    BrokerAuthError,
    BrokerUnavailableError,
    OrderNotFoundError,
)
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.errors import TransientError
from alchemiser_devtools.fake_alpaca import FakeAlpaca, Fault
from alchemiser_devtools.fake_alpaca.fixtures import alpaca_settings_for


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    """A fake Alpaca server for one test (same as the ``fake_alpaca`` plugin fixture)."""
    with FakeAlpaca() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def broker(fake: FakeAlpaca, sleeps: list[float]) -> AlpacaBroker:
    return AlpacaBroker(alpaca_settings_for(fake), sleep=sleeps.append)


def test_get_account_when_cash_held_then_amounts_are_exact_decimals(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.state.cash = Decimal("12345.67")
    fake.set_price("SPY", "500.10")
    fake.state.set_position("SPY", Decimal("2"), Decimal("400"))

    account = broker.get_account()

    assert account.cash == Decimal("12345.67")
    assert account.buying_power == Decimal("12345.67")
    assert account.equity == Decimal("12345.67") + Decimal("1000.20")
    assert account.account_id == fake.state.account_id
    assert account.currency == "USD"
    assert account.trading_blocked is False
    assert all(isinstance(v, Decimal) for v in (account.cash, account.equity))


def test_get_positions_when_fractional_position_held_then_mapped_exactly(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.set_price("TQQQ", "61.37")
    fake.state.set_position("TQQQ", Decimal("3.123456789"), Decimal("55.5"))

    (position,) = broker.get_positions()

    assert position.symbol == "TQQQ"
    assert position.qty == Decimal("3.123456789")
    assert position.avg_entry_price == Decimal("55.5")
    assert position.current_price == Decimal("61.37")
    assert position.market_value == Decimal("3.123456789") * Decimal("61.37")
    assert broker.get_position("TQQQ") == position


def test_get_position_when_not_held_then_none(broker: AlpacaBroker) -> None:
    assert broker.get_position("SPY") is None
    assert broker.get_positions() == []


def test_get_clock_when_market_closed_then_utc_times(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.state.market_open = False

    clock = broker.get_clock()

    assert clock.is_open is False
    assert clock.timestamp.tzinfo is UTC
    assert clock.next_open > clock.timestamp
    assert clock.next_close > clock.timestamp


def test_get_asset_when_symbol_not_fractionable_then_flag_is_false(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.set_price("BRK.A", "650000")
    fake.set_price("SPY", "500")
    fake.state.non_fractionable.add("BRK.A")

    assert broker.get_asset("BRK.A").fractionable is False
    spy = broker.get_asset("SPY")
    assert (spy.symbol, spy.fractionable, spy.tradable) == ("SPY", True, True)


def test_get_asset_when_symbol_unknown_then_not_found(broker: AlpacaBroker) -> None:
    with pytest.raises(OrderNotFoundError):
        broker.get_asset("NOPE")


def test_get_latest_prices_when_one_symbol_unknown_then_it_is_left_out(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.set_price("SPY", "512.34")
    fake.set_price("BIL", "91.5")

    prices = broker.get_latest_prices(["SPY", "BIL", "NOPE"])

    assert prices == {"SPY": Decimal("512.34"), "BIL": Decimal("91.5")}
    assert broker.get_latest_prices([]) == {}


def test_get_quote_when_quote_set_then_bid_and_ask_are_decimals(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.set_price("SPY", "500")
    fake.state.quotes["SPY"] = (Decimal("499.97"), Decimal("500.05"))

    quote = broker.get_quote("SPY")

    assert quote is not None
    assert (quote.bid, quote.ask) == (Decimal("499.97"), Decimal("500.05"))
    assert quote.bid_size == Decimal(2)
    assert quote.timestamp.tzinfo is UTC
    assert broker.get_quote("NOPE") is None


def test_read_when_html_502_twice_then_retried_until_success(
    fake: FakeAlpaca, broker: AlpacaBroker, sleeps: list[float]
) -> None:
    fake.inject("GET /v2/account", Fault.BAD_GATEWAY_HTML, times=2)

    account = broker.get_account()

    assert account.cash == Decimal(100_000)
    assert fake.requests_seen["GET /v2/account"] == 3
    assert len(sleeps) == 2


def test_read_when_failures_outlast_retries_then_broker_unavailable(
    fake: FakeAlpaca,
) -> None:
    broker = AlpacaBroker(alpaca_settings_for(fake, max_retries=2), sleep=lambda _: None)
    fake.inject("GET /v2/positions", Fault.SERVER_ERROR, times=5)

    with pytest.raises(BrokerUnavailableError) as caught:
        broker.get_positions()

    assert isinstance(caught.value, TransientError)
    assert fake.requests_seen["GET /v2/positions"] == 3
    assert "500" in str(caught.value)


def test_read_when_connection_reset_then_retried(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.inject("GET /v2/clock", Fault.CONNECTION_RESET_BEFORE_ACCEPT)

    assert broker.get_clock().is_open is True
    assert fake.requests_seen["GET /v2/clock"] == 2


def test_read_when_rate_limited_then_waits_for_reset_then_retries(
    fake: FakeAlpaca, sleeps: list[float]
) -> None:
    fake.rate_limit_reset_s = 30
    settings = alpaca_settings_for(fake, max_rate_limit_wait_s=5.0)
    broker = AlpacaBroker(settings, sleep=sleeps.append)
    fake.inject("GET /v2/account", Fault.RATE_LIMITED)

    broker.get_account()

    assert sleeps == [5.0]  # the reset is 30 s away: the wait is capped
    assert fake.requests_seen["GET /v2/account"] == 2


def test_read_when_server_hangs_then_request_times_out(fake: FakeAlpaca) -> None:
    fake.read_timeout_delay_s = 5.0
    settings = alpaca_settings_for(fake, request_timeout_s=0.2, max_retries=0)
    broker = AlpacaBroker(settings, sleep=lambda _: None)
    fake.inject("GET /v2/clock", Fault.READ_TIMEOUT_BEFORE_ACCEPT)

    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match="ReadTimeout"):
        broker.get_clock()

    assert time.monotonic() - started < 2.0


def test_market_data_when_server_hangs_then_request_times_out(fake: FakeAlpaca) -> None:
    fake.read_timeout_delay_s = 5.0
    settings = alpaca_settings_for(fake, request_timeout_s=0.2, max_retries=0)
    broker = AlpacaBroker(settings, sleep=lambda _: None)
    fake.inject("GET /v2/stocks/trades/latest", Fault.READ_TIMEOUT_BEFORE_ACCEPT)

    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError):
        broker.get_latest_prices(["SPY"])

    assert time.monotonic() - started < 2.0


def test_read_when_credentials_wrong_then_auth_error(fake: FakeAlpaca) -> None:
    settings = alpaca_settings_for(fake, secret_key="wrong-secret")
    broker = AlpacaBroker(settings, sleep=lambda _: None)

    with pytest.raises(BrokerAuthError, match="401"):
        broker.get_account()

    assert fake.requests_seen["GET /v2/account"] == 1

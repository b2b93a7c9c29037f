"""AlpacaBroker reads through the real alpaca-py clients against the paper exchange.

Requests go through a :class:`FaultProxy` in front of the exchange (counts and faults).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from alchemiser_broker import (
    BrokerAuthError,
    BrokerUnavailableError,
    OrderNotFoundError,
    OrderRequest,
    OrderSide,
)
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.errors import TransientError
from alchemiser_devtools.exchange import SESSION, PaperExchange, adapter_settings, write_dataset
from alchemiser_devtools.faults import ALPACA_ROUTES, Fault, FaultProxy
from alchemiser_exchange import account_number_for
from alchemiser_marketdata import DatasetMarketData

THURSDAY = date(2025, 3, 13)  # the session before SESSION (Friday 2025-03-14)
SESSION_ROUTE = "PUT /exchange/v1/session"


@pytest.fixture
def proxy(paper_exchange: PaperExchange) -> Iterator[FaultProxy]:
    with FaultProxy(paper_exchange.url, routes=ALPACA_ROUTES) as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def broker(proxy: FaultProxy, sleeps: list[float]) -> AlpacaBroker:
    return AlpacaBroker(adapter_settings(proxy.url), sleep=sleeps.append)


def test_get_account_when_cash_held_then_amounts_are_exact_decimals(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    paper_exchange.exchange.set_cash(paper_exchange.account, Decimal("12345.67"))
    paper_exchange.set_prices({"SPY": "500.10"})
    paper_exchange.exchange.set_position(paper_exchange.account, "SPY", Decimal(2), Decimal(400))

    account = broker.get_account()

    assert account.cash == Decimal("12345.67")
    assert account.buying_power == Decimal("12345.67")
    assert account.equity == Decimal("12345.67") + Decimal("1000.20")
    assert account.account_id  # Alpaca's internal id of the account ...
    assert account.account_number == paper_exchange.account  # ... and its number
    assert account.currency == "USD"
    assert account.trading_blocked is False
    assert all(isinstance(v, Decimal) for v in (account.cash, account.equity))


def test_get_account_when_trading_blocked_then_flag_set(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    paper_exchange.exchange.set_trading_blocked(paper_exchange.account, True)

    assert broker.get_account().trading_blocked is True


def test_get_account_when_key_unknown_then_account_number_of_the_auto_opened_account(
    paper_exchange: PaperExchange,
) -> None:
    settings = adapter_settings(
        paper_exchange.url, api_key=SecretStr("new-key"), secret_key=SecretStr("new-secret")
    )

    account = AlpacaBroker(settings, sleep=lambda _: None).get_account()

    assert account.account_number == account_number_for("new-key")
    assert account.account_number != paper_exchange.account
    assert account.cash == Decimal(100_000)


def test_get_positions_when_fractional_position_held_then_mapped_exactly(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    paper_exchange.set_prices({"TQQQ": "61.37"})
    paper_exchange.exchange.set_position(
        paper_exchange.account, "TQQQ", Decimal("3.123456789"), Decimal("55.5")
    )

    (position,) = broker.get_positions()

    assert position.symbol == "TQQQ"
    assert position.qty == Decimal("3.123456789")
    assert position.avg_entry_price == Decimal("55.5")
    assert position.current_price == Decimal("61.37")
    # 3.123456789 * 61.37 = 191.68654314..., valued to the cent like Alpaca's market_value
    assert position.market_value == Decimal("191.69")
    assert broker.get_position("TQQQ") == position


def test_get_position_when_not_held_then_none(broker: AlpacaBroker) -> None:
    assert broker.get_position("SPY") is None
    assert broker.get_positions() == []


def test_get_clock_when_market_closed_then_utc_times(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    paper_exchange.exchange.set_session(paper_exchange.account, date(2025, 3, 15))  # Saturday

    clock = broker.get_clock()

    assert clock.is_open is False
    assert clock.timestamp.tzinfo is UTC
    assert clock.next_open > clock.timestamp
    assert clock.next_close > clock.timestamp


def test_get_asset_when_symbol_not_fractionable_then_flag_is_false(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    paper_exchange.set_prices({"BRK.A": "650000", "SPY": "500"})
    paper_exchange.set_rules(non_fractionable=frozenset({"BRK.A"}))

    assert broker.get_asset("BRK.A").fractionable is False
    spy = broker.get_asset("SPY")
    assert (spy.symbol, spy.fractionable, spy.tradable) == ("SPY", True, True)


def test_get_asset_when_symbol_unknown_then_not_found(broker: AlpacaBroker) -> None:
    with pytest.raises(OrderNotFoundError):
        broker.get_asset("NOPE")


def test_get_latest_prices_when_one_symbol_unknown_then_it_is_left_out(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    paper_exchange.set_prices({"SPY": "512.34", "BIL": "91.5"})

    prices = broker.get_latest_prices(["SPY", "BIL", "NOPE"])

    assert prices == {"SPY": Decimal("512.34"), "BIL": Decimal("91.5")}
    assert broker.get_latest_prices([]) == {}


def test_get_quote_when_quote_set_then_bid_and_ask_are_decimals(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    # 1.4 bps of 500.01 is 0.070001: bid 499.9749995 floors to 499.97, ask ceils to 500.05
    paper_exchange.set_prices({"SPY": "500.01"})
    paper_exchange.set_rules(spread_bps=Decimal("1.4"), quote_size=Decimal(2))

    quote = broker.get_quote("SPY")

    assert quote is not None
    assert (quote.bid, quote.ask) == (Decimal("499.97"), Decimal("500.05"))
    assert quote.bid_size == Decimal(2)
    assert quote.timestamp.tzinfo is UTC
    assert broker.get_quote("NOPE") is None


def test_read_when_html_502_twice_then_retried_until_success(
    proxy: FaultProxy, broker: AlpacaBroker, sleeps: list[float]
) -> None:
    proxy.inject("GET /v2/account", Fault.BAD_GATEWAY_HTML, times=2)

    account = broker.get_account()

    assert account.cash == Decimal(100_000)
    assert proxy.requests_seen["GET /v2/account"] == 3
    assert len(sleeps) == 2


def test_read_when_failures_outlast_retries_then_broker_unavailable(proxy: FaultProxy) -> None:
    broker = AlpacaBroker(adapter_settings(proxy.url, max_retries=2), sleep=lambda _: None)
    proxy.inject("GET /v2/positions", Fault.SERVER_ERROR, times=5)

    with pytest.raises(BrokerUnavailableError) as caught:
        broker.get_positions()

    assert isinstance(caught.value, TransientError)
    assert proxy.requests_seen["GET /v2/positions"] == 3
    assert "500" in str(caught.value)


def test_read_when_connection_reset_then_retried(proxy: FaultProxy, broker: AlpacaBroker) -> None:
    proxy.inject("GET /v2/clock", Fault.CONNECTION_RESET_BEFORE_ACCEPT)

    assert broker.get_clock().is_open is True
    assert proxy.requests_seen["GET /v2/clock"] == 2


def test_read_when_rate_limited_then_waits_for_reset_then_retries(
    proxy: FaultProxy, sleeps: list[float]
) -> None:
    proxy.rate_limit_reset_s = 30
    settings = adapter_settings(proxy.url, max_rate_limit_wait_s=5.0)
    broker = AlpacaBroker(settings, sleep=sleeps.append)
    proxy.inject("GET /v2/account", Fault.RATE_LIMITED)

    broker.get_account()

    assert sleeps == [5.0]  # the reset is 30 s away: the wait is capped
    assert proxy.requests_seen["GET /v2/account"] == 2


def test_read_when_exchange_rate_limits_then_waits_for_its_retry_after(
    paper_exchange: PaperExchange, sleeps: list[float]
) -> None:
    paper_exchange.set_rules(rate_limit_per_minute=2)
    settings = adapter_settings(paper_exchange.url, max_retries=1, max_rate_limit_wait_s=120)
    broker = AlpacaBroker(settings, sleep=sleeps.append)
    broker.get_clock()
    broker.get_clock()

    with pytest.raises(BrokerUnavailableError, match="429"):
        broker.get_clock()  # the sleep is a fake, so the retry is limited too

    assert len(sleeps) == 1
    assert 55 <= sleeps[0] <= 60  # the exchange's Retry-After: the window's remaining time


def test_read_when_server_hangs_then_request_times_out(proxy: FaultProxy) -> None:
    proxy.read_timeout_delay_s = 5.0
    settings = adapter_settings(proxy.url, request_timeout_s=0.2, max_retries=0)
    broker = AlpacaBroker(settings, sleep=lambda _: None)
    proxy.inject("GET /v2/clock", Fault.READ_TIMEOUT_BEFORE_ACCEPT)

    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match="ReadTimeout"):
        broker.get_clock()

    assert time.monotonic() - started < 2.0


def test_market_data_when_server_hangs_then_request_times_out(proxy: FaultProxy) -> None:
    proxy.read_timeout_delay_s = 5.0
    settings = adapter_settings(proxy.url, request_timeout_s=0.2, max_retries=0)
    broker = AlpacaBroker(settings, sleep=lambda _: None)
    proxy.inject("GET /v2/stocks/trades/latest", Fault.READ_TIMEOUT_BEFORE_ACCEPT)

    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError):
        broker.get_latest_prices(["SPY"])

    assert time.monotonic() - started < 2.0


def test_read_when_credentials_wrong_then_auth_error(proxy: FaultProxy) -> None:
    settings = adapter_settings(proxy.url, secret_key=SecretStr("wrong-secret"))
    broker = AlpacaBroker(settings, sleep=lambda _: None)

    with pytest.raises(BrokerAuthError, match="401"):
        broker.get_account()

    assert proxy.requests_seen["GET /v2/account"] == 1


# -- the session clock (use_session) ----------------------------------------------------------


@pytest.fixture
def two_sessions(paper_exchange: PaperExchange, tmp_path: Path) -> PaperExchange:
    """The exchange priced from two sessions: Thursday SPY 490, Friday (SESSION) SPY 500."""
    directory = write_dataset(
        tmp_path / "two-sessions", {THURSDAY: {"SPY": "490"}, SESSION: {"SPY": "500"}}
    )
    paper_exchange.exchange.use_dataset(DatasetMarketData(directory))
    return paper_exchange


def test_use_session_when_exchange_then_account_clock_and_prices_follow(
    two_sessions: PaperExchange, broker: AlpacaBroker
) -> None:
    broker.use_session(THURSDAY)

    clock = broker.get_clock()
    assert clock.timestamp.date() == THURSDAY
    assert clock.is_open is True
    assert broker.get_latest_prices(["SPY"]) == {"SPY": Decimal(490)}
    quote = broker.get_quote("SPY")
    assert quote is not None and quote.bid < Decimal(490) < quote.ask
    exchange = two_sessions.exchange
    assert exchange.session_of(exchange.account(two_sessions.account)) == THURSDAY

    broker.use_session(SESSION)

    assert broker.get_clock().timestamp.date() == SESSION
    assert broker.get_latest_prices(["SPY"]) == {"SPY": Decimal(500)}


def test_use_session_when_moved_then_orders_fill_at_that_session_close(
    two_sessions: PaperExchange, broker: AlpacaBroker
) -> None:
    broker.use_session(THURSDAY)
    thursday = broker.submit_order(
        OrderRequest(client_order_id="u1", symbol="SPY", side=OrderSide.BUY, qty=Decimal(1))
    )
    broker.use_session(SESSION)
    friday = broker.submit_order(
        OrderRequest(client_order_id="u2", symbol="SPY", side=OrderSide.BUY, qty=Decimal(1))
    )

    assert (thursday.filled_avg_price, friday.filled_avg_price) == (Decimal(490), Decimal(500))
    assert broker.get_account().cash == Decimal(100_000) - Decimal(990)


def test_use_session_when_repeated_then_idempotent(
    two_sessions: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker
) -> None:
    broker.use_session(THURSDAY)
    broker.use_session(THURSDAY)

    assert broker.get_clock().timestamp.date() == THURSDAY
    assert proxy.requests_seen[SESSION_ROUTE] == 2


def test_use_session_when_weekend_then_market_closed(
    two_sessions: PaperExchange, broker: AlpacaBroker
) -> None:
    broker.use_session(date(2025, 3, 15))

    clock = broker.get_clock()
    assert (clock.timestamp.date(), clock.is_open) == (date(2025, 3, 15), False)
    assert broker.get_latest_prices(["SPY"]) == {"SPY": Decimal(500)}  # Friday's close


def test_use_session_when_no_session_url_then_nothing_sent_and_clock_unchanged(
    two_sessions: PaperExchange, proxy: FaultProxy
) -> None:
    broker = AlpacaBroker(adapter_settings(proxy.url, session_url=None), sleep=lambda _: None)

    broker.use_session(THURSDAY)

    assert proxy.requests_seen[SESSION_ROUTE] == 0
    assert sum(proxy.requests_seen.values()) == 0
    assert broker.get_clock().timestamp.date() == SESSION


def test_use_session_when_credentials_wrong_then_auth_error(proxy: FaultProxy) -> None:
    settings = adapter_settings(proxy.url, secret_key=SecretStr("wrong-secret"))
    broker = AlpacaBroker(settings, sleep=lambda _: None)

    with pytest.raises(BrokerAuthError, match="401"):
        broker.use_session(THURSDAY)

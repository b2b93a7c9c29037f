"""The exchange's core (:class:`Exchange`) on SQLite and (integration) PostgreSQL.

Every test taking ``exchange``/``make_exchange``/``account`` runs on both databases. Prices
come from the standard dataset of ``conftest.py``: SPY closes 500.00 on Thursday 2025-03-06,
510.25 on Friday 2025-03-07 (low 499, high 512) and 505.00 on Monday 2025-03-10 (low 504,
high 511); QQQ 400.10 on Friday only; BRK (non-fractionable where the test says so) 249.00
and 250.00. ``account`` is a fresh $100,000 account in the Friday session.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from alchemiser_broker.models import OrderSide, OrderStatus, OrderType
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import ConfigurationError
from alchemiser_exchange import Exchange, OrderSpec, TradingRules, account_number_for
from alchemiser_exchange.book import ExchangeUnavailableError
from alchemiser_exchange.errors import (
    AccountBlockedError,
    DuplicateOrderError,
    ExchangeError,
    InsufficientFundsError,
    InvalidOrderError,
    NotAuthorizedError,
    NotFoundError,
    OrderNotCancelableError,
)
from alchemiser_exchange.orders import TradeUpdate
from alchemiser_exchange.rules import SessionBar
from alchemiser_exchange.schema import order_table
from alchemiser_marketdata import DatasetMarketData

THURSDAY = date(2025, 3, 6)
FRIDAY = date(2025, 3, 7)
SATURDAY = date(2025, 3, 8)
MONDAY = date(2025, 3, 10)
# 15:50 New York: EST (UTC-5) on Friday, EDT (UTC-4) from Sunday 2025-03-09
FRIDAY_SESSION_TIME = datetime(2025, 3, 7, 20, 50, tzinfo=UTC)
MONDAY_SESSION_TIME = datetime(2025, 3, 10, 19, 50, tzinfo=UTC)
HOLIDAY_BARS = """date,symbol,open,high,low,close,volume
2025-04-17,SPY,520,521,519,520.00,1000
2025-04-21,SPY,515,516,514,515.00,1000
"""
WAIT_S = 10.0

ExchangeFactory = Callable[..., Exchange]


def _buy(cid: str, symbol: str = "SPY", **fields: Any) -> OrderSpec:
    if "qty" not in fields and "notional" not in fields:
        fields["qty"] = Decimal(10)
    limit = "limit_price" in fields
    fields.setdefault("order_type", OrderType.LIMIT if limit else OrderType.MARKET)
    return OrderSpec(symbol=symbol, side=OrderSide.BUY, client_order_id=cid, **fields)


def _sell(cid: str, symbol: str = "SPY", **fields: Any) -> OrderSpec:
    limit = "limit_price" in fields
    fields.setdefault("order_type", OrderType.LIMIT if limit else OrderType.MARKET)
    return OrderSpec(symbol=symbol, side=OrderSide.SELL, client_order_id=cid, **fields)


def _qty(exchange: Exchange, account: str, symbol: str = "SPY") -> Decimal:
    found = [p.qty for p in exchange.positions(account) if p.symbol == symbol]
    return found[0] if found else Decimal(0)


# -- accounts ---------------------------------------------------------------------------------


def test_open_account_when_cash_given_then_cash_everywhere(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    record = exchange.open_account(new_key(), "secret", cash=Decimal("2500.50"))

    view = exchange.balances(record.account_number)
    assert (view.cash, view.buying_power, view.equity) == (
        Decimal("2500.50"),
        Decimal("2500.50"),
        Decimal("2500.50"),
    )
    assert view.long_market_value == 0


def test_authenticate_when_key_unknown_then_account_auto_opened_with_starting_cash(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(starting_cash=Decimal("2500.50"))
    key = new_key()

    record = exchange.authenticate(key, "secret")

    assert record.account_number == account_number_for(key)
    assert record.api_key_id == key
    assert exchange.balances(record.account_number).equity == Decimal("2500.50")
    assert exchange.authenticate(key, "secret") == record  # the same account next time
    assert exchange.account(record.account_number) == record


def test_account_number_for_when_key_given_then_stable_alpaca_like_and_not_the_key() -> None:
    number = account_number_for("my-key")

    assert number == account_number_for("my-key")
    assert number != account_number_for("my-key2")
    assert number.startswith("PA") and len(number) == 12 and number.isalnum()
    assert "my-key" not in number


def test_authenticate_when_secret_wrong_then_not_authorized(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    key = new_key()
    exchange.open_account(key, "secret")

    with pytest.raises(NotAuthorizedError) as caught:
        exchange.authenticate(key, "not-the-secret")
    with pytest.raises(NotAuthorizedError):
        exchange.open_account(key, "not-the-secret")
    with pytest.raises(NotAuthorizedError):
        exchange.authenticate(key, "")
    assert caught.value.status == 401


def test_account_number_of_when_key_checked_once_then_remembered_and_wrong_secret_still_refused(
    exchange: Exchange, new_key: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key()
    number = exchange.open_account(key, "secret").account_number
    assert exchange.remembered_account_number(key, "secret") is None

    assert exchange.account_number_of(key, "secret") == number

    assert exchange.remembered_account_number(key, "secret") == number
    assert exchange.remembered_account_number(key, "not-the-secret") is None
    assert exchange.remembered_account_number(new_key(), "secret") is None

    def no_database(*_args: Any) -> None:
        raise AssertionError("the database was asked again")

    monkeypatch.setattr(exchange, "authenticate", no_database)
    assert exchange.account_number_of(key, "secret") == number
    monkeypatch.undo()
    with pytest.raises(NotAuthorizedError):
        exchange.account_number_of(key, "not-the-secret")
    with pytest.raises(NotAuthorizedError):
        exchange.account_number_of(key, "")


def test_authenticate_when_auto_open_off_then_unknown_key_not_authorized(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(auto_open=False)
    known, unknown = new_key(), new_key()
    opened = exchange.open_account(known, "secret", account_number=f"PA-{known}")

    with pytest.raises(NotAuthorizedError):
        exchange.authenticate(unknown, "secret")
    with pytest.raises(NotFoundError):
        exchange.account(account_number_for(unknown))  # nothing was opened
    assert exchange.authenticate(known, "secret") == opened
    assert opened.account_number == f"PA-{known}"


def test_open_account_when_number_taken_by_another_key_then_refused(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    first = exchange.open_account(new_key(), "secret")

    with pytest.raises(InvalidOrderError, match="exists with another API key"):
        exchange.open_account(new_key(), "secret", account_number=first.account_number)


def test_open_account_when_same_key_again_then_idempotent(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    key = new_key()
    first = exchange.open_account(key, "secret", cash=Decimal(10))

    again = exchange.open_account(key, "secret", cash=Decimal(99))

    assert again == first
    assert exchange.balances(first.account_number).cash == Decimal(10)
    assert first.account_number in [a.account_number for a in exchange.accounts()]


def test_authenticate_when_first_requests_of_a_key_race_then_one_account(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchanges = [make_exchange() for _ in range(4)]
    key = new_key()
    barrier = threading.Barrier(len(exchanges), timeout=WAIT_S)

    def first_request(exchange: Exchange) -> str:
        barrier.wait()
        return exchange.authenticate(key, "secret").account_number

    with ThreadPoolExecutor(max_workers=len(exchanges)) as pool:
        numbers = set(pool.map(first_request, exchanges))

    assert numbers == {account_number_for(key)}


# -- prices, quotes, assets -------------------------------------------------------------------


def test_session_bar_when_session_is_saturday_then_friday_close_flat(
    exchange: Exchange, account: str
) -> None:
    exchange.set_session(account, SATURDAY)

    assert exchange.session_bar(account, "SPY") == SessionBar(*[Decimal("510.25")] * 4)
    assert exchange.session_bar(account, "QQQ") == SessionBar(*[Decimal("400.10")] * 4)
    assert exchange.session_bar(account, "NOPE") is None


def test_session_when_never_set_then_last_dataset_day(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    number = exchange.open_account(new_key(), "secret").account_number

    assert exchange.session_of(exchange.account(number)) == MONDAY
    assert exchange.clock(number).timestamp == MONDAY_SESSION_TIME
    bar = exchange.session_bar(number, "SPY")
    assert bar is not None and bar.close == Decimal("505.00")
    qqq = exchange.session_bar(number, "QQQ")  # its last bar before Monday
    assert qqq is not None and qqq.close == Decimal("400.10")


def test_quote_when_known_then_spread_around_close(exchange: Exchange, account: str) -> None:
    quote = exchange.quote(account, "SPY")

    assert quote is not None
    # 2 bps of 510.25 is 0.10205: bid 510.198975 floors, ask 510.301025 ceils to the cent.
    assert (quote.bid, quote.ask) == (Decimal("510.19"), Decimal("510.31"))
    assert (quote.bid_size, quote.ask_size) == (Decimal(100), Decimal(100))
    assert quote.timestamp == FRIDAY_SESSION_TIME
    assert exchange.quote(account, "NOPE") is None


def test_assets_when_listed_non_fractionable_then_reported(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(non_fractionable=frozenset({"BRK"}))

    assert (exchange.is_known("SPY"), exchange.is_fractionable("SPY")) == (True, True)
    assert (exchange.is_known("BRK"), exchange.is_fractionable("BRK")) == (True, False)
    assert exchange.is_known("NOPE") is False


# -- the session clock ------------------------------------------------------------------------


def test_clock_when_session_is_a_dataset_day_then_open_until_its_close(
    exchange: Exchange, account: str
) -> None:
    clock = exchange.clock(account)

    assert clock.is_open is True
    assert clock.timestamp == FRIDAY_SESSION_TIME
    assert clock.next_close == datetime(2025, 3, 7, 21, 0, tzinfo=UTC)  # 16:00 EST
    assert clock.next_open == datetime(2025, 3, 10, 13, 30, tzinfo=UTC)  # 9:30 EDT


def test_clock_when_session_is_a_weekend_then_closed_until_monday(
    exchange: Exchange, account: str
) -> None:
    clock = exchange.set_session(account, SATURDAY)

    assert clock == exchange.clock(account)
    assert clock.is_open is False
    assert clock.timestamp == datetime(2025, 3, 8, 20, 50, tzinfo=UTC)
    assert clock.next_open == datetime(2025, 3, 10, 13, 30, tzinfo=UTC)
    assert clock.next_close == datetime(2025, 3, 10, 20, 0, tzinfo=UTC)


def test_clock_when_session_is_a_holiday_then_closed_until_the_next_dataset_day(
    make_exchange: ExchangeFactory,
    write_bars: Callable[[str, str], Path],
    new_key: Callable[[], str],
) -> None:
    exchange = make_exchange(dataset_dir=write_bars("holiday", HOLIDAY_BARS))
    number = exchange.open_account(new_key(), "secret").account_number

    good_friday = exchange.set_session(number, date(2025, 4, 18))
    thursday = exchange.set_session(number, date(2025, 4, 17))

    assert good_friday.is_open is False
    assert good_friday.next_open == datetime(2025, 4, 21, 13, 30, tzinfo=UTC)
    assert good_friday.next_close == datetime(2025, 4, 21, 20, 0, tzinfo=UTC)
    assert thursday.is_open is True
    assert thursday.next_close == datetime(2025, 4, 17, 20, 0, tzinfo=UTC)
    assert thursday.next_open == datetime(2025, 4, 21, 13, 30, tzinfo=UTC)  # not Good Friday


def test_clock_when_session_after_the_dataset_then_closed_and_next_weekday_opens(
    exchange: Exchange, account: str
) -> None:
    clock = exchange.set_session(account, date(2025, 3, 11))

    assert clock.is_open is False
    assert clock.next_open == datetime(2025, 3, 12, 13, 30, tzinfo=UTC)


def test_session_when_dataset_has_no_days_then_wall_clock_date(
    database_url: str, write_bars: Callable[[str, str], Path], new_key: Callable[[], str]
) -> None:
    engine = create_engine_from_url(database_url)
    empty = write_bars("empty", "date,symbol,open,high,low,close,volume\n")
    try:
        exchange = Exchange(
            engine,
            DatasetMarketData(empty),
            TradingRules(),
            clock=lambda: datetime(2025, 3, 7, 15, 0, tzinfo=UTC),
        )
        exchange.migrate()
        number = exchange.open_account(new_key(), "secret").account_number

        assert exchange.session_of(exchange.account(number)) == FRIDAY
        assert exchange.clock(number).is_open is False
        assert exchange.session_bar(number, "SPY") is None
    finally:
        engine.dispose()


# -- market orders ----------------------------------------------------------------------------


def test_submit_when_market_buy_then_filled_at_session_close_and_cash_exact(
    exchange: Exchange, account: str
) -> None:
    order = exchange.submit(account, _buy("b1"))

    assert order.status is OrderStatus.FILLED
    assert (order.filled_qty, order.filled_avg_price) == (Decimal(10), Decimal("510.25"))
    assert order.submitted_at == FRIDAY_SESSION_TIME
    assert order.filled_at == FRIDAY_SESSION_TIME
    assert order.session_date == FRIDAY
    view = exchange.balances(account)
    assert view.cash == Decimal("94897.50")
    assert view.buying_power == Decimal("94897.50")
    assert view.equity == Decimal("100000.00")
    position = exchange.position(account, "SPY")
    assert (position.qty, position.avg_entry_price) == (Decimal(10), Decimal("510.25"))
    assert position.market_value == Decimal("5102.50")


@pytest.mark.parametrize(
    ("session", "close"),
    [(THURSDAY, Decimal("500.00")), (FRIDAY, Decimal("510.25")), (MONDAY, Decimal("505.00"))],
)
def test_submit_when_market_order_then_fills_at_the_close_of_the_account_session(
    exchange: Exchange, account: str, session: date, close: Decimal
) -> None:
    exchange.set_session(account, session)

    order = exchange.submit(account, _buy("b1", qty=Decimal(1)))

    assert order.filled_avg_price == close
    assert order.session_date == session


def test_submit_when_buys_in_two_sessions_then_average_entry_weighted(
    exchange: Exchange, account: str
) -> None:
    exchange.set_session(account, THURSDAY)
    exchange.submit(account, _buy("b1", qty=Decimal(30)))
    exchange.set_session(account, FRIDAY)
    exchange.submit(account, _buy("b2", qty=Decimal(10)))

    position = exchange.position(account, "SPY")
    # (30 * 500.00 + 10 * 510.25) / 40
    assert (position.qty, position.avg_entry_price) == (Decimal(40), Decimal("502.5625"))
    assert position.current_price == Decimal("510.25")
    assert exchange.balances(account).cash == Decimal("79897.50")  # 100000 - 15000 - 5102.50


def test_submit_when_market_sell_then_cash_credited_and_position_reduced(
    exchange: Exchange, account: str
) -> None:
    exchange.submit(account, _buy("b1"))

    order = exchange.submit(account, _sell("s1", qty=Decimal(4)))

    assert order.status is OrderStatus.FILLED
    assert exchange.balances(account).cash == Decimal("96938.50")  # 94897.50 + 4 * 510.25
    position = exchange.position(account, "SPY")
    assert (position.qty, position.avg_entry_price) == (Decimal(6), Decimal("510.25"))


def test_submit_when_whole_position_sold_then_position_gone(
    exchange: Exchange, account: str
) -> None:
    exchange.submit(account, _buy("b1"))
    exchange.submit(account, _sell("s1", qty=Decimal(10)))

    assert exchange.positions(account) == []
    with pytest.raises(NotFoundError, match="position does not exist"):
        exchange.position(account, "SPY")


def test_submit_when_unknown_symbol_then_refused_and_nothing_stored(
    exchange: Exchange, account: str
) -> None:
    with pytest.raises(InvalidOrderError, match='asset "NOPE" not found'):
        exchange.submit(account, _buy("b1", symbol="NOPE"))

    with pytest.raises(NotFoundError):
        exchange.order_by_client_id(account, "b1")


def test_submit_when_trading_blocked_then_refused_with_403(
    exchange: Exchange, account: str
) -> None:
    exchange.set_trading_blocked(account, True)

    with pytest.raises(AccountBlockedError) as caught:
        exchange.submit(account, _buy("b1"))

    assert caught.value.status == 403
    assert exchange.account(account).trading_blocked is True
    exchange.set_trading_blocked(account, False)
    assert exchange.submit(account, _buy("b1")).status is OrderStatus.FILLED


@pytest.mark.parametrize("tif", ["ioc", "fok", "opg"])
def test_submit_when_time_in_force_unsupported_then_refused(
    exchange: Exchange, account: str, tif: str
) -> None:
    with pytest.raises(InvalidOrderError, match="time_in_force"):
        exchange.submit(account, _buy("b1", time_in_force=tif))


# -- fractional and notional ------------------------------------------------------------------


def test_submit_when_notional_buy_on_fractionable_then_fractional_qty(
    exchange: Exchange, account: str
) -> None:
    order = exchange.submit(account, _buy("n1", notional=Decimal(1000)))

    assert order.status is OrderStatus.FILLED
    assert (order.qty, order.notional) == (None, Decimal(1000))
    assert order.filled_qty == Decimal("1.959823615")  # 1000 / 510.25 rounded down
    # 1.959823615 * 510.25 = 999.99999955375 -> 1000.00
    assert exchange.balances(account).cash == Decimal("99000.00")


def test_submit_when_notional_or_fraction_on_non_fractionable_then_refused(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(non_fractionable=frozenset({"BRK"}))
    account = exchange.open_account(new_key(), "secret").account_number
    exchange.set_session(account, FRIDAY)

    with pytest.raises(InvalidOrderError, match="not fractionable"):
        exchange.submit(account, _buy("n1", symbol="BRK", notional=Decimal(1000)))
    with pytest.raises(InvalidOrderError, match="not fractionable"):
        exchange.submit(account, _buy("n2", symbol="BRK", qty=Decimal("1.5")))
    assert exchange.positions(account) == []
    whole = exchange.submit(account, _buy("n3", symbol="BRK", qty=Decimal(3)))
    assert (whole.filled_qty, whole.filled_avg_price) == (Decimal(3), Decimal("250.00"))


def test_submit_when_fractional_limit_order_then_refused(exchange: Exchange, account: str) -> None:
    spec = _buy("l1", qty=Decimal("1.5"), limit_price=Decimal(520))

    with pytest.raises(InvalidOrderError, match="market orders"):
        exchange.submit(account, spec)


def test_submit_when_fractional_gtc_order_then_refused(exchange: Exchange, account: str) -> None:
    with pytest.raises(InvalidOrderError, match="day orders"):
        exchange.submit(account, _buy("g1", qty=Decimal("1.5"), time_in_force="gtc"))


def test_submit_when_sub_penny_limit_then_refused(exchange: Exchange, account: str) -> None:
    with pytest.raises(InvalidOrderError, match="sub-penny"):
        exchange.submit(account, _buy("l1", limit_price=Decimal("510.255")))


# -- limit orders against the session's range -------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "fill"),
    [
        (Decimal(520), Decimal("510.25")),  # above the close: at the close
        (Decimal(505), Decimal(505)),  # inside the range: at the limit
        (Decimal(499), Decimal(499)),  # at the low: at the limit
        (Decimal("498.99"), None),  # below the low: rests
    ],
)
def test_submit_when_buy_limit_then_fills_iff_low_reaches_it_at_min_of_limit_and_close(
    exchange: Exchange, account: str, limit: Decimal, fill: Decimal | None
) -> None:
    order = exchange.submit(account, _buy("l1", limit_price=limit))

    if fill is None:
        assert (order.status, order.filled_qty, order.filled_avg_price) == (
            OrderStatus.NEW,
            Decimal(0),
            None,
        )
    else:
        assert (order.status, order.filled_avg_price) == (OrderStatus.FILLED, fill)
        assert exchange.balances(account).cash == Decimal(100000) - 10 * fill


@pytest.mark.parametrize(
    ("limit", "fill"),
    [
        (Decimal(500), Decimal("510.25")),  # below the close: at the close
        (Decimal(511), Decimal(511)),  # inside the range: at the limit
        (Decimal(512), Decimal(512)),  # at the high: at the limit
        (Decimal("512.01"), None),  # above the high: rests
    ],
)
def test_submit_when_sell_limit_then_fills_iff_high_reaches_it_at_max_of_limit_and_close(
    exchange: Exchange, account: str, limit: Decimal, fill: Decimal | None
) -> None:
    exchange.set_position(account, "SPY", Decimal(10), Decimal(400))

    order = exchange.submit(account, _sell("s1", qty=Decimal(10), limit_price=limit))

    if fill is None:
        assert order.status is OrderStatus.NEW
        assert _qty(exchange, account) == Decimal(10)
    else:
        assert (order.status, order.filled_avg_price) == (OrderStatus.FILLED, fill)
        assert exchange.balances(account).cash == Decimal(100000) + 10 * fill


def test_submit_when_buy_limit_rests_then_holds_buying_power(
    exchange: Exchange, account: str
) -> None:
    order = exchange.submit(account, _buy("l1", limit_price=Decimal("498.00")))

    assert (order.status, order.filled_qty) == (OrderStatus.NEW, Decimal(0))
    view = exchange.balances(account)
    assert view.cash == Decimal(100000)
    assert view.buying_power == Decimal("95020.00")  # 10 * 498.00 held
    assert exchange.positions(account) == []
    assert [o.broker_order_id for o in exchange.orders(account)] == [order.broker_order_id]


def test_replace_when_limit_becomes_marketable_then_new_order_fills(
    exchange: Exchange, account: str
) -> None:
    original = exchange.submit(account, _buy("l1", limit_price=Decimal("498.00")))

    replacement = exchange.replace(account, original.broker_order_id, limit_price=Decimal(511))

    assert replacement.broker_order_id != original.broker_order_id
    assert replacement.replaces == original.broker_order_id
    assert replacement.status is OrderStatus.FILLED
    assert (replacement.filled_qty, replacement.limit_price) == (Decimal(10), Decimal(511))
    assert replacement.filled_avg_price == Decimal("510.25")
    old = exchange.order_by_client_id(account, "l1")
    assert (old.status, old.replaced_by) == (OrderStatus.REPLACED, replacement.broker_order_id)
    assert exchange.order_by_client_id(account, replacement.client_order_id) == replacement
    view = exchange.balances(account)
    assert (view.cash, view.buying_power) == (Decimal("94897.50"), Decimal("94897.50"))


def test_replace_when_qty_only_then_new_order_keeps_limit_and_rests(
    exchange: Exchange, account: str
) -> None:
    original = exchange.submit(account, _buy("l1", limit_price=Decimal("498.00")))

    replacement = exchange.replace(account, original.broker_order_id, qty=Decimal(4))

    assert (replacement.status, replacement.target_qty) == (OrderStatus.NEW, Decimal(4))
    assert replacement.limit_price == Decimal("498.00")
    assert exchange.balances(account).buying_power == Decimal("98008.00")  # 4 * 498 held
    assert [o.broker_order_id for o in exchange.orders(account)] == [replacement.broker_order_id]


def test_replace_when_nothing_to_change_or_limit_on_market_order_then_refused(
    exchange: Exchange, account: str
) -> None:
    exchange.hold_fills = True
    market = exchange.submit(account, _buy("m1"))

    with pytest.raises(InvalidOrderError, match="required"):
        exchange.replace(account, market.broker_order_id)
    with pytest.raises(InvalidOrderError, match="limit order"):
        exchange.replace(account, market.broker_order_id, limit_price=Decimal(500))


def test_replace_when_order_final_or_unknown_then_refused(exchange: Exchange, account: str) -> None:
    filled = exchange.submit(account, _buy("b1"))

    with pytest.raises(OrderNotCancelableError, match="filled") as caught:
        exchange.replace(account, filled.broker_order_id, qty=Decimal(5))
    with pytest.raises(NotFoundError):
        exchange.replace(account, "no-such-order", qty=Decimal(5))
    assert caught.value.status == 422


def test_cancel_when_open_then_canceled_and_buying_power_released(
    exchange: Exchange, account: str
) -> None:
    order = exchange.submit(account, _buy("l1", limit_price=Decimal("498.00")))

    exchange.cancel(account, order.broker_order_id)

    canceled = exchange.order(account, order.broker_order_id)
    assert canceled.status is OrderStatus.CANCELED
    assert canceled.canceled_at == FRIDAY_SESSION_TIME
    assert exchange.balances(account).buying_power == Decimal(100000)
    assert exchange.orders(account) == []
    with pytest.raises(OrderNotCancelableError, match='"canceled"'):
        exchange.cancel(account, order.broker_order_id)  # Alpaca: 422 once final


def test_cancel_when_filled_or_unknown_then_error(exchange: Exchange, account: str) -> None:
    filled = exchange.submit(account, _buy("b1"))

    with pytest.raises(OrderNotCancelableError):
        exchange.cancel(account, filled.broker_order_id)
    with pytest.raises(NotFoundError):
        exchange.cancel(account, "no-such-order")


def test_orders_when_status_filter_then_open_closed_or_all_newest_first(
    exchange: Exchange, account: str
) -> None:
    filled = exchange.submit(account, _buy("b1", qty=Decimal(1)))
    resting = exchange.submit(account, _buy("l1", qty=Decimal(1), limit_price=Decimal(400)))
    canceled = exchange.submit(account, _buy("l2", qty=Decimal(1), limit_price=Decimal(401)))
    exchange.cancel(account, canceled.broker_order_id)

    def ids(status: str) -> set[str]:
        return {o.broker_order_id for o in exchange.orders(account, status=status)}

    assert ids("open") == {resting.broker_order_id}
    assert ids("closed") == {filled.broker_order_id, canceled.broker_order_id}
    assert ids("all") == ids("open") | ids("closed")
    newest_first = [o.broker_order_id for o in exchange.orders(account, status="all")]
    assert newest_first == [
        canceled.broker_order_id,
        resting.broker_order_id,
        filled.broker_order_id,
    ]
    assert len(exchange.orders(account, status="all", limit=2)) == 2
    with pytest.raises(InvalidOrderError):
        exchange.orders(account, status="pending")


def test_orders_when_several_open_then_newest_first_up_to_the_limit(
    exchange: Exchange, account: str
) -> None:
    exchange.submit(account, _buy("b1", qty=Decimal(1)))
    resting = [
        exchange.submit(account, _buy(f"l{n}", qty=Decimal(1), limit_price=Decimal(400 + n)))
        for n in range(3)
    ]
    newest_first = [order.broker_order_id for order in reversed(resting)]

    assert [o.broker_order_id for o in exchange.orders(account)] == newest_first
    assert [o.broker_order_id for o in exchange.orders(account, limit=2)] == newest_first[:2]
    assert [o.broker_order_id for o in exchange.orders(account, session=FRIDAY)] == newest_first


# -- partial fills and manual fills -----------------------------------------------------------


def test_submit_when_partial_fill_ratio_then_partially_filled_and_rest_held(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(partial_fill_ratio=Decimal("0.5"))
    account = exchange.open_account(new_key(), "secret").account_number
    exchange.set_session(account, FRIDAY)

    order = exchange.submit(account, _buy("p1"))

    assert (order.status, order.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal(5))
    view = exchange.balances(account)
    assert view.cash == Decimal("97448.75")  # 100000 - 5 * 510.25
    assert view.buying_power == Decimal("94897.50")  # the other 5 are held
    assert _qty(exchange, account) == Decimal(5)
    exchange.cancel(account, order.broker_order_id)
    canceled = exchange.order(account, order.broker_order_id)
    assert (canceled.status, canceled.filled_qty) == (OrderStatus.CANCELED, Decimal(5))
    assert exchange.balances(account).buying_power == Decimal("97448.75")


def test_submit_when_partial_fill_of_non_fractionable_then_whole_shares(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(partial_fill_ratio=Decimal("0.5"), non_fractionable=frozenset({"BRK"}))
    account = exchange.open_account(new_key(), "secret").account_number
    exchange.set_session(account, FRIDAY)

    order = exchange.submit(account, _buy("p1", symbol="BRK", qty=Decimal(3)))

    assert (order.status, order.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal(1))


def test_fill_order_when_held_then_filled_manually_at_given_price_and_qty(
    exchange: Exchange, account: str
) -> None:
    exchange.hold_fills = True
    order = exchange.submit(account, _buy("h1"))
    assert order.status is OrderStatus.NEW

    part = exchange.fill_order(account, order.broker_order_id, qty=Decimal(4), price=Decimal(509))
    rest = exchange.fill_order(account, order.broker_order_id)

    assert (part.status, part.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal(4))
    assert (rest.status, rest.filled_qty) == (OrderStatus.FILLED, Decimal(10))
    assert rest.filled_avg_price == Decimal("509.75")  # (4 * 509 + 6 * 510.25) / 10
    assert exchange.balances(account).cash == Decimal("94902.50")  # 2036.00 + 3061.50
    with pytest.raises(OrderNotCancelableError):
        exchange.fill_order(account, order.broker_order_id)


# -- refusals ---------------------------------------------------------------------------------


def test_submit_when_insufficient_buying_power_then_refused_and_nothing_stored(
    exchange: Exchange, account: str
) -> None:
    with pytest.raises(InsufficientFundsError, match="insufficient buying power") as caught:
        exchange.submit(account, _buy("big", qty=Decimal(196)))  # 100009.00 > 100000

    assert caught.value.status == 403
    with pytest.raises(NotFoundError):
        exchange.order_by_client_id(account, "big")
    assert exchange.balances(account).cash == Decimal(100000)
    # The refused id was never stored, so it can be used again.
    assert exchange.submit(account, _buy("big", qty=Decimal(195))).status is OrderStatus.FILLED


def test_submit_when_resting_buys_hold_the_cash_then_next_buy_refused(
    exchange: Exchange, account: str
) -> None:
    exchange.submit(account, _buy("l1", qty=Decimal(150), limit_price=Decimal(400)))  # 60000

    with pytest.raises(InsufficientFundsError):
        exchange.submit(account, _buy("b1", qty=Decimal(80)))  # 40820 > 40000


def test_submit_when_selling_without_position_then_refused(
    exchange: Exchange, account: str
) -> None:
    with pytest.raises(InsufficientFundsError, match="insufficient qty"):
        exchange.submit(account, _sell("s1", qty=Decimal(1)))

    assert exchange.positions(account) == []


def test_submit_when_selling_more_than_held_or_offered_then_refused(
    exchange: Exchange, account: str
) -> None:
    exchange.submit(account, _buy("b1"))

    with pytest.raises(InsufficientFundsError, match="requested: 11, available: 10"):
        exchange.submit(account, _sell("s1", qty=Decimal(11)))
    exchange.submit(account, _sell("s2", qty=Decimal(6), limit_price=Decimal(600)))
    with pytest.raises(InsufficientFundsError, match="available: 4"):
        exchange.submit(account, _sell("s3", qty=Decimal(5)))
    assert _qty(exchange, account) == Decimal(10)


def test_submit_when_another_symbol_has_resting_sells_then_this_ones_sellable_unchanged(
    exchange: Exchange, account: str
) -> None:
    exchange.submit(account, _buy("b1"))
    exchange.submit(account, _buy("b2", symbol="QQQ"))
    exchange.submit(account, _sell("q1", symbol="QQQ", qty=Decimal(10), limit_price=Decimal(900)))

    with pytest.raises(InsufficientFundsError, match="available: 0"):
        exchange.submit(account, _sell("q2", symbol="QQQ", qty=Decimal(1)))
    assert exchange.submit(account, _sell("s1", qty=Decimal(10))).status is OrderStatus.FILLED
    assert _qty(exchange, account) == Decimal(0)


# -- idempotency and concurrency --------------------------------------------------------------


def test_submit_when_client_order_id_reused_then_duplicate_refused_before_any_check(
    exchange: Exchange, account: str
) -> None:
    first = exchange.submit(account, _buy("dup", qty=Decimal(190)))

    # The repeat would now lack buying power: the constraint answers before any check.
    with pytest.raises(DuplicateOrderError, match="client_order_id must be unique") as caught:
        exchange.submit(account, _buy("dup", qty=Decimal(190)))

    assert (caught.value.status, caught.value.code) == (422, 40010001)
    assert exchange.order_by_client_id(account, "dup") == first
    assert exchange.balances(account).cash == Decimal("3052.50")  # 100000 - 190 * 510.25


def test_submit_when_reused_from_another_instance_then_one_order(
    make_exchange: ExchangeFactory, exchange: Exchange, account: str
) -> None:
    first = exchange.submit(account, _buy("dup"))
    other = make_exchange()

    with pytest.raises(DuplicateOrderError):
        other.submit(account, _buy("dup", qty=Decimal(3)))

    assert other.order_by_client_id(account, "dup") == first
    assert _qty(other, account) == Decimal(10)


def test_submit_when_same_id_concurrent_from_many_instances_then_one_fill(
    make_exchange: ExchangeFactory, account: str
) -> None:
    exchanges = [make_exchange() for _ in range(4)]
    barrier = threading.Barrier(len(exchanges), timeout=WAIT_S)

    def submit(exchange: Exchange) -> str:
        barrier.wait()
        try:
            return exchange.submit(account, _buy("race")).broker_order_id
        except DuplicateOrderError:
            return "duplicate"

    with ThreadPoolExecutor(max_workers=len(exchanges)) as pool:
        results = list(pool.map(submit, exchanges))

    assert results.count("duplicate") == 3  # the other three met the constraint
    assert _qty(exchanges[0], account) == Decimal(10)
    assert exchanges[0].balances(account).cash == Decimal("94897.50")


def test_submit_when_concurrent_buys_exceed_cash_then_account_lock_lets_only_the_funded_ones(
    make_exchange: ExchangeFactory, account: str
) -> None:
    exchanges = [make_exchange() for _ in range(4)]
    barrier = threading.Barrier(len(exchanges), timeout=WAIT_S)

    def submit(indexed: tuple[int, Exchange]) -> str:
        index, exchange = indexed
        barrier.wait()
        try:
            return exchange.submit(account, _buy(f"c{index}", qty=Decimal(60))).status.value
        except InsufficientFundsError:
            return "refused"

    with ThreadPoolExecutor(max_workers=len(exchanges)) as pool:
        results = list(pool.map(submit, enumerate(exchanges)))

    # 60 * 510.25 = 30615.00: three fit in 100000, the fourth must not overdraw the account
    assert sorted(results) == ["filled", "filled", "filled", "refused"]
    assert exchanges[0].balances(account).cash == Decimal("8155.00")
    assert _qty(exchanges[0], account) == Decimal(180)


def test_insert_when_client_order_id_reused_then_constraint_refuses(
    exchange: Exchange, account: str
) -> None:
    order = exchange.submit(account, _buy("dup"))
    with exchange.engine.connect() as connection:
        row = connection.execute(
            sa.select(order_table).where(order_table.c.broker_order_id == order.broker_order_id)
        ).mappings()
        original = next(iter(row))
    # only the client_order_id repeats (a fresh id and sequence number)
    copy = {**original, "broker_order_id": "another-id", "sequence": original["sequence"] + 99}

    with (
        pytest.raises(sa_exc.IntegrityError, match="client_order_id"),
        exchange.engine.begin() as connection,
    ):
        connection.execute(sa.insert(order_table).values(copy))

    assert exchange.order_by_client_id(account, "dup") == order


# -- close position and persistence ---------------------------------------------------------


def test_close_position_when_held_then_sold_whole(exchange: Exchange, account: str) -> None:
    exchange.submit(account, _buy("b1", notional=Decimal(1000)))

    order = exchange.close_position(account, "SPY")

    assert (order.side, order.status) == (OrderSide.SELL, OrderStatus.FILLED)
    assert order.order_type is OrderType.MARKET
    assert order.filled_qty == Decimal("1.959823615")
    assert exchange.positions(account) == []
    assert exchange.balances(account).cash == Decimal(100000)
    with pytest.raises(NotFoundError):
        exchange.close_position(account, "SPY")


def test_new_instance_when_same_database_then_state_survives(
    make_exchange: ExchangeFactory,
    exchange: Exchange,
    account: str,
    new_key: Callable[[], str],
) -> None:
    order = exchange.submit(account, _buy("b1"))
    resting = exchange.submit(account, _buy("l1", qty=Decimal(1), limit_price=Decimal(400)))

    again = make_exchange()

    assert again.balances(account) == exchange.balances(account)
    assert again.positions(account) == exchange.positions(account)
    assert again.order_by_client_id(account, "b1") == order
    assert again.orders(account) == [resting]
    assert again.session_of(again.account(account)) == FRIDAY
    stranger = again.authenticate(new_key(), "secret").account_number
    assert again.balances(stranger).cash == Decimal(100000)
    with pytest.raises(NotFoundError):
        again.order_by_client_id(stranger, "b1")


# -- moving the session -----------------------------------------------------------------------


def test_set_session_when_moved_then_open_day_orders_expire_and_hold_released(
    exchange: Exchange, account: str
) -> None:
    order = exchange.submit(account, _buy("d1", limit_price=Decimal("498.00")))

    exchange.set_session(account, MONDAY)

    expired = exchange.order(account, order.broker_order_id)
    assert expired.status is OrderStatus.EXPIRED
    assert expired.expired_at == MONDAY_SESSION_TIME
    assert exchange.balances(account).buying_power == Decimal(100000)


def test_set_session_when_new_range_crosses_a_gtc_order_then_it_fills(
    exchange: Exchange, account: str
) -> None:
    exchange.set_session(account, THURSDAY)  # high 501
    exchange.set_position(account, "SPY", Decimal(10), Decimal(400))
    crossing = exchange.submit(
        account, _sell("g1", qty=Decimal(4), limit_price=Decimal("511.50"), time_in_force="gtc")
    )
    distant = exchange.submit(
        account, _sell("g2", qty=Decimal(3), limit_price=Decimal(520), time_in_force="gtc")
    )
    day = exchange.submit(account, _sell("d1", qty=Decimal(2), limit_price=Decimal(505)))
    assert {crossing.status, distant.status, day.status} == {OrderStatus.NEW}

    exchange.set_session(account, FRIDAY)  # high 512

    filled = exchange.order(account, crossing.broker_order_id)
    assert (filled.status, filled.filled_avg_price) == (OrderStatus.FILLED, Decimal("511.50"))
    assert filled.filled_at == FRIDAY_SESSION_TIME
    assert exchange.order(account, distant.broker_order_id).status is OrderStatus.NEW
    assert exchange.order(account, day.broker_order_id).status is OrderStatus.EXPIRED
    assert exchange.balances(account).cash == Decimal("102046.00")  # + 4 * 511.50
    assert _qty(exchange, account) == Decimal(6)


def test_set_session_when_moved_to_a_weekend_then_gtc_rests_and_day_expires(
    exchange: Exchange, account: str
) -> None:
    gtc = exchange.submit(account, _buy("g1", limit_price=Decimal(490), time_in_force="gtc"))
    day = exchange.submit(account, _buy("d1", limit_price=Decimal(490)))

    exchange.set_session(account, SATURDAY)

    assert exchange.order(account, gtc.broker_order_id).status is OrderStatus.NEW
    assert exchange.order(account, day.broker_order_id).status is OrderStatus.EXPIRED


def test_submit_when_market_closed_then_queued_and_filled_in_the_next_trading_session(
    exchange: Exchange, account: str
) -> None:
    exchange.set_session(account, SATURDAY)
    market = exchange.submit(account, _buy("m1"))
    limit = exchange.submit(account, _buy("l1", limit_price=Decimal(503)))  # Monday's low: 504
    assert (market.status, limit.status) == (OrderStatus.NEW, OrderStatus.NEW)
    assert _qty(exchange, account) == Decimal(0)  # nothing trades while the market is closed

    exchange.set_session(account, MONDAY)

    filled = exchange.order(account, market.broker_order_id)
    assert (filled.status, filled.filled_avg_price) == (OrderStatus.FILLED, Decimal("505.00"))
    assert filled.filled_at == MONDAY_SESSION_TIME
    resting = exchange.order(account, limit.broker_order_id)
    assert (resting.status, resting.session_date) == (OrderStatus.NEW, MONDAY)  # Monday's now
    assert _qty(exchange, account) == Decimal(10)

    exchange.set_session(account, date(2025, 3, 11))  # Monday's day order ends with Monday
    assert exchange.order(account, limit.broker_order_id).status is OrderStatus.EXPIRED


def test_set_session_when_same_session_again_then_nothing_changes(
    exchange: Exchange, account: str
) -> None:
    day = exchange.submit(account, _buy("d1", limit_price=Decimal(490)))

    clock = exchange.set_session(account, FRIDAY)

    assert clock == exchange.clock(account)
    assert exchange.order(account, day.broker_order_id).status is OrderStatus.NEW


def test_accounts_when_in_different_sessions_then_priced_and_kept_apart(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    first = exchange.open_account(new_key(), "secret").account_number
    second = exchange.open_account(new_key(), "secret").account_number
    exchange.set_session(first, THURSDAY)
    exchange.set_session(second, MONDAY)

    mine = exchange.submit(first, _buy("same-id", qty=Decimal(2)))
    theirs = exchange.submit(second, _buy("same-id", qty=Decimal(3)))  # ids are per account

    assert mine.filled_avg_price == Decimal("500.00")
    assert theirs.filled_avg_price == Decimal("505.00")
    assert exchange.clock(first).timestamp.date() == THURSDAY
    assert exchange.clock(second).timestamp.date() == MONDAY
    assert exchange.quote(first, "SPY") != exchange.quote(second, "SPY")
    assert [o.broker_order_id for o in exchange.orders(first, status="all")] == [
        mine.broker_order_id
    ]
    assert [p.qty for p in exchange.positions(first)] == [Decimal(2)]
    assert [p.qty for p in exchange.positions(second)] == [Decimal(3)]
    assert exchange.order_by_client_id(second, "same-id") == theirs
    with pytest.raises(NotFoundError):
        exchange.order(first, theirs.broker_order_id)
    with pytest.raises(NotFoundError):
        exchange.cancel(first, theirs.broker_order_id)
    assert exchange.balances(first).cash == Decimal("99000.00")
    assert exchange.balances(second).cash == Decimal("98485.00")


# -- trade updates ----------------------------------------------------------------------------


def test_subscribe_when_orders_change_then_each_update_after_its_commit(
    exchange: Exchange, account: str
) -> None:
    seen: list[tuple[str, TradeUpdate]] = []
    unsubscribe = exchange.subscribe(lambda number, update: seen.append((number, update)))

    bought = exchange.submit(account, _buy("b1"))
    exchange.submit(account, _sell("s1", qty=Decimal(4)))
    resting = exchange.submit(account, _buy("l1", qty=Decimal(1), limit_price=Decimal(400)))
    exchange.cancel(account, resting.broker_order_id)
    unsubscribe()
    exchange.submit(account, _buy("b2", qty=Decimal(1)))

    assert {number for number, _ in seen} == {account}
    assert [(u.event, u.order.client_order_id) for _, u in seen] == [
        ("new", "b1"),
        ("fill", "b1"),
        ("new", "s1"),
        ("fill", "s1"),
        ("new", "l1"),
        ("canceled", "l1"),
    ]
    fill = seen[1][1]
    assert (fill.price, fill.qty) == (Decimal("510.25"), Decimal(10))
    assert fill.position_qty == Decimal(10)  # the position after the fill, not the cash
    assert fill.order == bought and fill.at == FRIDAY_SESSION_TIME
    assert seen[3][1].position_qty == Decimal(6)
    assert seen[0][1].order.status is OrderStatus.NEW


def test_subscribe_when_listener_fails_then_exchange_unaffected(
    exchange: Exchange, account: str
) -> None:
    def broken(_number: str, _update: TradeUpdate) -> None:
        raise RuntimeError("listener bug")

    exchange.subscribe(broken)

    assert exchange.submit(account, _buy("b1")).status is OrderStatus.FILLED


def test_subscribe_when_refused_then_no_update(exchange: Exchange, account: str) -> None:
    seen: list[TradeUpdate] = []
    exchange.subscribe(lambda _number, update: seen.append(update))

    with pytest.raises(ExchangeError):
        exchange.submit(account, _buy("big", qty=Decimal(1000)))

    assert seen == []


# -- SQLite specifics -------------------------------------------------------------------------


def test_exchange_when_engine_not_from_helper_then_configuration_error(
    sqlite_url: str, bars_dir: Path
) -> None:
    plain = sa.create_engine(sqlite_url.replace("/db/", "/"))
    try:
        with pytest.raises(ConfigurationError, match="create_engine_from_url"):
            Exchange(plain, DatasetMarketData(bars_dir), TradingRules())
    finally:
        plain.dispose()


def test_reads_when_account_has_orders_then_working_and_session_orders_found_by_index(
    sqlite_url: str, bars_dir: Path
) -> None:
    """The working orders (buying power, sellable quantity, ``status=open``) and a session's
    orders are looked up by status or session, not by walking every order of the account."""
    engine = create_engine_from_url(sqlite_url)
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM exchange_order" in statement:
            seen.append((statement, parameters))

    try:
        exchange = Exchange(engine, DatasetMarketData(bars_dir), TradingRules())
        exchange.migrate()
        account = exchange.open_account("key", "secret").account_number
        exchange.set_session(account, FRIDAY)
        for n in range(5):
            exchange.submit(account, _buy(f"b{n}", qty=Decimal(1)))
        exchange.submit(account, _buy("rest", qty=Decimal(1), limit_price=Decimal(400)))
        sa.event.listen(engine, "before_cursor_execute", record)
        exchange.balances(account)
        exchange.submit(account, _sell("s1", qty=Decimal(1)))
        exchange.orders(account)
        exchange.orders(account, status="all", session=FRIDAY)
        sa.event.remove(engine, "before_cursor_execute", record)
        with engine.connect() as connection:
            plans = [
                [
                    row[-1]
                    for row in connection.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {statement}", parameters
                    )
                ]
                for statement, parameters in seen
                if "status IN" in statement or "session_date =" in statement
            ]
    finally:
        engine.dispose()

    assert len(plans) >= 4  # balances, the sell's check, open orders, the session's orders
    for plan in plans:
        searches = [step for step in plan if step.startswith("SEARCH exchange_order")]
        assert searches, plan
        assert all("status=?" in step or "session_date=?" in step for step in searches), plan


def test_submit_when_database_locked_then_unavailable_503_and_nothing_stored(
    sqlite_url: str, bars_dir: Path
) -> None:
    engine = create_engine_from_url(sqlite_url)
    impatient_engine = create_engine_from_url(sqlite_url, sqlite_busy_timeout_seconds=0.2)
    dataset = DatasetMarketData(bars_dir)
    try:
        exchange = Exchange(engine, dataset, TradingRules())
        exchange.migrate()
        account = exchange.open_account("key", "secret").account_number
        impatient = Exchange(impatient_engine, dataset, TradingRules())
        holder = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(ExchangeUnavailableError) as caught:
                impatient.submit(account, _buy("locked"))
            assert caught.value.status == 503
        finally:
            holder.rollback()
            holder.close()
        with pytest.raises(NotFoundError):
            exchange.order_by_client_id(account, "locked")
    finally:
        impatient_engine.dispose()
        engine.dispose()

"""Contract: :class:`ExchangeBroker` answers exactly as ``AlpacaBroker`` over HTTP does.

One exchange (SQLite, the standard dataset of ``conftest.py``) is served over HTTP by an
:class:`ExchangeServer`. Every test opens two fresh $100,000 accounts in it: one reached by the
Alpaca adapter through the server (``pair.http``), one by :class:`ExchangeBroker` in this
process (``pair.direct``). The same calls run through both and the answers are compared as
broker models: equal, and with equal ``repr`` (so a ``Decimal`` read as ``1000.0`` on one path
and ``1000`` on the other counts as a difference). Only what is necessarily different is left
out: the exchange's order ids (``uuid4``) and, where the exchange makes one up, the client
order id; the account's id and number. Times are equal by construction (session times).

Prices (Friday 2025-03-07): SPY 500 / 512 / 499 / 510.25, BRK 249 / 251 / 248 / 250,
QQQ 400.10; the accounts trade in Friday's session unless a test moves them.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_broker.alpaca_settings import AlpacaSettings
from alchemiser_broker.exceptions import (
    BrokerUnavailableError,
    OrderNotFoundError,
    OrderRejectedError,
)
from alchemiser_broker.models import (
    AccountState,
    BrokerOrder,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
)
from alchemiser_broker.port import BrokerPort
from alchemiser_common.db import create_engine_from_url
from alchemiser_exchange import Exchange, ExchangeServer, TradingRules
from alchemiser_exchange.book import ExchangeUnavailableError
from alchemiser_exchange.direct import ExchangeBroker
from alchemiser_marketdata import DatasetMarketData

THURSDAY = date(2025, 3, 6)
FRIDAY = date(2025, 3, 7)
SATURDAY = date(2025, 3, 8)  # no bars: the market is closed
MONDAY = date(2025, 3, 10)
SECRET = "direct-contract-secret"

T = TypeVar("T")
Broker = AlpacaBroker | ExchangeBroker
"""Both answer the port, and ``get_order`` / ``get_open_orders`` beyond it."""


@dataclass
class Pair:
    """Two fresh accounts of one exchange: one over HTTP, one in process."""

    exchange: Exchange
    http: AlpacaBroker
    direct: ExchangeBroker
    http_account: str
    direct_account: str

    def both(self, call: Callable[[Broker], T]) -> tuple[T, T]:
        """``call`` on the HTTP broker, then on the direct one."""
        return call(self.http), call(self.direct)

    def raises(self, error: type[Exception], call: Callable[[Broker], Any]) -> None:
        """``call`` raises ``error`` on both paths."""
        for broker in (self.http, self.direct):
            with pytest.raises(error):
                call(broker)

    def accounts(self) -> tuple[str, str]:
        return self.http_account, self.direct_account


def _open_pair(exchange: Exchange, server: ExchangeServer) -> Pair:
    """Open two accounts under fresh keys and move both to Friday through their brokers."""
    http_key, direct_key = (f"key-{uuid.uuid4().hex[:16]}" for _ in range(2))
    http_account = exchange.open_account(http_key, SECRET).account_number
    direct_account = exchange.open_account(direct_key, SECRET).account_number
    settings = AlpacaSettings(
        api_key=SecretStr(http_key),
        secret_key=SecretStr(SECRET),
        url_override=server.url,
        data_url_override=server.url,
        session_url=f"{server.url}/exchange/v1/session",
        request_timeout_s=5.0,
        max_retries=1,
        retry_backoff_s=0.0,
        max_rate_limit_wait_s=1.0,
    )
    pair = Pair(
        exchange=exchange,
        http=AlpacaBroker(settings, sleep=lambda _: None),
        direct=ExchangeBroker(exchange, direct_account),
        http_account=http_account,
        direct_account=direct_account,
    )
    pair.both(lambda broker: broker.use_session(FRIDAY))
    return pair


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, bars_dir: Path
) -> Iterator[tuple[Exchange, ExchangeServer]]:
    """One exchange with the default (frictionless) rules, served for the module's tests."""
    database = tmp_path_factory.mktemp("direct-contract") / "exchange.db"
    engine = create_engine_from_url(f"sqlite:///{database}")
    exchange = Exchange(engine, DatasetMarketData(bars_dir), TradingRules())
    exchange.migrate()
    server = ExchangeServer(exchange).start()
    try:
        yield exchange, server
    finally:
        server.stop()
        engine.dispose()


@pytest.fixture
def pair(served: tuple[Exchange, ExchangeServer]) -> Pair:
    return _open_pair(*served)


def _same(http_value: object, direct_value: object) -> None:
    """Equal models, and equal to the last digit (``repr`` shows a Decimal's exponent)."""
    assert direct_value == http_value
    assert repr(direct_value) == repr(http_value)


def _anonymous(order: BrokerOrder, *, client_order_id: bool = False) -> BrokerOrder:
    """``order`` without the exchange's id (and the client order id when it made one up)."""
    assert uuid.UUID(order.broker_order_id)
    blank: dict[str, Any] = {"broker_order_id": "-"}
    if client_order_id:
        assert order.client_order_id
        blank["client_order_id"] = "-"
    return dataclasses.replace(order, **blank)


def _same_orders(
    http_orders: list[BrokerOrder], direct_orders: list[BrokerOrder], **options: bool
) -> None:
    _same(
        [_anonymous(order, **options) for order in http_orders],
        [_anonymous(order, **options) for order in direct_orders],
    )


def _same_account(pair: Pair, http_state: AccountState, direct_state: AccountState) -> None:
    assert (http_state.account_number, direct_state.account_number) == pair.accounts()
    assert http_state.account_id and direct_state.account_id
    assert http_state.account_id != direct_state.account_id
    _same(
        dataclasses.replace(http_state, account_id="-", account_number="-"),
        dataclasses.replace(direct_state, account_id="-", account_number="-"),
    )


def _buy(cid: str, symbol: str = "SPY", **fields: Any) -> OrderRequest:
    if "qty" not in fields and "notional" not in fields:
        fields["qty"] = Decimal(3)
    return OrderRequest(client_order_id=cid, symbol=symbol, side=OrderSide.BUY, **fields)


def _limit(cid: str, price: str, qty: str = "2", side: OrderSide = OrderSide.BUY) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        symbol="SPY",
        side=side,
        qty=Decimal(qty),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(price),
    )


def _submit(pair: Pair, request: OrderRequest) -> tuple[BrokerOrder, BrokerOrder]:
    return pair.both(lambda broker: broker.submit_order(request))


def _all_orders(pair: Pair) -> tuple[int, int]:
    """How many orders each account holds (any status)."""
    return (
        len(pair.exchange.orders(pair.http_account, status="all", limit=500)),
        len(pair.exchange.orders(pair.direct_account, status="all", limit=500)),
    )


# -- session and reads ------------------------------------------------------------------------


def test_exchange_broker_when_built_for_an_account_then_it_is_a_broker_port(pair: Pair) -> None:
    port: BrokerPort = pair.direct  # mypy checks the structure; isinstance the method names

    assert isinstance(port, BrokerPort)
    assert isinstance(pair.http, BrokerPort)
    assert repr(port) == f"ExchangeBroker(account={pair.direct_account})"


def test_use_session_when_moved_on_both_paths_then_both_accounts_trade_in_that_session(
    pair: Pair,
) -> None:
    exchange = pair.exchange
    assert [exchange.session_of(exchange.account(n)) for n in pair.accounts()] == [FRIDAY] * 2

    pair.both(lambda broker: broker.use_session(THURSDAY))

    assert [exchange.session_of(exchange.account(n)) for n in pair.accounts()] == [THURSDAY] * 2
    http_prices, direct_prices = pair.both(lambda broker: broker.get_latest_prices(["SPY"]))
    assert http_prices == {"SPY": Decimal("500.00")}  # Thursday's close, not Friday's
    _same(http_prices, direct_prices)


def test_get_account_when_fresh_then_balances_equal(pair: Pair) -> None:
    http_state, direct_state = pair.both(lambda broker: broker.get_account())

    assert http_state.cash == Decimal(100000)
    assert http_state.equity == Decimal(100000)
    _same_account(pair, http_state, direct_state)


def test_get_account_when_holding_and_blocked_then_balances_and_flag_equal(pair: Pair) -> None:
    _submit(pair, _buy("hold-spy", qty=Decimal(3)))
    _submit(pair, _limit("rest-spy", "400"))  # holds buying power
    for number in pair.accounts():
        pair.exchange.set_trading_blocked(number, True)

    http_state, direct_state = pair.both(lambda broker: broker.get_account())

    assert http_state.cash == Decimal("98469.25")  # 100000 - 3 * 510.25
    assert http_state.buying_power == Decimal("97669.25")  # less the 2 * 400 hold
    assert http_state.equity == Decimal(100000)
    assert http_state.trading_blocked is True
    _same_account(pair, http_state, direct_state)


def test_get_positions_when_holding_two_symbols_then_equal(pair: Pair) -> None:
    _submit(pair, _buy("p-spy", qty=Decimal(3)))
    _submit(pair, _buy("p-brk", "BRK", qty=Decimal("2.5")))
    pair.both(lambda broker: broker.use_session(MONDAY))  # SPY at 505, BRK flat at 250

    http_positions, direct_positions = pair.both(lambda broker: broker.get_positions())

    assert [(p.symbol, p.qty, p.current_price) for p in http_positions] == [
        ("BRK", Decimal("2.5"), Decimal(250)),
        ("SPY", Decimal(3), Decimal(505)),
    ]
    _same(http_positions, direct_positions)


def test_get_position_when_held_then_equal(pair: Pair) -> None:
    _submit(pair, _buy("held", qty=Decimal("1.25")))

    http_position, direct_position = pair.both(lambda broker: broker.get_position("SPY"))

    assert http_position is not None
    assert http_position.qty == Decimal("1.25")
    assert http_position.market_value == Decimal("637.81")  # 1.25 * 510.25, to the cent
    _same(http_position, direct_position)


def test_get_position_when_not_held_then_none_on_both(pair: Pair) -> None:
    _submit(pair, _buy("other", "BRK"))

    assert pair.both(lambda broker: broker.get_position("SPY")) == (None, None)
    assert pair.both(lambda broker: broker.get_position("NOPE")) == (None, None)


def test_get_latest_prices_when_known_and_unknown_symbols_then_same_prices_unknown_left_out(
    pair: Pair,
) -> None:
    symbols = ["SPY", "QQQ", "BRK", "NOPE", "SPY"]

    http_prices, direct_prices = pair.both(lambda broker: broker.get_latest_prices(symbols))

    assert http_prices == {
        "BRK": Decimal(250),
        "QQQ": Decimal("400.10"),
        "SPY": Decimal("510.25"),
    }
    _same(http_prices, direct_prices)
    assert pair.both(lambda broker: broker.get_latest_prices([])) == ({}, {})


def test_get_latest_prices_when_symbol_has_no_bar_that_day_then_last_close_on_both(
    pair: Pair,
) -> None:
    pair.both(lambda broker: broker.use_session(MONDAY))  # QQQ and BRK last traded Friday

    http_prices, direct_prices = pair.both(
        lambda broker: broker.get_latest_prices(["QQQ", "BRK", "SPY"])
    )

    assert http_prices == {"BRK": Decimal(250), "QQQ": Decimal("400.10"), "SPY": Decimal(505)}
    _same(http_prices, direct_prices)


def test_get_latest_prices_when_database_unavailable_then_broker_unavailable_on_both(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_args: Any) -> None:
        raise ExchangeUnavailableError("session bars: database unavailable")

    monkeypatch.setattr(pair.exchange, "session_bars", unavailable)

    pair.raises(BrokerUnavailableError, lambda broker: broker.get_latest_prices(["SPY"]))


def test_get_quote_when_known_then_equal(pair: Pair) -> None:
    http_quote, direct_quote = pair.both(lambda broker: broker.get_quote("SPY"))

    assert http_quote is not None
    assert http_quote.is_two_sided
    assert http_quote.bid < Decimal("510.25") < http_quote.ask
    assert http_quote.timestamp.date() == FRIDAY
    _same(http_quote, direct_quote)


def test_get_quote_when_unknown_then_none_on_both(pair: Pair) -> None:
    assert pair.both(lambda broker: broker.get_quote("NOPE")) == (None, None)


def test_get_clock_when_open_session_then_equal(pair: Pair) -> None:
    http_clock, direct_clock = pair.both(lambda broker: broker.get_clock())

    assert http_clock.is_open is True
    assert http_clock.next_close == datetime(2025, 3, 7, 21, 0, tzinfo=UTC)  # 16:00 EST
    _same(http_clock, direct_clock)


def test_get_clock_when_non_trading_day_then_equal_and_closed(pair: Pair) -> None:
    pair.both(lambda broker: broker.use_session(SATURDAY))

    http_clock, direct_clock = pair.both(lambda broker: broker.get_clock())

    assert http_clock.is_open is False
    assert http_clock.next_open == datetime(2025, 3, 10, 13, 30, tzinfo=UTC)  # Monday, EDT
    _same(http_clock, direct_clock)


def test_get_asset_when_known_then_equal(pair: Pair) -> None:
    http_asset, direct_asset = pair.both(lambda broker: broker.get_asset("QQQ"))

    assert (http_asset.symbol, http_asset.tradable, http_asset.fractionable) == ("QQQ", True, True)
    _same(http_asset, direct_asset)


def test_get_asset_when_unknown_then_order_not_found_on_both(pair: Pair) -> None:
    pair.raises(OrderNotFoundError, lambda broker: broker.get_asset("NOPE"))


# -- submit -----------------------------------------------------------------------------------


def test_submit_order_when_market_qty_then_filled_orders_and_balances_equal(pair: Pair) -> None:
    http_order, direct_order = _submit(pair, _buy("mkt-qty", qty=Decimal(3)))

    assert http_order.status is OrderStatus.FILLED
    assert http_order.client_order_id == "mkt-qty"
    assert (http_order.filled_qty, http_order.filled_avg_price) == (Decimal(3), Decimal("510.25"))
    _same(_anonymous(http_order), _anonymous(direct_order))
    _same_account(pair, *pair.both(lambda broker: broker.get_account()))


def test_submit_order_when_market_notional_then_filled_orders_and_positions_equal(
    pair: Pair,
) -> None:
    http_order, direct_order = _submit(pair, _buy("mkt-notional", notional=Decimal("1000.00")))

    assert http_order.status is OrderStatus.FILLED
    assert http_order.notional == Decimal(1000)
    assert http_order.filled_qty * Decimal("510.25") <= Decimal(1000)
    _same(_anonymous(http_order), _anonymous(direct_order))
    _same(*pair.both(lambda broker: broker.get_positions()))
    _same_account(pair, *pair.both(lambda broker: broker.get_account()))


def test_submit_order_when_limit_crosses_then_filled_orders_equal(pair: Pair) -> None:
    http_order, direct_order = _submit(pair, _limit("lmt-fill", "505.50"))

    assert http_order.status is OrderStatus.FILLED
    assert http_order.limit_price == Decimal("505.5")
    assert http_order.filled_avg_price is not None
    assert http_order.filled_avg_price <= Decimal("505.50")
    _same(_anonymous(http_order), _anonymous(direct_order))
    _same_account(pair, *pair.both(lambda broker: broker.get_account()))


def test_submit_order_when_limit_below_the_low_then_resting_orders_equal(pair: Pair) -> None:
    http_order, direct_order = _submit(pair, _limit("lmt-rest", "400"))

    assert http_order.status is OrderStatus.NEW
    assert (http_order.filled_qty, http_order.filled_avg_price) == (Decimal(0), None)
    _same(_anonymous(http_order), _anonymous(direct_order))
    _same_account(pair, *pair.both(lambda broker: broker.get_account()))


def test_submit_order_when_client_order_id_reused_then_both_return_the_existing_order(
    pair: Pair,
) -> None:
    first = _submit(pair, _limit("reused", "400"))

    again = _submit(pair, _buy("reused", "BRK", qty=Decimal(7)))  # another order, same id

    assert again == first
    assert again[0].symbol == "SPY"
    assert _all_orders(pair) == (1, 1)


def test_submit_order_when_insufficient_funds_then_rejected_on_both_and_nothing_recorded(
    pair: Pair,
) -> None:
    pair.raises(
        OrderRejectedError, lambda broker: broker.submit_order(_buy("broke", qty=Decimal(1000)))
    )

    assert _all_orders(pair) == (0, 0)
    assert pair.both(lambda broker: broker.get_order_by_client_id("broke")) == (None, None)
    _same_account(pair, *pair.both(lambda broker: broker.get_account()))


def test_submit_order_when_selling_more_than_held_then_rejected_on_both(pair: Pair) -> None:
    _submit(pair, _buy("some", qty=Decimal(1)))
    sell = OrderRequest(
        client_order_id="oversell", symbol="SPY", side=OrderSide.SELL, qty=Decimal(2)
    )

    pair.raises(OrderRejectedError, lambda broker: broker.submit_order(sell))

    assert _all_orders(pair) == (1, 1)


def test_submit_order_when_symbol_unknown_then_rejected_on_both(pair: Pair) -> None:
    pair.raises(OrderRejectedError, lambda broker: broker.submit_order(_buy("unknown", "NOPE")))

    assert _all_orders(pair) == (0, 0)


def test_submit_order_when_account_blocked_then_rejected_on_both(pair: Pair) -> None:
    for number in pair.accounts():
        pair.exchange.set_trading_blocked(number, True)

    pair.raises(OrderRejectedError, lambda broker: broker.submit_order(_buy("blocked")))

    assert _all_orders(pair) == (0, 0)


# -- look-ups ---------------------------------------------------------------------------------


def test_get_order_by_client_id_when_known_then_equal_to_the_submitted_order(pair: Pair) -> None:
    submitted = _submit(pair, _limit("look-me-up", "400"))

    found = pair.both(lambda broker: broker.get_order_by_client_id("look-me-up"))

    assert found == submitted
    _same(_anonymous(found[0]), _anonymous(found[1]))


def test_get_order_by_client_id_when_unknown_then_none_on_both(pair: Pair) -> None:
    _submit(pair, _buy("someone-else"))

    assert pair.both(lambda broker: broker.get_order_by_client_id("never-sent")) == (None, None)


def test_get_open_orders_when_resting_and_filled_then_same_open_orders_newest_first(
    pair: Pair,
) -> None:
    _submit(pair, _limit("open-1", "400"))
    _submit(pair, _buy("filled-1"))
    _submit(pair, _limit("open-2", "401"))

    http_open, direct_open = pair.both(lambda broker: broker.get_open_orders())

    assert [order.client_order_id for order in http_open] == ["open-2", "open-1"]
    _same_orders(http_open, direct_open)


def test_get_open_orders_when_none_open_then_empty_on_both(pair: Pair) -> None:
    _submit(pair, _buy("filled-only"))

    assert pair.both(lambda broker: broker.get_open_orders()) == ([], [])


# -- cancel and replace -----------------------------------------------------------------------


def test_cancel_order_when_open_then_canceled_orders_and_holds_equal(pair: Pair) -> None:
    http_order, direct_order = _submit(pair, _limit("cancel-me", "400"))

    pair.http.cancel_order(http_order.broker_order_id)
    pair.direct.cancel_order(direct_order.broker_order_id)

    http_after, direct_after = pair.both(lambda broker: broker.get_order_by_client_id("cancel-me"))
    assert http_after is not None and direct_after is not None
    assert http_after.status is OrderStatus.CANCELED
    _same(_anonymous(http_after), _anonymous(direct_after))
    http_state, direct_state = pair.both(lambda broker: broker.get_account())
    assert http_state.buying_power == Decimal(100000)  # the hold is released
    _same_account(pair, http_state, direct_state)


def test_cancel_order_when_already_canceled_then_no_error_on_both(pair: Pair) -> None:
    http_order, direct_order = _submit(pair, _limit("cancel-twice", "400"))
    pair.http.cancel_order(http_order.broker_order_id)
    pair.direct.cancel_order(direct_order.broker_order_id)

    pair.http.cancel_order(http_order.broker_order_id)
    pair.direct.cancel_order(direct_order.broker_order_id)

    statuses = pair.both(lambda broker: broker.get_order_by_client_id("cancel-twice"))
    assert [order.status for order in statuses if order] == [OrderStatus.CANCELED] * 2


def test_cancel_order_when_filled_then_rejected_on_both(pair: Pair) -> None:
    http_order, direct_order = _submit(pair, _buy("filled-cancel"))

    with pytest.raises(OrderRejectedError):
        pair.http.cancel_order(http_order.broker_order_id)
    with pytest.raises(OrderRejectedError):
        pair.direct.cancel_order(direct_order.broker_order_id)

    after = pair.both(lambda broker: broker.get_order_by_client_id("filled-cancel"))
    assert after == (http_order, direct_order)


def test_cancel_order_when_order_unknown_then_order_not_found_on_both(pair: Pair) -> None:
    missing = str(uuid.uuid4())

    pair.raises(OrderNotFoundError, lambda broker: broker.cancel_order(missing))


def test_replace_order_when_resting_limit_then_new_orders_equal_and_old_replaced(
    pair: Pair,
) -> None:
    http_old, direct_old = _submit(pair, _limit("replace-me", "400", qty="2"))

    http_new = pair.http.replace_order(
        http_old.broker_order_id, qty=Decimal(4), limit_price=Decimal("401.50")
    )
    direct_new = pair.direct.replace_order(
        direct_old.broker_order_id, qty=Decimal(4), limit_price=Decimal("401.50")
    )

    assert http_new.status is OrderStatus.NEW
    assert (http_new.qty, http_new.limit_price) == (Decimal(4), Decimal("401.5"))
    assert http_new.broker_order_id != http_old.broker_order_id
    _same(_anonymous(http_new, client_order_id=True), _anonymous(direct_new, client_order_id=True))
    old = (
        pair.http.get_order(http_old.broker_order_id),
        pair.direct.get_order(direct_old.broker_order_id),
    )
    assert old[0].status is OrderStatus.REPLACED
    _same(_anonymous(old[0]), _anonymous(old[1]))
    _same_orders(*pair.both(lambda broker: broker.get_open_orders()), client_order_id=True)
    _same_account(pair, *pair.both(lambda broker: broker.get_account()))


def test_replace_order_when_new_limit_crosses_then_filled_orders_equal(pair: Pair) -> None:
    http_old, direct_old = _submit(pair, _limit("replace-fill", "400"))

    http_new = pair.http.replace_order(http_old.broker_order_id, limit_price=Decimal(511))
    direct_new = pair.direct.replace_order(direct_old.broker_order_id, limit_price=Decimal(511))

    assert http_new.status is OrderStatus.FILLED
    _same(_anonymous(http_new, client_order_id=True), _anonymous(direct_new, client_order_id=True))
    _same(*pair.both(lambda broker: broker.get_positions()))


def test_replace_order_when_filled_then_rejected_on_both(pair: Pair) -> None:
    http_order, direct_order = _submit(pair, _buy("filled-replace"))

    with pytest.raises(OrderRejectedError):
        pair.http.replace_order(http_order.broker_order_id, qty=Decimal(1))
    with pytest.raises(OrderRejectedError):
        pair.direct.replace_order(direct_order.broker_order_id, qty=Decimal(1))

    assert _all_orders(pair) == (1, 1)


# -- close position ---------------------------------------------------------------------------


def test_close_position_when_no_client_order_id_then_closing_orders_equal_and_flat(
    pair: Pair,
) -> None:
    _submit(pair, _buy("to-close", qty=Decimal("2.5")))

    http_close, direct_close = pair.both(lambda broker: broker.close_position("SPY"))

    assert http_close.status is OrderStatus.FILLED
    assert (http_close.side, http_close.filled_qty) == (OrderSide.SELL, Decimal("2.5"))
    assert http_close.client_order_id != direct_close.client_order_id  # made up by the exchange
    _same(
        _anonymous(http_close, client_order_id=True),
        _anonymous(direct_close, client_order_id=True),
    )
    assert pair.both(lambda broker: broker.get_position("SPY")) == (None, None)
    _same_account(pair, *pair.both(lambda broker: broker.get_account()))


def test_close_position_when_client_order_id_then_orders_equal_and_idempotent(
    pair: Pair,
) -> None:
    _submit(pair, _buy("to-close-id", qty=Decimal(3)))

    first = pair.both(lambda broker: broker.close_position("SPY", client_order_id="close-spy"))
    again = pair.both(lambda broker: broker.close_position("SPY", client_order_id="close-spy"))

    assert first[0].client_order_id == "close-spy"
    assert (first[0].side, first[0].filled_qty) == (OrderSide.SELL, Decimal(3))
    _same(_anonymous(first[0]), _anonymous(first[1]))
    assert again == first  # the earlier order, adopted
    assert _all_orders(pair) == (2, 2)
    assert pair.both(lambda broker: broker.get_positions()) == ([], [])


def test_close_position_when_not_held_then_order_not_found_on_both(pair: Pair) -> None:
    pair.raises(OrderNotFoundError, lambda broker: broker.close_position("SPY"))
    pair.raises(
        OrderNotFoundError,
        lambda broker: broker.close_position("SPY", client_order_id="close-nothing"),
    )

    assert _all_orders(pair) == (0, 0)


# -- costs ------------------------------------------------------------------------------------


def test_submit_order_when_cost_model_then_fills_fees_and_cash_equal(
    tmp_path: Path, bars_dir: Path
) -> None:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'costs.db'}")
    rules = TradingRules(slippage_bps=Decimal(5), commission_bps=Decimal(1))
    exchange = Exchange(engine, DatasetMarketData(bars_dir), rules)
    exchange.migrate()
    server = ExchangeServer(exchange).start()
    try:
        pair = _open_pair(exchange, server)
        sell = OrderRequest(
            client_order_id="cost-sell", symbol="SPY", side=OrderSide.SELL, qty=Decimal(4)
        )

        bought = _submit(pair, _buy("cost-buy", qty=Decimal(10)))
        notional = _submit(pair, _buy("cost-notional", "BRK", notional=Decimal(1000)))
        sold = _submit(pair, sell)

        # a buy at 510.25 * 1.0005 = 510.505125 -> 510.5051; a sell at 510.25 * 0.9995
        assert bought[0].filled_avg_price == Decimal("510.5051")
        assert sold[0].filled_avg_price == Decimal("509.9949")
        for http_order, direct_order in (bought, notional, sold):
            assert http_order.status is OrderStatus.FILLED
            _same(_anonymous(http_order), _anonymous(direct_order))
        fees = [exchange.fees(number) for number in pair.accounts()]
        assert fees[0] > 0
        assert fees[0] == fees[1]
        http_state, direct_state = pair.both(lambda broker: broker.get_account())
        # 100000 - 5105.05 (10 * 510.5051) - 0.51 - 1000.00 (BRK for the notional) - 0.10
        # + 2039.98 (4 * 509.9949) - 0.20: commissions 1 bp of each fill, to the cent
        assert http_state.cash == Decimal("95934.12")
        assert fees[0] == Decimal("0.81")
        _same_account(pair, http_state, direct_state)
        _same(*pair.both(lambda broker: broker.get_positions()))
    finally:
        server.stop()
        engine.dispose()

"""AlpacaBroker order placement through the real alpaca-py clients against the paper exchange.

Requests go through a :class:`FaultProxy` in front of the exchange, so tests can count what
the adapter actually sent and inject failures.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from alchemiser_broker import (
    BrokerOrder,
    BrokerPort,
    OrderNotFoundError,
    OrderRejectedError,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
)
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_devtools.exchange import SESSION, PaperExchange, adapter_settings, write_dataset
from alchemiser_devtools.faults import ALPACA_ROUTES, Fault, FaultProxy
from alchemiser_marketdata import DatasetMarketData

ORDERS = "POST /v2/orders"


@pytest.fixture
def proxy(paper_exchange: PaperExchange) -> Iterator[FaultProxy]:
    with FaultProxy(paper_exchange.url, routes=ALPACA_ROUTES) as running:
        yield running


@pytest.fixture
def broker(paper_exchange: PaperExchange, proxy: FaultProxy) -> AlpacaBroker:
    paper_exchange.set_prices({"SPY": "500.25"})
    return AlpacaBroker(adapter_settings(proxy.url), sleep=lambda _: None)


def _buy(cid: str, qty: str = "2", symbol: str = "SPY") -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=symbol, side=OrderSide.BUY, qty=Decimal(qty))


def test_alpaca_broker_when_built_then_satisfies_the_port(broker: AlpacaBroker) -> None:
    assert isinstance(broker, BrokerPort)


def test_submit_when_market_buy_then_filled_and_cash_reduced_exactly(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    order = broker.submit_order(_buy("wf1-leg0", qty="1.5"))

    assert order.client_order_id == "wf1-leg0"
    assert order.status is OrderStatus.FILLED
    assert order.is_final
    assert (order.qty, order.filled_qty) == (Decimal("1.5"), Decimal("1.5"))
    assert order.filled_avg_price == Decimal("500.25")
    assert order.commission == Decimal(0)  # the exchange reports its (frictionless) commission
    assert order.side is OrderSide.BUY and order.order_type is OrderType.MARKET
    assert order.submitted_at is not None and order.filled_at is not None
    # 1.5 * 500.25 = 750.375, which the exchange (like Alpaca) settles half-even to the cent
    assert broker.get_account().cash == Decimal(100_000) - Decimal("750.38")
    assert len(paper_exchange.orders_for("wf1-leg0")) == 1


def test_submit_when_notional_buy_then_fractional_quantity_filled(
    broker: AlpacaBroker,
) -> None:
    request = OrderRequest(
        client_order_id="wf1-n", symbol="SPY", side=OrderSide.BUY, notional=Decimal("1000.5")
    )

    order = broker.submit_order(request)

    assert order.notional == Decimal("1000.5") and order.qty is None
    assert order.filled_qty == (Decimal("1000.5") / Decimal("500.25")).quantize(Decimal("1e-9"))
    position = broker.get_position("SPY")
    assert position is not None and position.qty == order.filled_qty


def test_submit_when_same_client_order_id_twice_then_existing_order_adopted(
    paper_exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker
) -> None:
    first = broker.submit_order(_buy("wf2-leg0"))

    second = broker.submit_order(_buy("wf2-leg0"))

    assert second == first
    assert proxy.requests_seen[ORDERS] == 2  # the second POST was answered 422
    assert len(paper_exchange.orders_for("wf2-leg0")) == 1
    position = broker.get_position("SPY")
    assert position is not None and position.qty == Decimal(2)


def test_get_order_by_client_id_when_unknown_then_none(broker: AlpacaBroker) -> None:
    assert broker.get_order_by_client_id("never-submitted") is None


def test_get_order_by_client_id_when_submitted_then_found(broker: AlpacaBroker) -> None:
    placed = broker.submit_order(_buy("wf3-leg0"))

    assert broker.get_order_by_client_id("wf3-leg0") == placed


def test_submit_when_buying_power_insufficient_then_rejected_and_nothing_created(
    paper_exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker
) -> None:
    with pytest.raises(OrderRejectedError, match="insufficient buying power"):
        broker.submit_order(_buy("wf4-leg0", qty="1000"))

    assert paper_exchange.orders_for("wf4-leg0") == []
    assert proxy.requests_seen[ORDERS] == 1


def test_submit_when_selling_more_than_held_then_rejected(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    paper_exchange.exchange.set_position(paper_exchange.account, "SPY", Decimal(1), Decimal(400))
    request = OrderRequest(
        client_order_id="wf5-leg0", symbol="SPY", side=OrderSide.SELL, qty=Decimal(3)
    )

    with pytest.raises(OrderRejectedError, match="insufficient qty"):
        broker.submit_order(request)


def test_submit_when_quantity_not_exact_as_float_then_refused_before_sending(
    proxy: FaultProxy, broker: AlpacaBroker
) -> None:
    with pytest.raises(ValueError, match="exactly"):
        broker.submit_order(_buy("wf6-leg0", qty="0.12345678901234567891"))

    assert proxy.requests_seen[ORDERS] == 0


def test_submit_when_partial_fill_mode_then_position_follows_filled_qty(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    paper_exchange.set_rules(partial_fill_ratio=Decimal("0.25"))

    order = broker.submit_order(_buy("wf7-leg0", qty="4"))

    assert order.status is OrderStatus.PARTIALLY_FILLED and not order.is_final
    assert order.filled_qty == Decimal(1)
    position = broker.get_position("SPY")
    assert position is not None and position.qty == Decimal(1)

    paper_exchange.exchange.fill_order(
        paper_exchange.account, order.broker_order_id, price=Decimal("501.25")
    )
    done = broker.get_order_by_client_id("wf7-leg0")

    assert done is not None and done.status is OrderStatus.FILLED and done.is_final
    assert done.filled_qty == Decimal(4)
    assert done.filled_avg_price == Decimal("501.0")  # (1 * 500.25 + 3 * 501.25) / 4


def test_limit_order_when_not_marketable_then_new_and_replace_reprices_it(
    broker: AlpacaBroker,
) -> None:
    request = OrderRequest(
        client_order_id="wf8-leg0",
        symbol="SPY",
        side=OrderSide.BUY,
        qty=Decimal(2),
        order_type=OrderType.LIMIT,
        limit_price=Decimal("499.5"),
    )
    working = broker.submit_order(request)
    assert working.status is OrderStatus.NEW
    assert working.limit_price == Decimal("499.5")

    replaced = broker.replace_order(working.broker_order_id, limit_price=Decimal("500.3"))

    assert replaced.broker_order_id != working.broker_order_id
    assert replaced.limit_price == Decimal("500.3")
    assert replaced.status is OrderStatus.FILLED  # now marketable: fills at 500.25
    assert replaced.filled_avg_price == Decimal("500.25")
    old = broker.get_order(working.broker_order_id)
    assert old.status is OrderStatus.REPLACED


def test_replace_when_fractional_qty_then_refused(broker: AlpacaBroker) -> None:
    with pytest.raises(ValueError, match="whole-share"):
        broker.replace_order("00000000-0000-0000-0000-000000000000", qty=Decimal("1.5"))


def test_cancel_when_order_open_then_canceled_and_repeat_is_harmless(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    paper_exchange.exchange.hold_fills = True
    order = broker.submit_order(_buy("wf9-leg0"))
    assert order.status is OrderStatus.NEW

    broker.cancel_order(order.broker_order_id)
    broker.cancel_order(order.broker_order_id)

    canceled = broker.get_order_by_client_id("wf9-leg0")
    assert canceled is not None and canceled.status is OrderStatus.CANCELED


def test_cancel_when_reply_lost_after_cancel_then_retry_succeeds(
    paper_exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker
) -> None:
    paper_exchange.exchange.hold_fills = True
    order = broker.submit_order(_buy("wf9-leg1"))
    proxy.inject("DELETE /v2/orders/{id}", Fault.CONNECTION_RESET_AFTER_ACCEPT)

    broker.cancel_order(order.broker_order_id)

    assert proxy.requests_seen["DELETE /v2/orders/{id}"] == 2  # the retry was answered 422
    assert broker.get_order(order.broker_order_id).status is OrderStatus.CANCELED


def test_cancel_when_order_filled_then_rejected(broker: AlpacaBroker) -> None:
    order = broker.submit_order(_buy("wf9-leg2"))

    with pytest.raises(OrderRejectedError, match="filled"):
        broker.cancel_order(order.broker_order_id)


def test_cancel_when_order_unknown_then_not_found(broker: AlpacaBroker) -> None:
    with pytest.raises(OrderNotFoundError):
        broker.cancel_order("00000000-0000-0000-0000-000000000000")


def test_close_position_when_client_id_given_then_idempotent_market_sell(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    paper_exchange.exchange.set_position(
        paper_exchange.account, "SPY", Decimal("3.5"), Decimal(400)
    )

    first = broker.close_position("SPY", client_order_id="wf10-close-SPY")
    again = broker.close_position("SPY", client_order_id="wf10-close-SPY")

    assert again == first
    assert first.side is OrderSide.SELL and first.filled_qty == Decimal("3.5")
    assert broker.get_position("SPY") is None
    assert len(paper_exchange.orders_for("wf10-close-SPY")) == 1


def test_close_position_when_held_then_position_read_and_order_sent_without_a_lookup(
    paper_exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker
) -> None:
    paper_exchange.exchange.set_position(paper_exchange.account, "SPY", Decimal(2), Decimal(400))

    order = broker.close_position("SPY", client_order_id="wf12-close-SPY")

    assert order.client_order_id == "wf12-close-SPY" and order.qty == Decimal(2)
    assert proxy.requests_seen["GET /v2/positions/{symbol}"] == 1
    assert proxy.requests_seen["POST /v2/orders"] == 1
    assert proxy.requests_seen["GET /v2/orders:by_client_order_id"] == 0


def test_close_position_when_held_again_after_the_id_closed_it_then_first_order_adopted(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    account = paper_exchange.account
    paper_exchange.exchange.set_position(account, "SPY", Decimal(3), Decimal(400))
    first = broker.close_position("SPY", client_order_id="wf13-close-SPY")
    paper_exchange.exchange.set_position(account, "SPY", Decimal(5), Decimal(400))

    again = broker.close_position("SPY", client_order_id="wf13-close-SPY")

    assert again.broker_order_id == first.broker_order_id
    assert again.filled_qty == Decimal(3)
    assert len(paper_exchange.orders_for("wf13-close-SPY")) == 1
    position = broker.get_position("SPY")
    assert position is not None and position.qty == Decimal(5)  # not sold a second time


def test_close_position_when_no_client_id_then_close_endpoint_used(
    paper_exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker
) -> None:
    paper_exchange.exchange.set_position(paper_exchange.account, "SPY", Decimal(2), Decimal(400))

    order = broker.close_position("SPY")

    assert order.side is OrderSide.SELL and order.qty == Decimal(2)
    assert proxy.requests_seen["DELETE /v2/positions/{symbol}"] == 1
    assert broker.get_position("SPY") is None


def test_close_position_when_nothing_held_then_not_found(broker: AlpacaBroker) -> None:
    with pytest.raises(OrderNotFoundError):
        broker.close_position("SPY", client_order_id="wf11-close-SPY")
    with pytest.raises(OrderNotFoundError):
        broker.close_position("SPY")


def test_get_open_orders_when_some_open_then_only_those_listed(
    paper_exchange: PaperExchange, broker: AlpacaBroker
) -> None:
    broker.submit_order(_buy("wf12-filled"))
    paper_exchange.exchange.hold_fills = True
    working = broker.submit_order(_buy("wf12-open"))

    assert broker.get_open_orders() == [working]


def test_two_accounts_when_trading_concurrently_then_each_sees_only_its_own(
    paper_exchange: PaperExchange, tmp_path: Path
) -> None:
    earlier = date(2025, 3, 13)  # the day before the fixture's session
    bars = {earlier: {"SPY": "480", "QQQ": "400"}, SESSION: {"SPY": "500", "QQQ": "420"}}
    paper_exchange.exchange.use_dataset(DatasetMarketData(write_dataset(tmp_path / "d", bars)))
    keys = {"first": ("key-first", "secret-first"), "second": ("key-second", "secret-second")}
    brokers = {
        name: AlpacaBroker(
            adapter_settings(
                paper_exchange.url, api_key=SecretStr(key), secret_key=SecretStr(secret)
            ),
            sleep=lambda _s: None,
        )
        for name, (key, secret) in keys.items()
    }
    brokers["first"].use_session(earlier)
    brokers["second"].use_session(SESSION)

    def trade(name: str, symbol: str) -> list[BrokerOrder]:
        broker = brokers[name]
        return [broker.submit_order(_buy(f"{name}-{i}", "1", symbol)) for i in range(10)]

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(trade, "first", "SPY")
        second = pool.submit(trade, "second", "QQQ")
        placed = {"first": first.result(timeout=60), "second": second.result(timeout=60)}

    # each filled at its own session's close, holds only its own position
    assert {o.filled_avg_price for o in placed["first"]} == {Decimal(480)}
    assert {o.filled_avg_price for o in placed["second"]} == {Decimal(420)}
    assert {p.symbol: p.qty for p in brokers["first"].get_positions()} == {"SPY": Decimal(10)}
    assert {p.symbol: p.qty for p in brokers["second"].get_positions()} == {"QQQ": Decimal(10)}
    assert brokers["first"].get_account().cash == Decimal(100000 - 4800)
    assert brokers["second"].get_account().cash == Decimal(100000 - 4200)
    # and never sees the other's orders, even by client_order_id
    assert brokers["first"].get_order_by_client_id("second-0") is None
    assert brokers["second"].get_order_by_client_id("first-0") is None
    numbers = {brokers[name].get_account().account_number for name in brokers}
    assert len(numbers) == 2 and paper_exchange.account not in numbers

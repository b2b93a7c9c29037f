"""Order policy, fills, refusals and caps, through the real Alpaca adapter and the exchange."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alchemiser_broker import BrokerOrder, OrderRequest
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.events import (
    OrderSide,
    OrderStatus,
    OrderType,
    PlanItem,
    RebalancePlanned,
    WorkflowFailed,
)
from alchemiser_common.runtime.handlers import InvalidEventError
from alchemiser_devtools.exchange import SESSION, PaperExchange, adapter_settings, write_dataset
from alchemiser_exchange.rules import OPEN_STATUSES
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.domain.attempts import AttemptState
from alchemiser_execution.exceptions import PlanConflictError, PlanHashMismatchError
from alchemiser_execution.phases import ExecutionConfig
from alchemiser_execution.testing import (
    FAST_CONFIG,
    buy,
    context,
    make_handler,
    outputs_by_type,
    planned,
    register_workflow,
    sell,
)
from alchemiser_marketdata import DatasetMarketData

LIMIT = dataclasses.replace(FAST_CONFIG, limit_policy=True)
CLOSED = date(2025, 3, 15)
"""A Saturday: no bars, the exchange's market is closed."""


@pytest.fixture
def exchange(paper_exchange: PaperExchange) -> PaperExchange:
    # TQQQ quoted 49.99 / 50.01 by the default 2 bps spread around its close of 50
    paper_exchange.set_prices({"SOXL": "25", "TQQQ": "50"})
    paper_exchange.exchange.set_position(paper_exchange.account, "SOXL", Decimal(400), Decimal(20))
    return paper_exchange


@pytest.fixture
def broker(exchange: PaperExchange) -> AlpacaBroker:
    return AlpacaBroker(adapter_settings(exchange.url), sleep=lambda _s: None)


def _run(
    exchange: PaperExchange,
    broker: AlpacaBroker,
    store: AttemptStore,
    items: list[PlanItem],
    config: ExecutionConfig = FAST_CONFIG,
) -> tuple[RebalancePlanned, dict[str, Any]]:
    event = register_workflow(store, planned(items, account_id=exchange.account))
    return event, outputs_by_type(make_handler(broker, store, config)(event, context()))


def test_limit_when_quote_is_tight_and_marketable_then_one_limit_order_at_mid(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    quote = broker.get_quote("TQQQ")
    assert quote is not None and (quote.bid, quote.ask) == (Decimal("49.99"), Decimal("50.01"))
    _event, out = _run(exchange, broker, store, [buy("TQQQ", "5000")], LIMIT)
    (order,) = out["TradeExecuted"].orders
    assert (order.order_type, order.status, order.filled_qty) == (
        OrderType.LIMIT,
        OrderStatus.FILLED,
        Decimal(100),
    )
    (only,) = exchange.orders()
    assert only.limit_price == Decimal("50.00")


class _LimitOrdersRest(AlpacaBroker):
    """Limit orders rest unfilled at the exchange (the market never trades at the peg);
    market orders fill at once."""

    def __init__(self, exchange: PaperExchange) -> None:
        super().__init__(adapter_settings(exchange.url), sleep=lambda _s: None)
        self._exchange = exchange

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        self._exchange.exchange.hold_fills = request.order_type is OrderType.LIMIT
        return super().submit_order(request)


def test_limit_when_never_marketable_then_two_repegs_then_market(
    exchange: PaperExchange, store: AttemptStore
) -> None:
    # close 49.94 with a 16 bps spread: quoted 49.90 / 49.98; 4,994 buys 100 whole shares
    exchange.set_prices({"TQQQ": "49.94"})
    exchange.set_rules(spread_bps=Decimal(16))
    broker = _LimitOrdersRest(exchange)
    quote = broker.get_quote("TQQQ")
    assert quote is not None and (quote.bid, quote.ask) == (Decimal("49.90"), Decimal("49.98"))
    event, out = _run(exchange, broker, store, [buy("TQQQ", "4994")], LIMIT)

    attempts = store.attempts_of(event.account_id, str(event.correlation_id))
    assert [(a.order_type, a.limit_price, a.state) for a in attempts] == [
        (OrderType.LIMIT, Decimal("49.94"), AttemptState.CANCELED),
        (OrderType.LIMIT, Decimal("49.96"), AttemptState.CANCELED),
        (OrderType.LIMIT, Decimal("49.97"), AttemptState.CANCELED),
        (OrderType.MARKET, None, AttemptState.FILLED),
    ]
    assert len({a.client_order_id for a in attempts}) == 4
    assert all(len(exchange.orders_for(a.client_order_id)) == 1 for a in attempts)
    (order,) = out["TradeExecuted"].orders
    assert (order.order_type, order.status, order.client_order_id) == (
        OrderType.MARKET,
        OrderStatus.FILLED,
        attempts[-1].client_order_id,
    )
    assert "WorkflowCompleted" in out


def test_limit_when_quote_is_wide_then_straight_to_market(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    exchange.set_rules(spread_bps=Decimal(400))  # quoted 49.00 / 51.00 around 50: 4 % wide
    quote = broker.get_quote("TQQQ")
    assert quote is not None and (quote.bid, quote.ask) == (Decimal("49.00"), Decimal("51.00"))
    _event, out = _run(exchange, broker, store, [buy("TQQQ", "5000")], LIMIT)
    (order,) = out["TradeExecuted"].orders
    assert (order.order_type, order.status) == (OrderType.MARKET, OrderStatus.FILLED)
    assert len(exchange.orders()) == 1


def test_limit_when_partially_filled_then_next_attempt_orders_the_rest(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    exchange.set_rules(partial_fill_ratio=Decimal("0.5"))  # every order fills half at once
    event, out = _run(exchange, broker, store, [buy("TQQQ", "5000")], LIMIT)
    attempts = store.attempts_of(event.account_id, str(event.correlation_id))
    assert [(a.qty, a.filled_qty) for a in attempts] == [
        (Decimal(100), Decimal(50)),
        (Decimal(50), Decimal(25)),
        (Decimal(25), Decimal("12.5")),  # limit (whole shares), then fractional: market
        (Decimal("12.5"), Decimal("6.25")),
    ]
    assert [a.order_type for a in attempts] == [OrderType.LIMIT] * 3 + [OrderType.MARKET]
    (order,) = out["TradeExecuted"].orders
    assert order.filled_qty == Decimal("93.75")
    assert order.status is not OrderStatus.FILLED
    failed = out["WorkflowFailed"]
    assert isinstance(failed, WorkflowFailed)
    assert (failed.reason, failed.failed_symbols) == ("orders_failed", ["TQQQ"])


def test_market_when_sell_fills_later_then_buy_waits_for_the_fill(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    account = exchange.account
    exchange.exchange.set_cash(account, Decimal(0))  # a buy before the sell's fill is refused
    exchange.exchange.hold_fills = True
    sides_before_fill: list[list[OrderSide]] = []

    stop = threading.Event()

    def fill_the_sell() -> None:
        deadline = time.monotonic() + 30
        while not exchange.orders() and time.monotonic() < deadline and not stop.is_set():
            stop.wait(0.02)  # until the sell is placed (however loaded the machine is)
        stop.wait(0.3)  # execution now waits for the sell's fill
        orders = exchange.orders()
        sides_before_fill.append([order.side for order in orders])
        exchange.exchange.hold_fills = False  # the buy, once sent, fills at once
        for order in orders:
            if order.side is OrderSide.SELL and order.status in OPEN_STATUSES:
                exchange.exchange.fill_order(account, order.broker_order_id)

    filler = threading.Thread(target=fill_the_sell, daemon=True)
    filler.start()
    try:
        _event, out = _run(
            exchange, broker, store, [sell("SOXL", "10000", current="10000"), buy("TQQQ", "5000")]
        )
    finally:
        stop.set()
        filler.join(timeout=10)
    by_side = {order.side: order for order in exchange.orders()}
    assert len(by_side) == len(exchange.orders()) == 2
    sold, bought = by_side[OrderSide.SELL], by_side[OrderSide.BUY]
    assert sold.filled_at is not None and sold.status is OrderStatus.FILLED
    # the buy was sent after the sell filled: not there before the fill, and accepted on the
    # sell's proceeds (with no cash before the fill the exchange would have refused it)
    assert sides_before_fill == [[OrderSide.SELL]]
    assert bought.status is OrderStatus.FILLED
    assert "WorkflowCompleted" in out


class _CashSpentAfterCheck(AlpacaBroker):
    """Cash is spent elsewhere after execution checked the plan's funding and the buying
    power: just before the order reaches the exchange."""

    def __init__(self, exchange: PaperExchange) -> None:
        super().__init__(adapter_settings(exchange.url), sleep=lambda _s: None)
        self._exchange = exchange

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        self._exchange.exchange.set_cash(self._exchange.account, Decimal(100))
        return super().submit_order(request)


def test_market_when_buy_exceeds_cash_then_rejected_and_workflow_failed(
    exchange: PaperExchange, store: AttemptStore
) -> None:
    # the plan is funded when checked; the broker refuses the buy once the cash is gone
    _event, out = _run(exchange, _CashSpentAfterCheck(exchange), store, [buy("TQQQ", "5000")])
    (order,) = out["TradeExecuted"].orders
    assert order.status is OrderStatus.REJECTED
    assert "insufficient buying power" in (order.error or "")
    assert out["TradeExecuted"].orders_placed == 0
    assert out["WorkflowFailed"].details["leg_0"] == order.error


def test_handle_when_market_closed_then_workflow_failed_and_nothing_sent(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    exchange.exchange.set_session(exchange.account, CLOSED)
    assert not broker.get_clock().is_open
    _event, out = _run(exchange, broker, store, [buy("TQQQ", "5000")])
    assert set(out) == {"WorkflowFailed"}
    assert (out["WorkflowFailed"].reason, out["WorkflowFailed"].failed_symbols) == (
        "market_closed",
        ["TQQQ"],
    )
    assert exchange.orders() == []


def test_handle_when_order_above_max_value_then_refused_and_nothing_sent(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    config = dataclasses.replace(FAST_CONFIG, max_order_value=Decimal(4999))
    _event, out = _run(exchange, broker, store, [buy("TQQQ", "5000")], config)
    assert set(out) == {"WorkflowFailed"}
    assert out["WorkflowFailed"].reason == "max_order_value_exceeded"
    assert exchange.orders() == []


def test_handle_when_daily_cap_reached_then_circuit_breaker_refuses_and_redelivery_too(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    config = dataclasses.replace(FAST_CONFIG, max_daily_traded_value=Decimal(8000))
    handler = make_handler(broker, store, config)
    account = exchange.account
    first_event = register_workflow(store, planned([buy("TQQQ", "5000")], account_id=account))
    first = outputs_by_type(handler(first_event, context()))
    assert "WorkflowCompleted" in first
    second_event = register_workflow(store, planned([buy("TQQQ", "3500")], account_id=account))

    second = outputs_by_type(handler(second_event, context()))
    exchange.exchange.set_cash(exchange.account, Decimal(10**9))  # a redelivery must not re-decide
    again = outputs_by_type(handler(second_event, context()))

    assert set(second) == set(again) == {"WorkflowFailed"}
    assert second["WorkflowFailed"].reason == "daily_traded_value_exceeded"
    assert second["WorkflowFailed"].event_id == again["WorkflowFailed"].event_id
    assert len(exchange.orders()) == 1


def test_handle_when_cap_reached_in_one_session_then_the_next_session_trades(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore, tmp_path: Path
) -> None:
    monday = date(2025, 3, 17)  # the day after SESSION's weekend, whatever the wall clock says
    bars = {SESSION: {"TQQQ": "50"}, monday: {"TQQQ": "50"}}
    exchange.exchange.use_dataset(DatasetMarketData(write_dataset(tmp_path / "two", bars)))
    config = dataclasses.replace(FAST_CONFIG, max_daily_traded_value=Decimal(8000))
    handler = make_handler(broker, store, config)
    account = exchange.account
    exchange.exchange.set_session(account, SESSION)
    first_event = register_workflow(store, planned([buy("TQQQ", "5000")], account_id=account))
    assert "WorkflowCompleted" in outputs_by_type(handler(first_event, context()))

    exchange.exchange.set_session(account, monday)  # what portfolio's use_session does
    second_event = register_workflow(store, planned([buy("TQQQ", "3500")], account_id=account))
    second = outputs_by_type(handler(second_event, context()))

    assert "WorkflowCompleted" in second  # 5000 + 3500 > 8000, but on two sessions
    runs = [store.find_run(account, str(e.correlation_id)) for e in (first_event, second_event)]
    assert [run.trading_day for run in runs if run is not None] == [SESSION, monday]
    assert len(exchange.orders()) == 2


def test_handle_when_nothing_to_trade_then_completed_without_orders(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    _event, out = _run(exchange, broker, store, [])
    assert out["TradeExecuted"].orders == []
    assert out["WorkflowCompleted"].summary.orders_placed == 0


def test_handle_when_plan_changes_for_same_workflow_then_rejected_as_conflict(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    handler = make_handler(broker, store)
    account = exchange.account
    event = register_workflow(store, planned([buy("TQQQ", "1000")], account_id=account))
    handler(event, context())
    other = planned([buy("TQQQ", "2000")], correlation_id=event.correlation_id, account_id=account)
    with pytest.raises(PlanConflictError):
        handler(other, context())


def test_handle_when_plan_hash_does_not_match_then_rejected(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    plan = planned([buy("TQQQ", "1000")], account_id=exchange.account)
    event = register_workflow(store, plan)
    forged = event.model_copy(update={"plan_hash": "0" * 64})
    with pytest.raises(PlanHashMismatchError) as raised:
        make_handler(broker, store)(forged, context())
    assert isinstance(raised.value, InvalidEventError)

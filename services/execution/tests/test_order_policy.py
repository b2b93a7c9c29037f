"""Order policy, fills, refusals and caps, through the real Alpaca adapter and the fake."""

from __future__ import annotations

import dataclasses
import threading
from decimal import Decimal
from typing import Any

import pytest

from alchemiser_broker import AccountState
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.events import (
    OrderStatus,
    OrderType,
    PlanItem,
    RebalancePlanned,
    WorkflowFailed,
)
from alchemiser_common.runtime.handlers import InvalidEventError
from alchemiser_devtools.fake_alpaca import FakeAlpaca, FillMode
from alchemiser_devtools.fake_alpaca.fixtures import alpaca_settings_for
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

LIMIT = dataclasses.replace(FAST_CONFIG, limit_policy=True)


@pytest.fixture
def fake(fake_alpaca: FakeAlpaca) -> FakeAlpaca:
    fake_alpaca.set_price("SOXL", "25")
    fake_alpaca.set_price("TQQQ", "50")
    fake_alpaca.state.set_position("SOXL", Decimal(400), Decimal(20))
    return fake_alpaca


@pytest.fixture
def broker(fake: FakeAlpaca) -> AlpacaBroker:
    return AlpacaBroker(alpaca_settings_for(fake), sleep=lambda _s: None)


def _run(
    broker: AlpacaBroker,
    store: AttemptStore,
    items: list[PlanItem],
    config: ExecutionConfig = FAST_CONFIG,
) -> tuple[RebalancePlanned, dict[str, Any]]:
    event = register_workflow(store, planned(items))
    return event, outputs_by_type(make_handler(broker, store, config)(event, context()))


def test_limit_when_quote_is_tight_and_marketable_then_one_limit_order_at_mid(
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore
) -> None:
    fake.state.quotes["TQQQ"] = (Decimal("49.99"), Decimal("50.01"))
    _event, out = _run(broker, store, [buy("TQQQ", "5000")], LIMIT)
    (order,) = out["TradeExecuted"].orders
    assert (order.order_type, order.status, order.filled_qty) == (
        OrderType.LIMIT,
        OrderStatus.FILLED,
        Decimal(100),
    )
    (only,) = fake.state.orders.values()
    assert only.limit_price == Decimal("50.00")


def test_limit_when_never_marketable_then_two_repegs_then_market(
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore
) -> None:
    fake.state.quotes["TQQQ"] = (Decimal("49.90"), Decimal("49.98"))  # last trade 50: no fill
    event, out = _run(broker, store, [buy("TQQQ", "5000")], LIMIT)

    attempts = store.attempts_of(event.account_id, str(event.correlation_id))
    assert [(a.order_type, a.limit_price, a.state) for a in attempts] == [
        (OrderType.LIMIT, Decimal("49.94"), AttemptState.CANCELED),
        (OrderType.LIMIT, Decimal("49.96"), AttemptState.CANCELED),
        (OrderType.LIMIT, Decimal("49.97"), AttemptState.CANCELED),
        (OrderType.MARKET, None, AttemptState.FILLED),
    ]
    assert len({a.client_order_id for a in attempts}) == 4
    assert all(fake.orders_created(a.client_order_id) == 1 for a in attempts)
    (order,) = out["TradeExecuted"].orders
    assert (order.order_type, order.status, order.client_order_id) == (
        OrderType.MARKET,
        OrderStatus.FILLED,
        attempts[-1].client_order_id,
    )
    assert "WorkflowCompleted" in out


def test_limit_when_quote_is_wide_then_straight_to_market(
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore
) -> None:
    fake.state.quotes["TQQQ"] = (Decimal("49.00"), Decimal("51.00"))  # 4 % wide
    _event, out = _run(broker, store, [buy("TQQQ", "5000")], LIMIT)
    (order,) = out["TradeExecuted"].orders
    assert (order.order_type, order.status) == (OrderType.MARKET, OrderStatus.FILLED)
    assert len(fake.state.orders) == 1


def test_limit_when_partially_filled_then_next_attempt_orders_the_rest(
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore
) -> None:
    fake.state.quotes["TQQQ"] = (Decimal("49.99"), Decimal("50.01"))
    fake.state.fill_mode = FillMode.PARTIAL  # every order fills half at once
    event, out = _run(broker, store, [buy("TQQQ", "5000")], LIMIT)
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
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore
) -> None:
    fake.state.cash = Decimal(0)
    fake.state.fill_mode = FillMode.NEW

    def fill_the_sell() -> None:
        for order in list(fake.state.orders.values()):
            if order.side == "sell" and order.is_open:
                fake.state.fill_order(order.id)
        fake.state.fill_mode = FillMode.IMMEDIATE

    timer = threading.Timer(0.3, fill_the_sell)
    timer.start()
    try:
        _event, out = _run(
            broker, store, [sell("SOXL", "10000", current="10000"), buy("TQQQ", "5000")]
        )
    finally:
        timer.cancel()
    sold, bought = sorted(fake.state.orders.values(), key=lambda o: o.created_at)
    assert (sold.side, bought.side) == ("sell", "buy")
    assert sold.filled_at is not None and bought.created_at >= sold.filled_at
    assert "WorkflowCompleted" in out


class _CashSpentAfterCheck(AlpacaBroker):
    """Cash is spent elsewhere right after execution checked the plan's funding."""

    def __init__(self, fake: FakeAlpaca) -> None:
        super().__init__(alpaca_settings_for(fake), sleep=lambda _s: None)
        self._fake = fake

    def get_account(self) -> AccountState:
        account = super().get_account()
        self._fake.state.cash = Decimal(100)
        return account


def test_market_when_buy_exceeds_cash_then_rejected_and_workflow_failed(
    fake: FakeAlpaca, store: AttemptStore
) -> None:
    # the plan is funded when checked; the broker refuses the buy once the cash is gone
    _event, out = _run(_CashSpentAfterCheck(fake), store, [buy("TQQQ", "5000")])
    (order,) = out["TradeExecuted"].orders
    assert order.status is OrderStatus.REJECTED
    assert "insufficient buying power" in (order.error or "")
    assert out["TradeExecuted"].orders_placed == 0
    assert out["WorkflowFailed"].details["leg_0"] == order.error


def test_handle_when_market_closed_then_workflow_failed_and_nothing_sent(
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore
) -> None:
    fake.state.market_open = False
    _event, out = _run(broker, store, [buy("TQQQ", "5000")])
    assert set(out) == {"WorkflowFailed"}
    assert (out["WorkflowFailed"].reason, out["WorkflowFailed"].failed_symbols) == (
        "market_closed",
        ["TQQQ"],
    )
    assert fake.state.orders == {}


def test_handle_when_order_above_max_value_then_refused_and_nothing_sent(
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore
) -> None:
    config = dataclasses.replace(FAST_CONFIG, max_order_value=Decimal(4999))
    _event, out = _run(broker, store, [buy("TQQQ", "5000")], config)
    assert set(out) == {"WorkflowFailed"}
    assert out["WorkflowFailed"].reason == "max_order_value_exceeded"
    assert fake.state.orders == {}


def test_handle_when_daily_cap_reached_then_circuit_breaker_refuses_and_redelivery_too(
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore
) -> None:
    config = dataclasses.replace(FAST_CONFIG, max_daily_traded_value=Decimal(8000))
    handler = make_handler(broker, store, config)
    first_event = register_workflow(store, planned([buy("TQQQ", "5000")]))
    first = outputs_by_type(handler(first_event, context()))
    assert "WorkflowCompleted" in first
    second_event = register_workflow(store, planned([buy("TQQQ", "3500")]))

    second = outputs_by_type(handler(second_event, context()))
    fake.state.cash = Decimal(10**9)  # a redelivery must not re-decide
    again = outputs_by_type(handler(second_event, context()))

    assert set(second) == set(again) == {"WorkflowFailed"}
    assert second["WorkflowFailed"].reason == "daily_traded_value_exceeded"
    assert second["WorkflowFailed"].event_id == again["WorkflowFailed"].event_id
    assert len(fake.state.orders) == 1


def test_handle_when_nothing_to_trade_then_completed_without_orders(
    broker: AlpacaBroker, store: AttemptStore
) -> None:
    _event, out = _run(broker, store, [])
    assert out["TradeExecuted"].orders == []
    assert out["WorkflowCompleted"].summary.orders_placed == 0


def test_handle_when_plan_changes_for_same_workflow_then_rejected_as_conflict(
    broker: AlpacaBroker, store: AttemptStore
) -> None:
    handler = make_handler(broker, store)
    event = register_workflow(store, planned([buy("TQQQ", "1000")]))
    handler(event, context())
    other = planned([buy("TQQQ", "2000")], correlation_id=event.correlation_id)
    with pytest.raises(PlanConflictError):
        handler(other, context())


def test_handle_when_plan_hash_does_not_match_then_rejected(
    broker: AlpacaBroker, store: AttemptStore
) -> None:
    event = register_workflow(store, planned([buy("TQQQ", "1000")]))
    forged = event.model_copy(update={"plan_hash": "0" * 64})
    with pytest.raises(PlanHashMismatchError) as raised:
        make_handler(broker, store)(forged, context())
    assert isinstance(raised.value, InvalidEventError)

"""The handler over the real Alpaca adapter against the fake Alpaca server."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.events import OrderStatus, TradeExecuted, WorkflowCompleted
from alchemiser_devtools.fake_alpaca import FakeAlpaca
from alchemiser_devtools.fake_alpaca.fixtures import alpaca_settings_for
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.testing import (
    buy,
    context,
    make_handler,
    outputs_by_type,
    planned,
    register_workflow,
    sell,
)


@pytest.fixture
def broker(fake_alpaca: FakeAlpaca) -> AlpacaBroker:
    fake_alpaca.set_price("SOXL", "25")
    fake_alpaca.set_price("TQQQ", "50")
    fake_alpaca.state.set_position("SOXL", Decimal(400), Decimal(20))
    return AlpacaBroker(alpaca_settings_for(fake_alpaca), sleep=lambda _s: None)


def test_handle_when_plan_sells_and_buys_then_trade_executed_and_workflow_completed(
    fake_alpaca: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore
) -> None:
    plan = planned([sell("SOXL", "10000", current="10000"), buy("TQQQ", "5000")])
    event = register_workflow(store, plan)
    outputs = make_handler(broker, store)(event, context())
    by_type = outputs_by_type(outputs)
    executed = by_type["TradeExecuted"]
    assert isinstance(executed, TradeExecuted)
    assert isinstance(by_type["WorkflowCompleted"], WorkflowCompleted)
    assert [(o.symbol, o.status, o.filled_qty) for o in executed.orders] == [
        ("SOXL", OrderStatus.FILLED, Decimal(400)),
        ("TQQQ", OrderStatus.FILLED, Decimal(100)),
    ]
    for order in executed.orders:
        assert fake_alpaca.orders_created(order.client_order_id) == 1

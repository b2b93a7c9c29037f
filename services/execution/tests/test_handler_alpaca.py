"""The handler over the real Alpaca adapter against the paper exchange."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.events import OrderStatus, TradeExecuted, WorkflowCompleted
from alchemiser_devtools.exchange import PaperExchange, adapter_settings
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
def broker(paper_exchange: PaperExchange) -> AlpacaBroker:
    paper_exchange.set_prices({"SOXL": "25", "TQQQ": "50"})
    paper_exchange.exchange.set_position(paper_exchange.account, "SOXL", Decimal(400), Decimal(20))
    return AlpacaBroker(adapter_settings(paper_exchange.url), sleep=lambda _s: None)


def test_handle_when_plan_sells_and_buys_then_trade_executed_and_workflow_completed(
    paper_exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    plan = planned(
        [sell("SOXL", "10000", current="10000"), buy("TQQQ", "5000")],
        account_id=paper_exchange.account,
    )
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
        assert len(paper_exchange.orders_for(order.client_order_id)) == 1

"""Start-up reconciliation: unsettled attempts resolved against the broker before new work.

Policy under test: a PENDING attempt whose order the broker holds is adopted; one the broker
does not hold becomes NOT_PLACED and the resumed run (the redelivered input) sends it again
under the same client_order_id, exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

import pytest

from alchemiser_broker import BrokerOrder, BrokerPort, OrderRequest
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.events import OrderSide, OrderStatus
from alchemiser_devtools.exchange import PaperExchange, adapter_settings
from alchemiser_devtools.faults import ALPACA_ROUTES, Fault, FaultProxy
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.domain.attempts import AttemptState
from alchemiser_execution.domain.legs import client_order_id
from alchemiser_execution.exceptions import ReconciliationError
from alchemiser_execution.reconcile import reconcile
from alchemiser_execution.testing import (
    buy,
    context,
    make_handler,
    outputs_by_type,
    planned,
    register_workflow,
)

ORDERS = "POST /v2/orders"


def _no_sleep(_seconds: float) -> None:
    """Reconciliation's backoff without waiting."""


class _Crash(BaseException):
    """Stands in for SIGKILL inside one process: nothing after it runs."""


class _CrashingBroker:
    """Delegates to a real broker; ``submit_order`` crashes before or after sending."""

    def __init__(self, inner: AlpacaBroker, *, after_send: bool) -> None:
        self._inner = inner
        self._after_send = after_send

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        if not self._after_send:
            raise _Crash("crashed before the order was sent")
        self._inner.submit_order(request)
        raise _Crash("crashed after the broker accepted the order")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def exchange(paper_exchange: PaperExchange) -> PaperExchange:
    paper_exchange.set_prices({"TQQQ": "50"})
    return paper_exchange


@pytest.fixture
def proxy(exchange: PaperExchange) -> Iterator[FaultProxy]:
    """The broker's way to the exchange: counts order submissions, injects faults."""
    with FaultProxy(exchange.url, routes=ALPACA_ROUTES) as running:
        yield running


@pytest.fixture
def broker(proxy: FaultProxy) -> AlpacaBroker:
    return AlpacaBroker(adapter_settings(proxy.url, retry_backoff_s=0.0), sleep=lambda _s: None)


def _crash(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore, *, after_send: bool
) -> Any:
    plan = planned([buy("TQQQ", "5000")], account_id=exchange.account)
    event = register_workflow(store, plan)
    crashing = cast(BrokerPort, _CrashingBroker(broker, after_send=after_send))
    with pytest.raises(_Crash):
        make_handler(crashing, store)(event, context())
    (attempt,) = store.attempts_of(event.account_id, str(event.correlation_id))
    assert attempt.state is AttemptState.PENDING
    return event


def test_reconcile_when_pending_order_exists_at_broker_then_adopted_and_not_resent(
    exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker, store: AttemptStore
) -> None:
    event = _crash(exchange, broker, store, after_send=True)
    cid = client_order_id(event.correlation_id, event.plan_hash, 0)

    report = reconcile(store, broker, sleep=_no_sleep)

    (attempt,) = store.attempts_of(event.account_id, str(event.correlation_id))
    assert (report.examined, report.adopted, report.not_placed) == (1, 1, 0)
    assert attempt.state is AttemptState.FILLED
    assert attempt.broker_order_id == exchange.orders_for(cid)[0].broker_order_id
    outputs = outputs_by_type(make_handler(broker, store)(event, context()))  # redelivery
    assert len(exchange.orders_for(cid)) == 1
    assert proxy.requests_seen[ORDERS] == 1  # sent once, before the crash; never re-sent
    assert outputs["TradeExecuted"].orders[0].status is OrderStatus.FILLED


def test_reconcile_when_pending_order_absent_at_broker_then_not_placed_and_resent_once(
    exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker, store: AttemptStore
) -> None:
    event = _crash(exchange, broker, store, after_send=False)
    cid = client_order_id(event.correlation_id, event.plan_hash, 0)

    report = reconcile(store, broker, sleep=_no_sleep)

    (attempt,) = store.attempts_of(event.account_id, str(event.correlation_id))
    assert (report.adopted, report.not_placed) == (0, 1)
    assert attempt.state is AttemptState.NOT_PLACED
    assert exchange.orders_for(cid) == []
    assert proxy.requests_seen[ORDERS] == 0
    outputs = outputs_by_type(make_handler(broker, store)(event, context()))  # redelivery
    assert len(exchange.orders_for(cid)) == 1
    assert proxy.requests_seen[ORDERS] == 1  # sent exactly once
    assert outputs["TradeExecuted"].orders[0].client_order_id == cid
    assert "WorkflowCompleted" in outputs


def test_reconcile_when_submitted_order_filled_meanwhile_then_state_follows_broker(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    exchange.exchange.hold_fills = True
    event = register_workflow(store, planned([buy("TQQQ", "5000")], account_id=exchange.account))
    crashing = cast(BrokerPort, _CrashingBroker(broker, after_send=True))
    with pytest.raises(_Crash):
        make_handler(crashing, store)(event, context())
    reconcile(store, broker, sleep=_no_sleep)  # first restart: the order is open
    (attempt,) = store.attempts_of(event.account_id, str(event.correlation_id))
    assert attempt.state is AttemptState.SUBMITTED
    (order,) = exchange.orders()
    exchange.exchange.fill_order(exchange.account, order.broker_order_id, price=Decimal("49.5"))

    reconcile(store, broker, sleep=_no_sleep)  # second restart

    (attempt,) = store.attempts_of(event.account_id, str(event.correlation_id))
    assert (attempt.state, attempt.filled_qty, attempt.filled_avg_price) == (
        AttemptState.FILLED,
        Decimal(100),
        Decimal("49.5"),
    )


def test_reconcile_when_broker_unreachable_then_error_after_timeout(
    exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker, store: AttemptStore
) -> None:
    _crash(exchange, broker, store, after_send=True)
    proxy.inject("GET /v2/orders:by_client_order_id", Fault.SERVER_ERROR, times=10_000)
    with pytest.raises(ReconciliationError):
        reconcile(store, broker, timeout_s=0.2, sleep=lambda _s: None)
    assert [a.state for a in store.unsettled()] == [AttemptState.PENDING]


def test_reconcile_when_open_order_has_no_attempt_then_reported_as_orphan(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    exchange.exchange.hold_fills = True
    broker.submit_order(
        OrderRequest(
            client_order_id="alc-orphan", symbol="TQQQ", side=OrderSide.BUY, qty=Decimal(1)
        )
    )
    assert reconcile(store, broker, sleep=_no_sleep).orphans == ("alc-orphan",)

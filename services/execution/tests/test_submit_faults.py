"""Every fault of the fake Alpaca on submit: one broker order per intent, attempts resolved.

The handler runs over the real :class:`AlpacaBroker` (its own bounded retries included)
against the fake server. After each run, start-up reconciliation is run as a restarted
service would, and every attempt must be in a known state (neither PENDING nor UNKNOWN).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.errors import TransientError
from alchemiser_common.events import OrderStatus, RebalancePlanned, TradeExecuted
from alchemiser_devtools.fake_alpaca import FakeAlpaca, Fault
from alchemiser_devtools.fake_alpaca.fixtures import alpaca_settings_for
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.domain.attempts import UNRESOLVED_STATES
from alchemiser_execution.domain.legs import client_order_id
from alchemiser_execution.reconcile import reconcile
from alchemiser_execution.testing import (
    buy,
    context,
    make_handler,
    outputs_by_type,
    planned,
    register_workflow,
    sell,
)

ORDERS = "POST /v2/orders"
LOOKUP = "GET /v2/orders:by_client_order_id"
ALL_FAULTS = list(Fault)


@pytest.fixture
def fake(fake_alpaca: FakeAlpaca) -> FakeAlpaca:
    fake_alpaca.set_price("SOXL", "25")
    fake_alpaca.set_price("TQQQ", "50")
    fake_alpaca.state.set_position("SOXL", Decimal(400), Decimal(20))
    fake_alpaca.read_timeout_delay_s = 0.6
    fake_alpaca.rate_limit_reset_s = 0.0
    return fake_alpaca


@pytest.fixture
def broker(fake: FakeAlpaca) -> AlpacaBroker:
    settings = alpaca_settings_for(fake, request_timeout_s=0.3, max_rate_limit_wait_s=0.1)
    return AlpacaBroker(settings, sleep=lambda _s: None)


def _intents(event: RebalancePlanned, legs: int) -> list[str]:
    return [client_order_id(event.correlation_id, event.plan_hash, leg) for leg in range(legs)]


def _assert_settled(store: AttemptStore, broker: AlpacaBroker, event: RebalancePlanned) -> None:
    reconcile(store, broker, timeout_s=5, sleep=lambda _s: None)
    attempts = store.attempts_of(event.account_id, str(event.correlation_id))
    assert attempts
    assert [a.state for a in attempts if a.state in UNRESOLVED_STATES] == []


@pytest.mark.parametrize("unique", [True, False], ids=["422-on-reuse", "no-422"])
@pytest.mark.parametrize("fault", ALL_FAULTS, ids=lambda fault: fault.value)
def test_handle_when_submit_fails_with_fault_then_one_order_per_intent(
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore, fault: Fault, unique: bool
) -> None:
    # Without the broker's duplicate-id refusal, one order per intent proves nothing is re-sent.
    fake.state.enforce_unique_client_order_id = unique
    event = register_workflow(store, planned([sell("SOXL", "5000"), buy("TQQQ", "2000")]))
    fake.inject(ORDERS, fault, times=2)  # the sell's submit and the buy's submit

    executed = outputs_by_type(make_handler(broker, store)(event, context()))["TradeExecuted"]

    assert isinstance(executed, TradeExecuted)
    for cid in _intents(event, 2):
        assert fake.orders_created(cid) == 1, cid
    assert [o.status for o in executed.orders] == [OrderStatus.FILLED, OrderStatus.FILLED]
    _assert_settled(store, broker, event)


@pytest.mark.parametrize(
    "fault",
    [f for f in ALL_FAULTS if f is not Fault.RATE_LIMITED],
    ids=lambda fault: fault.value,
)
def test_handle_when_fault_outlasts_adapter_retries_then_still_one_order(
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore, fault: Fault
) -> None:
    event = register_workflow(store, planned([buy("TQQQ", "2000")]))
    fake.inject(ORDERS, fault, times=6)  # more than the adapter's 4 attempts

    outputs = outputs_by_type(make_handler(broker, store)(event, context()))

    (cid,) = _intents(event, 1)
    assert fake.orders_created(cid) == 1
    assert outputs["TradeExecuted"].orders[0].status is OrderStatus.FILLED
    assert "WorkflowCompleted" in outputs
    _assert_settled(store, broker, event)


def test_handle_when_outcome_stays_unknown_then_transient_error_and_redelivery_adopts(
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore
) -> None:
    event = register_workflow(store, planned([buy("TQQQ", "2000")]))
    (cid,) = _intents(event, 1)
    fake.inject(ORDERS, Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT)
    fake.inject(LOOKUP, Fault.SERVER_ERROR, times=10_000)  # look-ups never answer
    handler = make_handler(broker, store)

    with pytest.raises(TransientError):
        handler(event, context())
    assert fake.orders_created(cid) == 1
    (attempt,) = store.attempts_of(event.account_id, str(event.correlation_id))
    assert attempt.is_unresolved

    with fake._lock:  # the outage ends (the fake has no public way to drop queued faults)
        fake._faults.clear()
    outputs = outputs_by_type(handler(event, context()))  # the runtime redelivers

    assert fake.orders_created(cid) == 1
    assert outputs["TradeExecuted"].orders[0].status is OrderStatus.FILLED
    assert "WorkflowCompleted" in outputs
    _assert_settled(store, broker, event)


def test_handle_when_run_twice_then_same_event_ids_and_no_new_orders(
    fake: FakeAlpaca, broker: AlpacaBroker, store: AttemptStore
) -> None:
    event = register_workflow(store, planned([sell("SOXL", "5000"), buy("TQQQ", "2000")]))
    handler = make_handler(broker, store)

    first = handler(event, context())
    orders_after_first = len(fake.state.orders)
    second = handler(event, context())

    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert len(fake.state.orders) == orders_after_first == 2
    assert first[0].model_dump(exclude={"occurred_at"}) == second[0].model_dump(
        exclude={"occurred_at"}
    )

"""Ambiguous HTTP outcomes on submit: never two broker orders for one client_order_id.

Each fault runs twice: with the fake enforcing unique client_order_ids (like Alpaca) and with
that switched off, which proves the adapter itself never re-sends an order the broker had
already accepted (it looks the order up first), rather than relying on the 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from alchemiser_broker import (
    AmbiguousOrderOutcomeError,
    BrokerUnavailableError,
    OrderRequest,
    OrderSide,
    OrderStatus,
)
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.errors import TransientError
from alchemiser_devtools.fake_alpaca import FakeAlpaca, Fault
from alchemiser_devtools.fake_alpaca.fixtures import alpaca_settings_for

ORDERS = "POST /v2/orders"
LOOKUP = "GET /v2/orders:by_client_order_id"
PRICE = Decimal("250.5")
SUBMIT_FAULTS = [
    Fault.GATEWAY_TIMEOUT_BEFORE_ACCEPT,
    Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT,
    Fault.READ_TIMEOUT_BEFORE_ACCEPT,
    Fault.READ_TIMEOUT_AFTER_ACCEPT,
    Fault.BAD_GATEWAY_HTML,
    Fault.BAD_GATEWAY_HTML_AFTER_ACCEPT,
    Fault.SERVER_ERROR,
    Fault.RATE_LIMITED,
    Fault.CONNECTION_RESET_BEFORE_ACCEPT,
    Fault.CONNECTION_RESET_AFTER_ACCEPT,
]


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    """A fake Alpaca server for one test (same as the ``fake_alpaca`` plugin fixture)."""
    with FakeAlpaca() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def broker(fake: FakeAlpaca, sleeps: list[float]) -> AlpacaBroker:
    fake.set_price("QQQ", PRICE)
    fake.read_timeout_delay_s = 1.0
    settings = alpaca_settings_for(fake, request_timeout_s=0.25)
    return AlpacaBroker(settings, sleep=sleeps.append)


def _buy(cid: str) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol="QQQ", side=OrderSide.BUY, qty=Decimal(2))


@pytest.mark.parametrize("enforce_unique", [True, False], ids=["alpaca-422", "no-422"])
@pytest.mark.parametrize("fault", SUBMIT_FAULTS, ids=[f.value for f in SUBMIT_FAULTS])
def test_submit_when_fault_then_exactly_one_order_in_a_known_state(
    fake: FakeAlpaca, broker: AlpacaBroker, fault: Fault, enforce_unique: bool
) -> None:
    fake.state.enforce_unique_client_order_id = enforce_unique
    fake.inject(ORDERS, fault)
    cid = f"wf-{fault.value}"

    order = broker.submit_order(_buy(cid))

    assert fake.orders_created(cid) == 1
    assert order.client_order_id == cid
    assert order.status is OrderStatus.FILLED and order.filled_qty == Decimal(2)
    assert broker.get_account().cash == Decimal(100_000) - 2 * PRICE
    assert fake.pending_faults(ORDERS) == 0


@pytest.mark.parametrize(
    "fault",
    [f for f in SUBMIT_FAULTS if f.after_accept],
    ids=[f.value for f in SUBMIT_FAULTS if f.after_accept],
)
def test_submit_when_reply_lost_after_accept_then_adopted_without_second_post(
    fake: FakeAlpaca, broker: AlpacaBroker, fault: Fault
) -> None:
    fake.state.enforce_unique_client_order_id = False
    fake.inject(ORDERS, fault)

    order = broker.submit_order(_buy("wf-lost"))

    assert fake.requests_seen[ORDERS] == 1  # neither alpaca-py nor the adapter re-sent
    assert fake.requests_seen[LOOKUP] == 1
    assert order == broker.get_order_by_client_id("wf-lost")


def test_submit_when_rejected_before_accept_then_resent_once_after_lookup(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.inject(ORDERS, Fault.GATEWAY_TIMEOUT_BEFORE_ACCEPT)

    broker.submit_order(_buy("wf-resend"))

    assert fake.requests_seen[ORDERS] == 2
    assert fake.requests_seen[LOOKUP] == 1  # looked up (404) before the re-send


def test_submit_when_rate_limited_then_waits_and_retries_same_id_without_lookup(
    fake: FakeAlpaca, broker: AlpacaBroker, sleeps: list[float]
) -> None:
    fake.rate_limit_reset_s = 1.0
    fake.inject(ORDERS, Fault.RATE_LIMITED, times=2)

    order = broker.submit_order(_buy("wf-429"))

    assert order.status is OrderStatus.FILLED
    assert fake.requests_seen[ORDERS] == 3
    assert fake.requests_seen[LOOKUP] == 0  # a 429 is a definite "not accepted"
    assert len(sleeps) == 2 and all(0 <= s <= 2.0 for s in sleeps)


def test_submit_when_never_accepted_within_retries_then_ambiguous_and_lookup_finds_none(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.inject(ORDERS, Fault.GATEWAY_TIMEOUT_BEFORE_ACCEPT, times=4)

    with pytest.raises(AmbiguousOrderOutcomeError) as caught:
        broker.submit_order(_buy("wf-down"))

    assert caught.value.client_order_id == "wf-down"
    assert isinstance(caught.value, BrokerUnavailableError)
    assert isinstance(caught.value, TransientError)
    assert fake.requests_seen[ORDERS] == 4  # bounded: 1 + max_retries
    assert broker.get_order_by_client_id("wf-down") is None  # the caller may submit again
    assert fake.orders_created("wf-down") == 0


def test_submit_when_accepted_but_broker_unreachable_then_ambiguous_until_lookup_finds_it(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.inject(ORDERS, Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT)
    fake.inject(LOOKUP, Fault.CONNECTION_RESET_BEFORE_ACCEPT, times=4)

    with pytest.raises(AmbiguousOrderOutcomeError, match="look-up failed") as caught:
        broker.submit_order(_buy("wf-later"))

    assert fake.requests_seen[ORDERS] == 1  # no re-send while the outcome is unknown
    found = broker.get_order_by_client_id(caught.value.client_order_id)
    assert found is not None and found.status is OrderStatus.FILLED
    assert fake.orders_created("wf-later") == 1


def test_submit_when_retries_disabled_and_504_after_accept_then_posted_once_and_adopted(
    fake: FakeAlpaca,
) -> None:
    fake.set_price("QQQ", PRICE)
    fake.state.enforce_unique_client_order_id = False
    settings = alpaca_settings_for(fake, max_retries=0)
    broker = AlpacaBroker(settings, sleep=lambda _: None)
    fake.inject(ORDERS, Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT, times=3)

    order = broker.submit_order(_buy("wf-once"))

    # alpaca-py alone would have re-sent this POST three times after the 504s.
    assert fake.requests_seen[ORDERS] == 1
    assert order.client_order_id == "wf-once"
    assert fake.orders_created("wf-once") == 1

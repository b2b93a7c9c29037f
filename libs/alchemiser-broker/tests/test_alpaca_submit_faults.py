"""Ambiguous HTTP outcomes on submit: never two broker orders for one client_order_id.

The faults are injected by a :class:`FaultProxy` in front of the paper exchange. The exchange
(like Alpaca) always refuses a reused client_order_id, so the tests also count the POSTs that
reached it: after a fault that hid an accepted order there is exactly one, which proves the
adapter itself never re-sends an order the broker had already accepted (it looks the order up
first), rather than relying on the 422.
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
from alchemiser_devtools.exchange import PaperExchange, adapter_settings
from alchemiser_devtools.faults import ALPACA_ROUTES, Fault, FaultProxy

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
def proxy(paper_exchange: PaperExchange) -> Iterator[FaultProxy]:
    paper_exchange.set_prices({"QQQ": PRICE})
    with FaultProxy(paper_exchange.url, routes=ALPACA_ROUTES, read_timeout_delay_s=1.5) as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def broker(proxy: FaultProxy, sleeps: list[float]) -> AlpacaBroker:
    settings = adapter_settings(proxy.url, request_timeout_s=1.0)  # room for a loaded machine
    return AlpacaBroker(settings, sleep=sleeps.append)


def _buy(cid: str) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol="QQQ", side=OrderSide.BUY, qty=Decimal(2))


@pytest.mark.parametrize("fault", SUBMIT_FAULTS, ids=[f.value for f in SUBMIT_FAULTS])
def test_submit_when_fault_then_exactly_one_order_in_a_known_state(
    paper_exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker, fault: Fault
) -> None:
    proxy.inject(ORDERS, fault)
    cid = f"wf-{fault.value}"

    order = broker.submit_order(_buy(cid))

    assert len(paper_exchange.orders_for(cid)) == 1
    assert order.client_order_id == cid
    assert order.status is OrderStatus.FILLED and order.filled_qty == Decimal(2)
    assert broker.get_account().cash == Decimal(100_000) - 2 * PRICE
    assert proxy.pending_faults(ORDERS) == 0
    # accepted before the fault: adopted, never re-sent; refused before it: sent once more
    assert proxy.requests_seen[ORDERS] == (1 if fault.after_accept else 2)


@pytest.mark.parametrize(
    "fault",
    [f for f in SUBMIT_FAULTS if f.after_accept],
    ids=[f.value for f in SUBMIT_FAULTS if f.after_accept],
)
def test_submit_when_reply_lost_after_accept_then_adopted_without_second_post(
    proxy: FaultProxy, broker: AlpacaBroker, fault: Fault
) -> None:
    proxy.inject(ORDERS, fault)

    order = broker.submit_order(_buy("wf-lost"))

    assert proxy.requests_seen[ORDERS] == 1  # neither alpaca-py nor the adapter re-sent
    assert proxy.requests_seen[LOOKUP] == 1
    assert order == broker.get_order_by_client_id("wf-lost")


def test_submit_when_rejected_before_accept_then_resent_once_after_lookup(
    paper_exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker
) -> None:
    proxy.inject(ORDERS, Fault.GATEWAY_TIMEOUT_BEFORE_ACCEPT)

    broker.submit_order(_buy("wf-resend"))

    assert proxy.requests_seen[ORDERS] == 2
    assert proxy.requests_seen[LOOKUP] == 1  # looked up (404) before the re-send
    assert len(paper_exchange.orders_for("wf-resend")) == 1


def test_submit_when_rate_limited_then_waits_and_retries_same_id_without_lookup(
    proxy: FaultProxy, broker: AlpacaBroker, sleeps: list[float]
) -> None:
    proxy.rate_limit_reset_s = 1.0
    proxy.inject(ORDERS, Fault.RATE_LIMITED, times=2)

    order = broker.submit_order(_buy("wf-429"))

    assert order.status is OrderStatus.FILLED
    assert proxy.requests_seen[ORDERS] == 3
    assert proxy.requests_seen[LOOKUP] == 0  # a 429 is a definite "not accepted"
    assert len(sleeps) == 2 and all(0 <= s <= 2.0 for s in sleeps)


def test_submit_when_never_accepted_within_retries_then_ambiguous_and_lookup_finds_none(
    paper_exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker
) -> None:
    proxy.inject(ORDERS, Fault.GATEWAY_TIMEOUT_BEFORE_ACCEPT, times=4)

    with pytest.raises(AmbiguousOrderOutcomeError) as caught:
        broker.submit_order(_buy("wf-down"))

    assert caught.value.client_order_id == "wf-down"
    assert isinstance(caught.value, BrokerUnavailableError)
    assert isinstance(caught.value, TransientError)
    assert proxy.requests_seen[ORDERS] == 4  # bounded: 1 + max_retries
    assert broker.get_order_by_client_id("wf-down") is None  # the caller may submit again
    assert paper_exchange.orders_for("wf-down") == []


def test_submit_when_accepted_but_broker_unreachable_then_ambiguous_until_lookup_finds_it(
    paper_exchange: PaperExchange, proxy: FaultProxy, broker: AlpacaBroker
) -> None:
    proxy.inject(ORDERS, Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT)
    proxy.inject(LOOKUP, Fault.CONNECTION_RESET_BEFORE_ACCEPT, times=4)

    with pytest.raises(AmbiguousOrderOutcomeError, match="look-up failed") as caught:
        broker.submit_order(_buy("wf-later"))

    assert proxy.requests_seen[ORDERS] == 1  # no re-send while the outcome is unknown
    found = broker.get_order_by_client_id(caught.value.client_order_id)
    assert found is not None and found.status is OrderStatus.FILLED
    assert len(paper_exchange.orders_for("wf-later")) == 1


def test_submit_when_retries_disabled_and_504_after_accept_then_posted_once_and_adopted(
    paper_exchange: PaperExchange, proxy: FaultProxy
) -> None:
    settings = adapter_settings(proxy.url, max_retries=0)
    broker = AlpacaBroker(settings, sleep=lambda _: None)
    proxy.inject(ORDERS, Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT, times=3)

    order = broker.submit_order(_buy("wf-once"))

    # alpaca-py alone would have re-sent this POST three times after the 504s.
    assert proxy.requests_seen[ORDERS] == 1
    assert order.client_order_id == "wf-once"
    assert len(paper_exchange.orders_for("wf-once")) == 1

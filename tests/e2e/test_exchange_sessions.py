"""Historical sessions on the paper exchange: three services and the exchange as processes.

The services run with default settings apart from addresses and ports (database URLs, the
broker, the registry, the exchange URL, the dataset): no keys, so portfolio and execution use
the exchange's local identity and trade on its account. Each workflow moves the account's
session clock to its ``as_of`` date (portfolio, through ``PUT /exchange/v1/session``), so:

* ten consecutive historical sessions on one account all complete, each filled at its own
  day's closes (2018-06-15 at 2018-06-15's, not the dataset's last day), and the account's
  positions afterwards are exactly the sum of the fills the workflows reported;
* the exchange killed (SIGKILL) while a workflow is placing orders and started again on the
  same port loses nothing and doubles nothing: the workflow completes, every order exists once.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from alchemiser_broker.settings import LOCAL_EXCHANGE_KEY_ID
from alchemiser_common.events import OrderSide, TradeExecuted, WorkflowCompleted
from alchemiser_common.settings import KafkaSettings
from alchemiser_common.workflow import build_trigger, publish, wait_for_outcome
from alchemiser_devtools.exchange import ExchangeProcess
from alchemiser_devtools.harness import Pipeline
from alchemiser_exchange import account_number_for
from alchemiser_marketdata import DatasetMarketData

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / "services" / "strategy" / "data" / "demo"
SESSIONS_FROM = date(2018, 6, 4)
SESSIONS = 10
ACCOUNT = account_number_for(LOCAL_EXCHANGE_KEY_ID)
WORKFLOW_TIMEOUT_S = 120.0
_LOCAL_KEYS = {
    "APCA-API-KEY-ID": LOCAL_EXCHANGE_KEY_ID,
    "APCA-API-SECRET-KEY": LOCAL_EXCHANGE_KEY_ID,
}


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExchangeProcess]:
    workdir = tmp_path_factory.mktemp("exchange")
    process = ExchangeProcess(DATASET, f"sqlite:///{workdir / 'exchange.db'}", workdir)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def system(
    e2e_broker: str,
    registered_registry: str,
    databases: dict[str, str],
    exchange: ExchangeProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pipeline]:
    pipeline = Pipeline(
        e2e_broker, registered_registry, databases["strategy"], tmp_path_factory.mktemp("e2e")
    )
    pipeline.start_module(
        "alchemiser_strategy",
        "strategy",
        ALCHEMISER_DATABASE__URL=databases["strategy"],
        ALCHEMISER_STRATEGY__DATASET_DIR=str(DATASET),
    )
    for service in ("portfolio", "execution"):
        pipeline.start_module(
            f"alchemiser_{service}",
            service,
            ALCHEMISER_DATABASE__URL=databases[service],
            ALCHEMISER_BROKER__EXCHANGE_URL=exchange.url,
        )
    try:
        yield pipeline
    finally:
        pipeline.stop_all()


def _sessions() -> list[date]:
    days = [day for day in DatasetMarketData(DATASET).trading_days() if day >= SESSIONS_FROM]
    return days[:SESSIONS]


def _run(system: Pipeline, session: date) -> list[TradeExecuted]:
    """The session's workflow, waited for; its TradeExecuted events (one, or none)."""
    kafka = KafkaSettings(bootstrap_servers=system.bootstrap, fetch_wait_max_ms=10)
    trigger = build_trigger(ACCOUNT, requested_by="e2e-sessions", as_of=session)
    publish(trigger, kafka, system.serde)
    outcome = wait_for_outcome(trigger.correlation_id, kafka, system.serde, WORKFLOW_TIMEOUT_S)
    assert outcome.succeeded, (session, outcome.event)
    assert isinstance(outcome.event, WorkflowCompleted)
    records = system.outputs_by_correlation(TradeExecuted.TOPIC).get(
        str(trigger.correlation_id), []
    )
    return [system.serde.deserialize(TradeExecuted.TOPIC, r.value()) for r in records]


def _positions(exchange: ExchangeProcess) -> dict[str, Decimal]:
    answer = httpx.get(f"{exchange.url}/v2/positions", headers=_LOCAL_KEYS, timeout=10)
    answer.raise_for_status()
    return {item["symbol"]: Decimal(item["qty"]) for item in answer.json()}


def _orders(exchange: ExchangeProcess) -> list[dict[str, str]]:
    answer = httpx.get(
        f"{exchange.url}/v2/orders",
        params={"status": "all", "limit": 500},
        headers=_LOCAL_KEYS,
        timeout=10,
    )
    answer.raise_for_status()
    orders: list[dict[str, str]] = answer.json()
    return orders


def _net_fills(executed: list[TradeExecuted]) -> dict[str, Decimal]:
    net: dict[str, Decimal] = defaultdict(Decimal)
    for event in executed:
        for order in event.orders:
            signed = order.filled_qty if order.side is OrderSide.BUY else -order.filled_qty
            net[order.symbol] += signed
    return {symbol: qty for symbol, qty in net.items() if qty != 0}


def test_sessions_when_ten_run_in_a_row_then_all_complete_at_their_own_prices(
    system: Pipeline, exchange: ExchangeProcess
) -> None:
    dataset = DatasetMarketData(DATASET)
    sessions = _sessions()
    assert len(sessions) == SESSIONS and date(2018, 6, 15) in sessions
    executed: list[TradeExecuted] = []
    for session in sessions:
        found = _run(system, session)
        for event in found:
            for order in event.orders:
                if order.filled_qty > 0:
                    # a market order fills at its own session's close
                    assert order.filled_avg_price == dataset.close_on(order.symbol, session), (
                        session,
                        order.symbol,
                    )
        executed.extend(found)
    assert executed and executed[0].orders_placed > 0

    # the account holds exactly what the workflows reported filling, nothing more or less
    assert _positions(exchange) == _net_fills(executed)
    # and every order the exchange holds is one the workflows reported, once
    reported = [o.client_order_id for e in executed for o in e.orders if o.client_order_id]
    at_exchange = [order["client_order_id"] for order in _orders(exchange)]
    assert sorted(at_exchange) == sorted(reported)


def test_exchange_when_killed_mid_workflow_then_nothing_lost_or_doubled(
    system: Pipeline, exchange: ExchangeProcess
) -> None:
    before_orders = len(_orders(exchange))
    before_positions = _positions(exchange)
    kafka = KafkaSettings(bootstrap_servers=system.bootstrap, fetch_wait_max_ms=10)
    session = date(2018, 6, 29)  # after the ten sessions: the account rebalances (sells, buys)
    trigger = build_trigger(ACCOUNT, requested_by="e2e-exchange-restart", as_of=session)
    publish(trigger, kafka, system.serde)
    deadline = time.monotonic() + WORKFLOW_TIMEOUT_S
    while len(_orders(exchange)) == before_orders:  # the first order of the workflow
        assert time.monotonic() < deadline, "the workflow placed no order"
        time.sleep(0.01)
    exchange.kill()
    time.sleep(2.0)  # execution meets connection errors, retries, resolves by client_order_id
    exchange.start()

    outcome = wait_for_outcome(trigger.correlation_id, kafka, system.serde, WORKFLOW_TIMEOUT_S)
    assert outcome.succeeded, outcome.event
    records = system.outputs_by_correlation(TradeExecuted.TOPIC)[str(trigger.correlation_id)]
    (executed,) = [system.serde.deserialize(TradeExecuted.TOPIC, r.value()) for r in records]
    placed = [o.client_order_id for o in executed.orders if o.client_order_id]
    orders = _orders(exchange)
    new = [order["client_order_id"] for order in orders][: len(orders) - before_orders]
    assert sorted(new) == sorted(placed)  # every order once: none lost, none doubled
    expected = dict(before_positions)
    for symbol, qty in _net_fills([executed]).items():
        expected[symbol] = expected.get(symbol, Decimal(0)) + qty
    assert _positions(exchange) == {s: q for s, q in expected.items() if q != 0}

"""Alpaca's failure modes against the whole system: every service a process, the paper exchange
behind a :class:`~alchemiser_devtools.faults.FaultProxy` that fails ``POST /v2/orders``.

Each scenario runs one workflow (the next trading session of one account) and says how it
must end:

* **after accept** (504, read timeout, connection reset, HTML 502 — the exchange took the order,
  the reply is lost): the adapter looks the order up by ``client_order_id`` before any
  re-send and adopts it -> *completed*;
* **before accept** (504, HTML 502, 500, 429, reset, read timeout — nothing reached the
  exchange): the look-up finds nothing (or, after a 429, ``X-Ratelimit-Reset`` is waited out)
  and the same ``client_order_id`` is sent again -> *completed*;
* **duplicate 422**: a submit the exchange already accepted is sent again under its
  ``client_order_id`` (a first submit that landed late). The exchange answers 422
  ``client_order_id must be unique`` (checked directly) and execution adopts the existing
  order: the settled event reports *that* order's id -> *completed*;
* **exchange restarted mid-workflow**: the exchange is SIGKILLed and started again while the
  workflow's first submit waits out a 429 (the restart also ends the partial fills of the
  workflow before), and — full mode — while the reply to an accepted submit is still
  outstanding: every leg is placed once, an accepted one adopted after the restart ->
  *completed*;
* **partial fills** (the exchange run with ``PARTIAL_FILL_RATIO=0.5``): every market order
  fills half and rests until execution's fill timeout cancels it -> *failed*, ``reason``
  ``orders_failed`` (step ``execution``), every leg's symbol in ``failed_symbols``, each leg
  reported canceled with less than its quantity filled;
* **stream gap** (full mode, a second system without the proxy, so the trade-updates stream is
  live): partial fills leave orders open, the exchange is killed, the rest of each order is
  filled while it is down (the stream never tells), the exchange is started again: the fills
  are learned over REST after the reconnection -> *completed*.

Proven after all scenarios of a system, from the topics and the exchange's book:

* exactly one outcome (completed or failed) per workflow, the expected one, and one
  ``execution.order.settled.v1`` event;
* no duplicate orders: the exchange holds exactly the orders the settled events report, one
  per reported ``client_order_id`` (so one per placed plan leg: market orders have one
  attempt), with the reported broker order id and filled quantity;
* positions follow fills: per symbol, the exchange's position is the sum of the filled
  quantities of the settled events (buys minus sells).

Quick mode runs one system: partial fills (the fresh account's first workflow), the restart
while a submit is held, three after-accept and three before-accept faults (504, read timeout,
reset; 504, HTML 502, 429), the 422. Full mode (``ALCHEMISER_E2E_FULL=1``) runs every fault
kind on its own, twice in a workflow, in two rounds, the 422 twice, the restart after an
accepted submit twice, partial fills again (sells, then buys), and the stream-gap system.

The services' HTTP timeout is 3 s (the proxy's read-timeout faults wait 6 s) and their fill
timeout 20 s; the exchange is started with a 120 s bound (restarts are slow on a loaded box).
"""

from __future__ import annotations

import csv
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from alchemiser_common.events import (
    FailureStep,
    OrderSide,
    OrderStatus,
    PlanAction,
    RebalancePlanned,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from alchemiser_common.workflow import WorkflowTimeoutError
from alchemiser_devtools.faults import Fault, FaultProxy
from alchemiser_devtools.system import TradingSystem
from alchemiser_exchange.rules import OPEN_STATUSES
from tests.e2e.conftest import DATASET, FULL, SystemFactory, scale

pytestmark = pytest.mark.integration

ORDERS = "POST /v2/orders"
ORDERS_FAILED = "orders_failed"
DUPLICATE_MESSAGE = "client_order_id must be unique"
FIRST_SESSION = date(2018, 5, 1)  # every session from here on trades 5 to 10 legs
WORKFLOW_TIMEOUT_S = 180.0  # generous: other heavy jobs share this 2-core machine
REQUEST_TIMEOUT_S = 3.0  # the services' HTTP timeout ...
READ_TIMEOUT_DELAY_S = 6.0  # ... which a read-timeout fault outwaits
HOLD_S = 8.0  # a 429's X-Ratelimit-Reset while the test places the "late" first submit
EXCHANGE_START_S = 120.0  # a restart's imports alone took over 30 s at a load average of 11
PARTIAL_RATIO = "0.5"
PARTIAL_ENV = "ALCHEMISER_EXCHANGE__PARTIAL_FILL_RATIO"
SERVICE_ENV = {
    "ALCHEMISER_ALPACA__REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
    # a partially filled market order is canceled after this; long enough that a phase's
    # placements under faults (timeouts, an exchange restart) stay within its bound (fill
    # timeout + 5.5 s), past which legs that filled in the last round are reported failed
    "ALCHEMISER_EXECUTION__FILL_TIMEOUT_S": "20",
    "ALCHEMISER_EXECUTION__BUYING_POWER_TIMEOUT_S": "5",
}
AFTER_ACCEPT = (
    Fault.GATEWAY_TIMEOUT_AFTER_ACCEPT,
    Fault.READ_TIMEOUT_AFTER_ACCEPT,
    Fault.CONNECTION_RESET_AFTER_ACCEPT,
    Fault.BAD_GATEWAY_HTML_AFTER_ACCEPT,
)
BEFORE_ACCEPT = (
    Fault.GATEWAY_TIMEOUT_BEFORE_ACCEPT,
    Fault.BAD_GATEWAY_HTML,
    Fault.SERVER_ERROR,
    Fault.RATE_LIMITED,
    Fault.CONNECTION_RESET_BEFORE_ACCEPT,
    Fault.READ_TIMEOUT_BEFORE_ACCEPT,
)


def sessions(start: date = FIRST_SESSION) -> Iterator[date]:
    """The dataset's trading days from ``start`` on (weekdays are not enough: holidays), one
    workflow each, each trading a changed target."""
    with (DATASET / "SPY.csv").open() as bars:
        days = sorted({date.fromisoformat(row["date"]) for row in csv.DictReader(bars)})
    return iter([day for day in days if day >= start])


@dataclass(frozen=True)
class Workflow:
    """One triggered workflow and how it must end (``reason`` None: completed)."""

    scenario: str
    trigger: WorkflowStarted
    reason: str | None = None


@dataclass
class Run:
    """The workflows of one system, run one after another on consecutive sessions."""

    system: TradingSystem
    days: Iterator[date] = field(default_factory=sessions)
    workflows: list[Workflow] = field(default_factory=list)

    @property
    def proxy(self) -> FaultProxy:
        """The system's fault proxy."""
        assert self.system.proxy is not None
        return self.system.proxy

    def trigger(self) -> WorkflowStarted:
        """Trigger the next session's workflow."""
        return self.system.trigger(next(self.days), rerun=False)

    def finish(self, scenario: str, trigger: WorkflowStarted, reason: str | None = None) -> Any:
        """Wait for the workflow's outcome and check it is the expected one; the outcome."""
        outcome = self.system.wait_for_outcome(trigger, timeout_s=WORKFLOW_TIMEOUT_S)
        if reason is None:
            assert outcome.succeeded, (scenario, outcome.event)
        else:
            assert isinstance(outcome.event, WorkflowFailed), (scenario, outcome.event)
            assert outcome.event.reason == reason, (scenario, outcome.event)
        self.workflows.append(Workflow(scenario, trigger, reason))
        return outcome.event

    def run(self, scenario: str, reason: str | None = None) -> Any:
        """Trigger the next workflow and finish it."""
        return self.finish(scenario, self.trigger(), reason)


# -- scenarios -----------------------------------------------------------------------------


def faulted(run: Run, faults: Sequence[Fault]) -> None:
    """The next submits meet ``faults`` in order: the workflow completes, every fault used."""
    for fault in faults:
        run.proxy.inject(ORDERS, fault)
    run.run("+".join(fault.value for fault in faults))
    assert run.proxy.pending_faults(ORDERS) == 0, "a fault was not used: too few submits"


@contextmanager
def first_submit_held(run: Run) -> Iterator[tuple[WorkflowStarted, dict[str, Any]]]:
    """Trigger the next workflow with its first submit held: it meets a 429 whose
    ``X-Ratelimit-Reset`` lies :data:`HOLD_S` ahead (nothing reaches the exchange), and the
    adapter waits that out before it sends the same ``client_order_id`` again. Yields the
    trigger and that submit's attempt, as execution recorded it (PENDING) before sending it."""
    proxy = run.proxy
    proxy.rate_limit_reset_s = HOLD_S
    proxy.inject(ORDERS, Fault.RATE_LIMITED)
    try:
        trigger = run.trigger()
        yield trigger, _first_attempt(run.system, str(trigger.correlation_id))
    finally:
        proxy.rate_limit_reset_s = 1.0


def duplicate_adopted(run: Run) -> None:
    """A submit the exchange already holds is re-sent: 422, and the held order is adopted.

    While the first submit is held, the test places the very order it asks for under its
    ``client_order_id``: the state a first submit that landed late leaves. After a 429 the
    adapter re-sends without a look-up (a 429 means not accepted), so the re-send meets the
    exchange's 422, whose answer the test checks directly too.
    """
    system = run.system
    with first_submit_held(run) as (trigger, attempt):
        keys = _keys(system)
        body = {
            "symbol": attempt["symbol"],
            "qty": str(attempt["qty"]),
            "side": attempt["side"].lower(),
            "type": "market",
            "time_in_force": "day",
            "client_order_id": attempt["client_order_id"],
        }
        placed = httpx.post(f"{system.exchange.url}/v2/orders", json=body, headers=keys, timeout=30)
        assert placed.status_code == 200, placed.text
        again = httpx.post(f"{system.exchange.url}/v2/orders", json=body, headers=keys, timeout=30)
        assert again.status_code == 422, again.text
        assert DUPLICATE_MESSAGE in again.json()["message"].lower()
    run.finish("duplicate 422", trigger)
    assert run.proxy.pending_faults(ORDERS) == 0
    executed = _settled(system, trigger)
    (adopted,) = [o for o in executed.orders if o.client_order_id == attempt["client_order_id"]]
    assert adopted.broker_order_id == placed.json()["id"]  # the held order, not a second one
    assert adopted.status is OrderStatus.FILLED


def restarted_while_submit_held(run: Run, env: dict[str, str | None]) -> None:
    """The exchange dies while the workflow's first submit is held and comes back (with
    ``env`` changed): the held submit and the later legs meet the outage; each is placed once."""
    with first_submit_held(run) as (trigger, _attempt):
        restart_exchange(run.system, env)
    run.finish("exchange restarted while a submit is held", trigger)


def restarted_mid_submit(run: Run) -> None:
    """The exchange dies while an accepted submit's reply is outstanding, and comes back."""
    system = run.system
    before = {order.client_order_id for order in system.orders()}
    run.proxy.inject(ORDERS, Fault.READ_TIMEOUT_AFTER_ACCEPT)  # the reply waits past 3 s
    trigger = run.trigger()
    system.wait_until(
        lambda: any(o.client_order_id not in before for o in system.orders()),
        "the first order of the workflow at the exchange",
        timeout_s=WORKFLOW_TIMEOUT_S,
    )
    system.kill("exchange")  # the client still waits for its reply: the outcome is unknown
    start_exchange(system)
    run.finish("exchange restarted after accepting a submit", trigger)


def partially_filled(run: Run) -> None:
    """With the exchange filling half of each order, the workflow fails naming every leg."""
    system = run.system
    assert system.exchange.env.get(PARTIAL_ENV) == PARTIAL_RATIO
    trigger = run.trigger()
    failed = run.finish("partial fills", trigger, ORDERS_FAILED)
    assert failed.failure_step == FailureStep.EXECUTION
    executed = _settled(system, trigger)
    assert not executed.success
    assert executed.orders_succeeded == 0
    assert set(failed.failed_symbols) == {order.symbol for order in executed.orders}
    for order in executed.orders:  # half filled (or nothing, for a single whole share) ...
        if order.broker_order_id is not None:  # ... then canceled at the fill timeout
            assert order.status is OrderStatus.CANCELED, order
            assert order.filled_qty < order.qty, order


def start_exchange(system: TradingSystem) -> None:
    """Start the killed exchange again (same port, same database) and wait until it answers;
    with :data:`EXCHANGE_START_S` for a loaded machine (the harness's default is 30 s)."""
    system.exchange.start(timeout_s=EXCHANGE_START_S)


def restart_exchange(system: TradingSystem, env: dict[str, str | None]) -> None:
    """SIGKILL the exchange and start it again with ``env`` changed (None: removed)."""
    system.kill("exchange")
    for name, value in env.items():
        if value is None:
            system.exchange.env.pop(name, None)
        else:
            system.exchange.env[name] = value
    start_exchange(system)


# -- the ledger ----------------------------------------------------------------------------


def assert_ledger(run: Run) -> None:
    """Outcomes as expected, no duplicate orders, positions equal to the settled fills."""
    system = run.system
    settled = _by_workflow(system, TradeExecuted.TOPIC)
    completed = _by_workflow(system, WorkflowCompleted.TOPIC)
    failed = _by_workflow(system, WorkflowFailed.TOPIC)
    planned = _by_workflow(system, RebalancePlanned.TOPIC)
    assert set(settled) == {str(w.trigger.correlation_id) for w in run.workflows}
    for workflow in run.workflows:
        key = str(workflow.trigger.correlation_id)
        outcomes = completed.get(key, []) + failed.get(key, [])
        assert len(outcomes) == 1, (workflow.scenario, outcomes)
        (outcome,) = outcomes
        (executed,) = settled[key]
        if workflow.reason is None:
            assert isinstance(outcome, WorkflowCompleted), (workflow.scenario, outcome)
            assert executed.success
        else:
            assert isinstance(outcome, WorkflowFailed), (workflow.scenario, outcome)
            assert outcome.reason == workflow.reason
        (plan,) = planned[key]
        legs = [order.leg for order in executed.orders]
        assert len(legs) == len(set(legs))
        assert len(legs) <= sum(1 for i in plan.plan.items if i.action is not PlanAction.HOLD)
        assert executed.orders_placed > 0, workflow.scenario  # every scenario trades

    reported = {
        order.client_order_id: order
        for events in settled.values()
        for event in events
        for order in event.orders
        if order.broker_order_id is not None
    }
    orders = system.orders()
    per_id = Counter(order.client_order_id for order in orders)
    assert [cid for cid, n in per_id.items() if n > 1] == []
    assert set(per_id) == set(reported)  # no order the events do not report, none missing
    for order in orders:
        result = reported[order.client_order_id]
        assert result.broker_order_id == order.broker_order_id, order.client_order_id
        assert result.filled_qty == order.filled_qty, order.client_order_id

    expected: dict[str, Decimal] = defaultdict(Decimal)
    for result in reported.values():
        sign = 1 if result.side is OrderSide.BUY else -1
        expected[result.symbol] += sign * result.filled_qty
    held = {p.symbol: p.qty for p in system.book.positions(system.account) if p.qty != 0}
    assert held == {symbol: qty for symbol, qty in expected.items() if qty != 0}


def _by_workflow(system: TradingSystem, topic: str) -> dict[str, list[Any]]:
    """The system's account's events on ``topic`` by workflow (the module's systems share
    one broker, each trading its own account)."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for event in system.events(topic):
        if event.account_id == system.account:
            grouped[str(event.correlation_id)].append(event)
    return grouped


def _settled(system: TradingSystem, trigger: WorkflowStarted) -> TradeExecuted:
    (executed,) = [
        e for e in system.events(TradeExecuted.TOPIC) if e.correlation_id == trigger.correlation_id
    ]
    return executed


def _keys(system: TradingSystem) -> dict[str, str]:
    return {"APCA-API-KEY-ID": system.api_key, "APCA-API-SECRET-KEY": system.secret_key}


def _first_attempt(system: TradingSystem, correlation_id: str) -> dict[str, Any]:
    """The workflow's first order attempt, as execution recorded it before sending it."""
    url = make_url(system.databases["execution"]).set(drivername="postgresql")
    query = (
        "SELECT client_order_id, symbol, side, qty, state FROM execution_order_attempts "
        "WHERE correlation_id = %s ORDER BY id"
    )
    found: list[dict[str, Any]] = []

    def recorded() -> bool:
        with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
            cursor = connection.execute(query, (correlation_id,))
            columns = [column.name for column in cursor.description or ()]
            found[:] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        return bool(found)

    system.wait_until(recorded, "the first order attempt", timeout_s=WORKFLOW_TIMEOUT_S)
    first = found[0]
    assert first["state"] == "PENDING", first  # held by the 429: not sent yet
    return first


# -- the tests -----------------------------------------------------------------------------


@pytest.mark.timeout(scale(600, 2400))  # full mode: about 30 workflows and 8 exchange restarts
def test_alpaca_faults_when_submits_fail_then_one_order_per_leg_expected_outcomes_positions_follow(
    private_broker: str, make_system: SystemFactory
) -> None:
    system = make_system(
        private_broker,
        api_key="e2e-faults",
        secret_key="faults-secret",
        fault_proxy=True,
        service_env=SERVICE_ENV,
        exchange_env={PARTIAL_ENV: PARTIAL_RATIO},  # the first workflow meets partial fills
    )
    assert system.proxy is not None
    system.proxy.read_timeout_delay_s = READ_TIMEOUT_DELAY_S
    run = Run(system)

    partially_filled(run)  # the fresh account's first workflow: buys only
    restarted_while_submit_held(run, {PARTIAL_ENV: None})  # full fills from here on
    if FULL:
        for _round in range(2):
            for fault in (*AFTER_ACCEPT, *BEFORE_ACCEPT):
                faulted(run, [fault, fault])
    else:
        faulted(run, AFTER_ACCEPT[:3])
        faulted(
            run, (Fault.GATEWAY_TIMEOUT_BEFORE_ACCEPT, Fault.BAD_GATEWAY_HTML, Fault.RATE_LIMITED)
        )
    for _ in range(scale(1, 2)):
        duplicate_adopted(run)
    if FULL:
        for _ in range(2):
            restarted_mid_submit(run)
        restart_exchange(system, {PARTIAL_ENV: PARTIAL_RATIO})
        partially_filled(run)  # now with sells first, then buys waiting for their proceeds

    assert_ledger(run)


@pytest.mark.timeout(1200)
def test_alpaca_stream_when_exchange_restarts_with_orders_open_then_missed_fills_are_learned(
    private_broker: str, make_system: SystemFactory
) -> None:
    if not FULL:
        pytest.skip("full mode only (ALCHEMISER_E2E_FULL=1): a second system")
    system = make_system(
        private_broker,
        api_key="e2e-stream-gap",
        secret_key="stream-gap-secret",
        service_env={**SERVICE_ENV, "ALCHEMISER_EXECUTION__FILL_TIMEOUT_S": "45"},
        exchange_env={PARTIAL_ENV: PARTIAL_RATIO},  # orders stay open until the test fills them
    )
    run = Run(system)
    for _ in range(3):  # the first workflow buys; the later ones sell, then buy
        trigger = run.trigger()
        restarts = fill_while_down_until_done(system, trigger)
        assert restarts >= 1
        run.finish("fills missed by the stream", trigger)
    assert_ledger(run)


def fill_while_down_until_done(system: TradingSystem, trigger: WorkflowStarted) -> int:
    """Each time the workflow's open orders stop changing: kill the exchange, fill them while
    it is down, start it again. Returns how many times, once the workflow has an outcome."""
    restarts, seen, stable_since = 0, frozenset[str](), time.monotonic()
    deadline = time.monotonic() + WORKFLOW_TIMEOUT_S
    while not _has_outcome(system, trigger):
        assert time.monotonic() < deadline, "the workflow did not finish"
        waiting = frozenset(o.broker_order_id for o in system.orders() if o.status in OPEN_STATUSES)
        if waiting != seen:
            seen, stable_since = waiting, time.monotonic()
        elif waiting and time.monotonic() - stable_since > 1.5:  # the phase placed its legs
            system.kill("exchange")
            for broker_order_id in waiting:  # as the exchange would; no stream is told
                system.book.fill_order(system.account, broker_order_id)
            start_exchange(system)
            restarts += 1
        time.sleep(0.2)
    return restarts


def _has_outcome(system: TradingSystem, trigger: WorkflowStarted) -> bool:
    try:
        system.wait_for_outcome(trigger, timeout_s=0.5)
    except WorkflowTimeoutError:
        return False
    return True

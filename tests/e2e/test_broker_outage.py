"""The Kafka broker stops mid-run and comes back: no work is lost, none is done twice, and the
system resumes within a bound.

The broker is tansu on S3 storage in a local moto server (``restartable_broker``), so a
SIGKILL keeps its topics, records and committed offsets, and it comes back on the same port.
Several workflows (consecutive sessions of one account) are triggered; as soon as the first
signal appears, the broker is killed mid-run — strategy, portfolio and execution are between
consuming, handling and committing — kept down for :data:`OUTAGE_S` (30 s in full mode, 10 s in
quick mode) and started again.

Proven:

* no lost work: every triggered workflow completes — exactly one ``workflow.completed.v1``
  event each and no ``workflow.failed.v1``, and exactly one ``execution.order.settled.v1``;
* no work done twice: the exchange holds exactly the orders the settled events report, one per
  ``client_order_id``, each with the reported broker order id and filled quantity, and the
  positions equal the settled fills (buys minus sells);
* resumption within :data:`RESUME_BOUND_S`: the first workflow to finish after the kill is seen
  finished at most 30 s after the broker is back (measured from the restart's return).

Should the services hang instead (a transactional producer blocked in
``send_offsets_to_transaction`` after a broker kill was seen on tansu before the clients kept
their learned brokers, ``metadata.recovery.strategy=none``), the test SIGABRTs them with
``PYTHONFAULTHANDLER=1`` set, so every service log ends with the stack of each of its threads,
and fails naming the logs.
"""

from __future__ import annotations

import csv
import os
import signal
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from alchemiser_common.events import (
    OrderSide,
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from alchemiser_common.topics import create_topics
from alchemiser_devtools.broker import RESTARTABLE_FETCH_WAIT_MAX_MS, RestartableBroker
from alchemiser_devtools.system import TradingSystem
from tests.e2e.conftest import DATASET, SystemFactory, scale

pytestmark = pytest.mark.integration

OUTAGE_S = float(scale(10, 30))
RESUME_BOUND_S = 30.0
WORKFLOWS = scale(3, 5)
FIRST_SESSION = date(2018, 5, 1)  # every session from here on trades 5 to 10 legs
WAIT_S = 240.0  # generous: other heavy jobs share this 2-core machine
POLL_S = 0.2


def sessions(count: int, start: date = FIRST_SESSION) -> list[date]:
    """The dataset's first ``count`` trading days from ``start`` (holidays are not sessions)."""
    with (DATASET / "SPY.csv").open() as bars:
        days = sorted({date.fromisoformat(row["date"]) for row in csv.DictReader(bars)})
    return [day for day in days if day >= start][:count]


def finished(system: TradingSystem) -> set[str]:
    """The workflows (correlation ids) with an outcome on the topics."""
    outcomes = system.events(WorkflowCompleted.TOPIC) + system.events(WorkflowFailed.TOPIC)
    return {str(event.correlation_id) for event in outcomes}


@pytest.mark.timeout(600)  # a loaded machine: the services' start alone can take 60 s
def test_broker_outage_when_broker_down_mid_run_then_no_lost_work_and_resumes_within_bound(
    restartable_broker: RestartableBroker, make_system: SystemFactory
) -> None:
    broker = restartable_broker
    create_topics(
        {"bootstrap.servers": broker.bootstrap_servers}, partitions=1, replication_factor=1
    )
    system = make_system(
        broker.bootstrap_servers,
        api_key="e2e-broker-outage",
        secret_key="broker-outage-secret",
        fetch_wait_max_ms=RESTARTABLE_FETCH_WAIT_MAX_MS,
        service_env={"PYTHONFAULTHANDLER": "1"},  # SIGABRT dumps every thread's stack
    )
    triggers = [system.trigger(day, rerun=False) for day in sessions(WORKFLOWS)]
    wanted = {str(trigger.correlation_id) for trigger in triggers}

    system.wait_until(
        lambda: bool(
            wanted & {str(e.correlation_id) for e in system.events(SignalGenerated.TOPIC)}
        ),
        "the first signal",
        timeout_s=WAIT_S,
    )
    killed_at = datetime.now(UTC)
    broker.kill()
    time.sleep(OUTAGE_S)
    broker.start()
    back = time.monotonic()

    seen_at: dict[str, float] = {}  # workflow -> when its outcome was first seen
    while set(seen_at) != wanted:
        if time.monotonic() - back > WAIT_S:
            pytest.fail(f"unfinished: {sorted(wanted - set(seen_at))}; {dump_stacks(system)}")
        now = time.monotonic()
        for workflow in finished(system) & wanted:
            seen_at.setdefault(workflow, now)
        time.sleep(POLL_S)

    completed = _by_workflow(system.events(WorkflowCompleted.TOPIC))
    failed = _by_workflow(system.events(WorkflowFailed.TOPIC))
    assert [w for w in wanted if w in failed] == []
    assert all(len(completed[w]) == 1 for w in wanted), {w: len(completed[w]) for w in wanted}
    after_kill = [w for w in wanted if completed[w][0].occurred_at >= killed_at]
    assert after_kill, "every workflow finished before the kill: the outage hit nothing"
    resumed_s = min(seen_at[w] for w in after_kill) - back
    assert resumed_s < RESUME_BOUND_S, f"first workflow finished {resumed_s:.1f} s after restart"
    assert_no_duplicate_orders(system, triggers)
    assert all(system.alive(name) for name in ("strategy", "portfolio", "execution"))


def dump_stacks(system: TradingSystem) -> str:
    """SIGABRT every live service: with ``PYTHONFAULTHANDLER=1`` each writes the Python stack
    of every thread to its log before it dies (where a hung service blocks, e.g. in
    ``send_offsets_to_transaction``). Says which logs to read."""
    dumped = []
    for name, service in system.services.items():
        if service.pid is not None:
            os.kill(service.pid, signal.SIGABRT)
            dumped.append(f"{name}: {service.log_path}")
    return "thread stacks (faulthandler) at the end of " + ", ".join(dumped)


def assert_no_duplicate_orders(system: TradingSystem, triggers: list[WorkflowStarted]) -> None:
    """One settled event per workflow; the exchange holds exactly the orders they report, once
    each; the positions are the settled fills."""
    settled = _by_workflow(system.events(TradeExecuted.TOPIC))
    assert {w: len(settled[w]) for w in settled} == {str(t.correlation_id): 1 for t in triggers}
    reported = {
        order.client_order_id: order
        for (executed,) in settled.values()
        for order in executed.orders
        if order.broker_order_id is not None
    }
    orders = system.orders()
    per_id = Counter(order.client_order_id for order in orders)
    assert [cid for cid, n in per_id.items() if n > 1] == []
    assert set(per_id) == set(reported)
    for order in orders:
        result = reported[order.client_order_id]
        assert (result.broker_order_id, result.filled_qty) == (
            order.broker_order_id,
            order.filled_qty,
        )
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for result in reported.values():
        expected[result.symbol] += result.filled_qty * (1 if result.side is OrderSide.BUY else -1)
    held = {p.symbol: p.qty for p in system.book.positions(system.account) if p.qty != 0}
    assert held == {symbol: qty for symbol, qty in expected.items() if qty != 0}


def _by_workflow(events: list) -> dict[str, list]:
    grouped: dict[str, list] = defaultdict(list)
    for event in events:
        grouped[str(event.correlation_id)].append(event)
    return grouped

"""The crash matrix, then whole-topic replays, then a secrets scan, on one trading system.

**Crash matrix**: SIGKILL every process of the system at seeded random points, restart it.

One account's workflows run one session after another (consecutive trading days, so most
workflows trade). While each runs, its share of the kills falls on a seeded random process
(strategy, portfolio, execution, the paper exchange, the schema registry) at a random delay
after the trigger, or right after the exchange accepted one of the workflow's orders; each
killed process is started again at once. ``make e2e-full`` runs 50 workflows and 100 kills;
``make test`` a few of each. ``ALCHEMISER_E2E_SEED`` replays another schedule.

Then, from the topics and the exchange's book only:

* no workflow is lost: every trigger has exactly one outcome (one distinct event id), and
  a failed one names its step and reason;
* no step ran twice: at most one distinct signal, plan and settlement per workflow;
* no duplicate order: the exchange holds exactly the orders the settlements report, each
  once, and the account's positions are exactly the net of the reported fills.

**Replay**: every service stopped, its consumer group moved back to the beginning of every
topic it consumes, started again, twice: no new order, no position change, and no new distinct
event on any output topic (a record written again carries the same event id).

**Secrets**: the account's Alpaca keys and the databases' password (given to every service)
appear in no log of any process and in no record (key, value, headers) of any topic, DLQ
records included, after all of the above and a garbage record on every input topic.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest
from confluent_kafka import Producer
from sqlalchemy.engine import make_url

from alchemiser_common.events import (
    OrderSide,
    RebalancePlanned,
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
)
from alchemiser_common.topics import ALL_TOPICS, DLQ_TOPICS, dlq_topic
from alchemiser_devtools.system import PROCESSES, SERVICES, TradingSystem
from alchemiser_marketdata import DatasetMarketData
from tests.e2e.conftest import DATASET, scale

pytestmark = [pytest.mark.integration, pytest.mark.timeout(scale(600, 3600))]

WORKFLOWS = scale(3, 50)
KILLS = scale(6, 100)
SEED = int(os.environ.get("ALCHEMISER_E2E_SEED", "20261202"))
FIRST_SESSION = date(2018, 3, 1)
#: How long a kill waits at most for the workflow's next order before it strikes anyway.
ORDER_WAIT_S = 20.0
#: The longest a random kill waits after the trigger (or the previous restart).
MAX_DELAY_S = 2.5
OUTCOME_TIMEOUT_S = 300.0
API_KEY = f"PKE2E{uuid.uuid4().hex[:12].upper()}"
SECRET_KEY = f"e2e-secret-{uuid.uuid4().hex}"
DB_PASSWORD = f"e2e-db-{uuid.uuid4().hex}"  # trust authentication here: sent, never checked
INPUTS = ("workflow.started.v1", "strategy.signal.generated.v1", "portfolio.rebalance.planned.v1")


@pytest.fixture(scope="module")
def system(
    private_broker: str, databases: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TradingSystem]:
    """One account's system, its databases reached with a password (the secrets scan's)."""
    with_password = {
        role: make_url(url).set(password=DB_PASSWORD).render_as_string(hide_password=False)
        for role, url in databases.items()
    }
    workdir = tmp_path_factory.mktemp("crash-matrix")
    trading = TradingSystem(
        private_broker,
        workdir,
        with_password,
        dataset_dir=DATASET,
        api_key=API_KEY,
        secret_key=SECRET_KEY,
    )
    with trading:
        yield trading


@dataclass
class Kill:
    """One planned kill: which process, and when (a delay, or after an accepted order)."""

    target: str
    after_order: bool
    delay_s: float


@dataclass
class Matrix:
    """What the run did: kills per process and kind, and each workflow's trigger."""

    kills: Counter[str] = field(default_factory=Counter)
    after_order: int = 0
    triggers: list = field(default_factory=list)


def plan_kills(rng: random.Random, workflows: int, kills: int) -> list[list[Kill]]:
    """``kills`` kills spread over ``workflows``, each process hit as often; most kills of
    execution and of the exchange (always their first) wait for an accepted order."""
    plan: list[list[Kill]] = [[] for _ in range(workflows)]
    targets = [PROCESSES[i % len(PROCESSES)] for i in range(kills)]  # each process, evenly
    rng.shuffle(targets)
    struck_after_order: set[str] = set()
    for index, target in enumerate(targets):
        # execution and the exchange: the first kill of each, and then most, after an order
        after_order = target in {"execution", "exchange"} and (
            target not in struck_after_order or rng.random() < 0.6
        )
        if after_order:
            struck_after_order.add(target)
        kill = Kill(target, after_order, round(rng.uniform(0.0, MAX_DELAY_S), 2))
        plan[index % workflows].append(kill)
    return plan


def strike(system: TradingSystem, kill: Kill, orders_before: int, matrix: Matrix) -> None:
    """Wait for the kill's moment, SIGKILL its process, start it again."""
    if kill.after_order:
        deadline = time.monotonic() + ORDER_WAIT_S
        while len(system.orders()) <= orders_before and time.monotonic() < deadline:
            time.sleep(0.005)
        if len(system.orders()) > orders_before:
            matrix.after_order += 1
    else:
        time.sleep(kill.delay_s)
    system.kill(kill.target)
    matrix.kills[kill.target] += 1
    system.start_process(kill.target)


def net_fills(executed: list[TradeExecuted]) -> dict[str, Decimal]:
    """Per symbol, the signed sum of the filled quantities the settlements report."""
    net: dict[str, Decimal] = defaultdict(Decimal)
    for event in executed:
        for order in event.orders:
            net[order.symbol] += (
                order.filled_qty if order.side is OrderSide.BUY else -order.filled_qty
            )
    return {symbol: qty for symbol, qty in net.items() if qty != 0}


def distinct_per_workflow(system: TradingSystem, topic: str) -> dict[str, dict]:
    """workflow -> {event id: event} of a topic (a record written twice counts once)."""
    found: dict[str, dict] = defaultdict(dict)
    for event in system.events(topic):
        found[str(event.correlation_id)][event.event_id] = event
    return found


def test_crash_matrix_when_every_process_is_killed_at_random_then_nothing_lost_or_doubled(
    system: TradingSystem,
) -> None:
    rng = random.Random(SEED)
    sessions = [d for d in DatasetMarketData(DATASET).trading_days() if d >= FIRST_SESSION]
    matrix = Matrix()
    for workflow, kills in zip(sessions, plan_kills(rng, WORKFLOWS, KILLS), strict=False):
        orders_before = len(system.orders())
        trigger = system.trigger(workflow, rerun=False)
        matrix.triggers.append(trigger)
        for kill in kills:
            strike(system, kill, orders_before, matrix)
        outcome = system.wait_for_outcome(trigger, OUTCOME_TIMEOUT_S)
        assert not outcome.timed_out, f"seed {SEED}: workflow of {workflow} lost ({matrix})"
    assert sum(matrix.kills.values()) >= KILLS
    assert set(matrix.kills) == set(PROCESSES), matrix.kills
    assert matrix.after_order > 0, "no kill landed right after an accepted order"

    outcomes: dict[str, dict] = defaultdict(dict)
    for topic in (WorkflowCompleted.TOPIC, WorkflowFailed.TOPIC):
        for workflow, events in distinct_per_workflow(system, topic).items():
            outcomes[workflow].update(events)
    steps = {
        kind: distinct_per_workflow(system, kind.TOPIC)
        for kind in (SignalGenerated, RebalancePlanned, TradeExecuted)
    }
    executed: list[TradeExecuted] = []
    completed = 0
    for trigger in matrix.triggers:
        workflow = str(trigger.correlation_id)
        (outcome,) = outcomes[workflow].values()  # exactly one outcome: none lost, none twice
        if isinstance(outcome, WorkflowFailed):
            assert outcome.reason and outcome.failure_step, outcome
        else:
            completed += 1
        for kind, found in steps.items():
            assert len(found.get(workflow, {})) <= 1, f"{kind.__name__} twice for {workflow}"
        executed.extend(steps[TradeExecuted].get(workflow, {}).values())
    # every order the exchange holds is one a settlement reported, once; and only those
    reported = sorted(o.client_order_id for e in executed for o in e.orders if o.client_order_id)
    held = sorted(order.client_order_id for order in system.orders())
    assert held == reported, f"seed {SEED}"
    positions = {p.symbol: p.qty for p in system.book.positions(system.account)}
    assert positions == net_fills(executed), f"seed {SEED}"
    assert sum(e.orders_placed for e in executed) > 0
    # a crash is retried, not turned into a failure: most workflows complete
    assert completed >= len(matrix.triggers) * 3 // 4, f"seed {SEED}: {completed} completed"
    print(  # the figures docs/reliability.md quotes (make e2e-full shows them: -rP)
        f"crash matrix, seed {SEED}: {len(matrix.triggers)} workflows, {completed} completed, "
        f"{len(matrix.triggers) - completed} failed with a reason; "
        f"{sum(matrix.kills.values())} kills {dict(sorted(matrix.kills.items()))}, "
        f"{matrix.after_order} right after an accepted order; "
        f"{len(held)} orders, each once"
    )


@dataclass(frozen=True)
class Snapshot:
    """The exchange's orders and positions, and the distinct event ids on every event topic,
    leaving out the workflows in ``probes``."""

    orders: list[str]
    positions: dict[str, Decimal]
    events: dict[str, set[bytes | None]]


def snapshot(system: TradingSystem, probes: list[TradeExecuted]) -> Snapshot:
    """What the system holds, less the probe workflows' own orders, fills and events."""
    probe_orders = {o.client_order_id for e in probes for o in e.orders if o.client_order_id}
    probe_ids = {str(e.correlation_id).encode() for e in probes}
    positions = {p.symbol: p.qty for p in system.book.positions(system.account)}
    for symbol, qty in net_fills(probes).items():
        positions[symbol] = positions.get(symbol, Decimal(0)) - qty
    return Snapshot(
        orders=sorted(
            o.client_order_id for o in system.orders() if o.client_order_id not in probe_orders
        ),
        positions={symbol: qty for symbol, qty in positions.items() if qty != 0},
        events={
            topic: {
                record.headers.get("event_id")
                for record in system.records(topic)
                if record.headers.get("correlation_id") not in probe_ids
            }
            for topic in ALL_TOPICS
            if topic not in DLQ_TOPICS
        },
    )


def probe(system: TradingSystem) -> TradeExecuted:
    """A new workflow after everything else; its settlement. Each service reaches its input
    only after every record before it on the same partition: its outcome proves the services
    have consumed the whole replay."""
    trigger = system.trigger(date(2018, 6, 15), rerun=True, requested_by="e2e-replay-probe")
    outcome = system.wait_for_outcome(trigger, OUTCOME_TIMEOUT_S)
    assert outcome.succeeded, outcome.event
    (executed,) = {
        e.event_id: e
        for e in system.events(TradeExecuted.TOPIC)
        if e.correlation_id == trigger.correlation_id
    }.values()
    return executed


def test_replay_when_every_topic_is_replayed_twice_then_no_second_effect(
    system: TradingSystem,
) -> None:
    trigger = system.trigger(date(2018, 6, 15), rerun=False)  # at least one workflow to replay
    assert system.wait_for_outcome(trigger, OUTCOME_TIMEOUT_S).succeeded
    before = snapshot(system, [])
    assert before.orders, "nothing was traded: the replay would prove nothing"
    probes: list[TradeExecuted] = []
    for _ in range(2):
        for name in SERVICES:
            system.services[name].stop()
        for name in SERVICES:
            consumed = system.replay(name)
            assert consumed, f"{name} had committed nothing"
            assert system.committed(name) == dict.fromkeys(consumed, 0)
        for name in SERVICES:
            system.start_process(name)
        probes.append(probe(system))
        assert snapshot(system, probes) == before


def test_secrets_when_the_whole_run_is_scanned_then_no_key_or_password_appears(
    system: TradingSystem,
) -> None:
    producer = Producer({"bootstrap.servers": system.bootstrap})
    for topic in INPUTS:  # dead letters, so the scan covers DLQ records too
        producer.produce(topic, value=b"\x00garbage", key=system.account.encode())
    assert producer.flush(10) == 0
    system.wait_until(
        lambda: all(system.records(dlq_topic(topic)) for topic in INPUTS), "the dead letters"
    )
    secrets = {"API key": API_KEY, "secret key": SECRET_KEY, "database password": DB_PASSWORD}
    leaks = []
    scanned_logs = 0
    for name, path in system.logs():
        text = path.read_bytes()
        scanned_logs += bool(text)
        leaks += [f"{what} in the {name} log" for what, s in secrets.items() if s.encode() in text]
    scanned_records = 0
    for topic in ALL_TOPICS:
        for record in system.records(topic):
            scanned_records += 1
            blob = b"".join([record.key or b"", record.value or b"", *record.headers.values()])
            leaks += [f"{what} on {topic}" for what, s in secrets.items() if s.encode() in blob]
    assert scanned_logs >= len(SERVICES) and scanned_records > 0
    assert not leaks, leaks

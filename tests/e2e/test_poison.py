"""Poison records on every input topic of the running services: dead-lettered with a reason, and
the services go on.

One system (registry, paper exchange, strategy, portfolio, execution as processes) takes, on each
topic a service consumes (``workflow.started.v1``: strategy and execution;
``strategy.signal.generated.v1``, ``workflow.completed.v1``: portfolio; ``workflow.failed.v1``:
portfolio and execution; ``portfolio.rebalance.planned.v1``: execution), records that must not
have an effect:

* bytes that are no event: too short, text (a bad magic byte), a registered schema id followed by
  garbage or a truncated body, a bad magic byte on a valid body, an unknown schema id (magic byte
  0 and an id the registry does not have), another topic's event;
* valid events under a bad key (empty, null, another account's);
* schema-valid Avro, written with fastavro under the subject's registered id past the models'
  validation, whose values break the contract: an empty account id, an empty ``requested_by``,
  negative or malformed weights and symbols, weights summing to 1.5, a tampered plan hash, a
  plan of a workflow never started, a symbol the exchange does not list.

Proven, per record: every consumer of its topic dead-letters it exactly once, on the topic's
``.dlq`` twin, byte for byte with its key, naming the topic, offset and consumer, with the reason
the case calls for (``dlq.reason``). The one exception is deliberate: a signal for a symbol
nobody lists is a business failure, not a malformed input, so portfolio fails the workflow
(``WorkflowFailed`` at step ``portfolio``, the symbol in ``failed_symbols``) instead. Afterwards
every process still runs, nothing but the poison reached a dead-letter topic, the poison placed
no order, and a workflow triggered after it completes with exactly the orders it reports.

Last in the module: a valid plan of a workflow that already failed places no order and gives the
workflow no second outcome (execution consumes ``workflow.failed.v1`` too).
"""

from __future__ import annotations

import io
import struct
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from alchemiser_common.errors import DeadLetterReason
from alchemiser_common.events import (
    Event,
    EventSource,
    FailureStep,
    PlanAction,
    PlanItem,
    RebalancePlan,
    RebalancePlanned,
    SignalGenerated,
    TargetWeight,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowSummary,
    plan_hash,
    to_avro_dict,
)
from alchemiser_common.schemas import SchemaCatalog
from alchemiser_common.serde import subject_for
from alchemiser_common.topics import DLQ_TOPICS, dlq_topic
from alchemiser_common.workflow import WorkflowOutcome, build_trigger
from alchemiser_devtools.harness import read_topics
from alchemiser_devtools.system import PROCESSES, SERVICES, Record, TradingSystem
from tests.e2e.conftest import running_system, scale

pytestmark = pytest.mark.integration

#: The services consuming each input topic (their declarations, as deployed).
CONSUMERS: dict[str, tuple[str, ...]] = {
    WorkflowStarted.TOPIC: ("strategy", "execution"),
    SignalGenerated.TOPIC: ("portfolio",),
    RebalancePlanned.TOPIC: ("execution",),
    WorkflowCompleted.TOPIC: ("portfolio",),
    WorkflowFailed.TOPIC: ("portfolio", "execution"),
}
#: Trading sessions of the demo dataset, one good workflow per round of poison.
SESSIONS = (date(2018, 6, 13), date(2018, 6, 14), date(2018, 6, 15))
#: A Saturday: not a session, so strategy fails a workflow started for it (a known workflow
#: without a plan of its own, for the plans that must get as far as execution's broker checks).
NO_SESSION = date(2018, 6, 16)
#: A well-formed ticker the paper exchange does not list.
UNLISTED = "ZZZZ"
#: A schema id no registry of this test hands out (ids count up from 1).
UNKNOWN_SCHEMA_ID = 424_242
WAIT_S = 120.0
SOURCE = EventSource(service="e2e-poison", version="0")

R = DeadLetterReason


@dataclass(frozen=True)
class Case:
    """One poison record: what it is, where it goes and how it must end."""

    topic: str
    name: str
    reason: DeadLetterReason | None
    """The ``dlq.reason`` every consumer must give it; ``None``: not dead-lettered."""

    @property
    def id(self) -> str:
        return f"{self.topic}:{self.name}"


#: Cases on every input topic.
COMMON: tuple[tuple[str, DeadLetterReason], ...] = (
    ("too_short", R.UNDECODABLE),
    ("text", R.BAD_MAGIC_BYTE),
    ("garbage_body", R.UNDECODABLE),
    ("truncated_body", R.UNDECODABLE),
    ("bad_magic_byte", R.BAD_MAGIC_BYTE),
    ("unknown_schema_id", R.UNKNOWN_SCHEMA),
    ("other_topics_event", R.UNDECODABLE),
    ("empty_key", R.BAD_KEY),
    ("null_key", R.BAD_KEY),
    ("other_accounts_key", R.BAD_KEY),
    ("empty_account_id", R.INVALID_EVENT),
)
CASES: tuple[Case, ...] = (
    *(Case(topic, name, reason) for topic in CONSUMERS for name, reason in COMMON),
    Case(WorkflowStarted.TOPIC, "empty_requested_by", R.INVALID_EVENT),
    Case(SignalGenerated.TOPIC, "negative_weight", R.INVALID_EVENT),
    Case(SignalGenerated.TOPIC, "lower_case_symbol", R.INVALID_EVENT),
    Case(SignalGenerated.TOPIC, "weights_sum_1_5", R.HANDLER_REJECTED),
    Case(SignalGenerated.TOPIC, "unlisted_symbol", None),
    Case(RebalancePlanned.TOPIC, "negative_target_weight", R.INVALID_EVENT),
    Case(RebalancePlanned.TOPIC, "target_weights_sum_1_5", R.INVALID_PLAN),
    Case(RebalancePlanned.TOPIC, "target_weight_1_5", R.INVALID_PLAN),
    Case(RebalancePlanned.TOPIC, "tampered_plan_hash", R.HANDLER_REJECTED),
    Case(RebalancePlanned.TOPIC, "unlisted_symbol", R.INVALID_PLAN),
    Case(RebalancePlanned.TOPIC, "never_started_workflow", R.UNKNOWN_WORKFLOW),
    Case(WorkflowCompleted.TOPIC, "more_succeeded_than_placed", R.INVALID_EVENT),
    Case(WorkflowFailed.TOPIC, "empty_reason", R.INVALID_EVENT),
)
#: Plan cases that are decoded and judged by execution: each gets a started workflow of its own,
#: so nothing but the plan rule under test can stop it.
KNOWN_WORKFLOW_PLANS = (
    "target_weights_sum_1_5",
    "target_weight_1_5",
    "tampered_plan_hash",
    "unlisted_symbol",
)


# -- building the records ------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _envelope(system: TradingSystem, correlation_id: uuid.UUID | None = None) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "correlation_id": correlation_id or uuid.uuid4(),
        "causation_id": uuid.uuid4(),
        "occurred_at": _now(),
        "source": SOURCE,
        "account_id": system.account,
    }


def trigger(system: TradingSystem) -> WorkflowStarted:
    """A valid trigger of a new workflow (never published with the account's key here)."""
    return build_trigger(system.account, requested_by="e2e-poison", as_of=SESSIONS[0], rerun=True)


def signal(system: TradingSystem, weights: dict[str, str]) -> SignalGenerated:
    """A signal of a new workflow for the account, targeting ``weights`` (symbol -> weight)."""
    return SignalGenerated(
        **_envelope(system),
        signal_hash="0" * 64,
        market_snapshot_id="e2e-poison",
        as_of=SESSIONS[0],
        signals=[],
        strategy_allocations=[],
        consolidated_portfolio=[
            TargetWeight(symbol=symbol, weight=Decimal(weight))
            for symbol, weight in weights.items()
        ],
    )


def buy(symbol: str, weight: str, amount: str = "1000") -> PlanItem:
    """A plan item buying ``amount`` dollars of ``symbol`` up to ``weight``."""
    return PlanItem(
        symbol=symbol,
        action=PlanAction.BUY,
        current_weight=Decimal(0),
        target_weight=Decimal(weight),
        weight_diff=Decimal(weight),
        current_value=Decimal(0),
        target_value=Decimal(amount),
        trade_amount=Decimal(amount),
        priority=1,
    )


def plan(
    system: TradingSystem,
    items: list[PlanItem],
    *,
    correlation_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> RebalancePlanned:
    """A plan for the account with a correct ``plan_hash`` (so only its content is at fault)."""
    envelope = _envelope(system, correlation_id)
    if occurred_at is not None:
        envelope["occurred_at"] = occurred_at
    correlation = envelope["correlation_id"]
    assert isinstance(correlation, uuid.UUID)
    total = sum((item.trade_amount for item in items), Decimal(0))
    payload = RebalancePlan(
        plan_id=f"plan-{correlation}",
        items=items,
        total_portfolio_value=Decimal(100_000),
        total_trade_value=total,
        cash_reserve_pct=Decimal("0.01"),
    )
    return RebalancePlanned(
        **envelope,
        plan_hash=plan_hash(payload, correlation),
        account_snapshot_id="e2e-poison",
        plan=payload,
        allocation_comparison=[],
    )


def completed(system: TradingSystem) -> WorkflowCompleted:
    """A valid outcome of a workflow nobody ran (harmless: portfolio notes it finished)."""
    summary = WorkflowSummary(
        orders_placed=0,
        orders_succeeded=0,
        total_trade_value=Decimal(0),
        symbols_bought=[],
        symbols_sold=[],
    )
    return WorkflowCompleted(**_envelope(system), duration_ms=1, summary=summary)


def failed(system: TradingSystem) -> WorkflowFailed:
    """A valid failure of a workflow nobody ran."""
    return WorkflowFailed(
        **_envelope(system), failure_step=FailureStep.EXECUTION, reason="e2e_poison"
    )


def valid_event(system: TradingSystem, topic: str) -> Event:
    """A valid event of ``topic`` for the system's account."""
    makers: dict[str, Callable[[], Event]] = {
        WorkflowStarted.TOPIC: lambda: trigger(system),
        SignalGenerated.TOPIC: lambda: signal(system, {"QQQ": "0.5", "SPY": "0.5"}),
        RebalancePlanned.TOPIC: lambda: plan(system, [buy("SPY", "0.5")]),
        WorkflowCompleted.TOPIC: lambda: completed(system),
        WorkflowFailed.TOPIC: lambda: failed(system),
    }
    return makers[topic]()


def bypassing_validation(
    system: TradingSystem, event: Event, edit: Callable[[dict[str, Any]], None]
) -> bytes:
    """``event`` as the wire carries it, edited after the model: the registered schema id and an
    Avro body written by fastavro from the subject's schema (schema-valid, model-invalid)."""
    framing = system.serde.serialize(event)[:5]
    record = to_avro_dict(event)
    edit(record)
    schema = fastavro.parse_schema(SchemaCatalog.discover().load(subject_for(event.TOPIC)))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    return framing + body.getvalue()


def _set(**values: object) -> Callable[[dict[str, Any]], None]:
    return lambda record: record.update(values)


def _plan_item(**values: object) -> Callable[[dict[str, Any]], None]:
    def edit(record: dict[str, Any]) -> None:
        record["plan"]["items"][0].update(values)

    return edit


@dataclass
class Poison:
    """A built poison record, and where the broker put it."""

    case: Case
    key: bytes | None
    value: bytes
    correlation_id: uuid.UUID | None = None
    offset: int = -1


def _specific(
    system: TradingSystem, event: Event, known: Iterator[uuid.UUID]
) -> dict[tuple[str, str], Callable[[], Event | bytes]]:
    """Builders of the topic-specific cases: an event (valid for the model, served by the serde)
    or the bytes of one that is only valid for the schema (``event`` edited)."""

    def bypass(edit: Callable[[dict[str, Any]], None]) -> bytes:
        return bypassing_validation(system, event, edit)

    def known_plan(*items: PlanItem) -> RebalancePlanned:
        return plan(system, list(items), correlation_id=next(known))

    summary = {
        "orders_placed": 1,
        "orders_succeeded": 2,
        "total_trade_value": Decimal(0),
        "symbols_bought": [],
        "symbols_sold": [],
    }
    negative = [
        {"symbol": "QQQ", "weight": Decimal("1.5")},
        {"symbol": "SPY", "weight": Decimal("-0.5")},
    ]
    return {
        (WorkflowStarted.TOPIC, "empty_requested_by"): lambda: bypass(_set(requested_by="")),
        (SignalGenerated.TOPIC, "negative_weight"): lambda: bypass(
            _set(consolidated_portfolio=negative)
        ),
        (SignalGenerated.TOPIC, "lower_case_symbol"): lambda: bypass(
            _set(consolidated_portfolio=[{"symbol": "spy", "weight": Decimal(1)}])
        ),
        (SignalGenerated.TOPIC, "weights_sum_1_5"): lambda: signal(
            system, {"QQQ": "0.75", "SPY": "0.75"}
        ),
        (SignalGenerated.TOPIC, "unlisted_symbol"): lambda: signal(system, {UNLISTED: "1"}),
        (RebalancePlanned.TOPIC, "negative_target_weight"): lambda: bypass(
            _plan_item(target_weight=Decimal("-0.5"))
        ),
        (RebalancePlanned.TOPIC, "target_weights_sum_1_5"): lambda: known_plan(
            buy("QQQ", "0.75"), buy("SPY", "0.75")
        ),
        (RebalancePlanned.TOPIC, "target_weight_1_5"): lambda: known_plan(buy("SPY", "1.5")),
        (RebalancePlanned.TOPIC, "tampered_plan_hash"): lambda: known_plan(
            buy("SPY", "0.5")
        ).model_copy(update={"plan_hash": "f" * 64}),
        (RebalancePlanned.TOPIC, "unlisted_symbol"): lambda: known_plan(buy(UNLISTED, "0.5")),
        # older than execution's wait for a trigger: rejected on its second look
        (RebalancePlanned.TOPIC, "never_started_workflow"): lambda: plan(
            system, [buy("SPY", "0.5")], occurred_at=_now() - timedelta(hours=1)
        ),
        (WorkflowCompleted.TOPIC, "more_succeeded_than_placed"): lambda: bypass(
            _set(summary=summary)
        ),
        (WorkflowFailed.TOPIC, "empty_reason"): lambda: bypass(_set(reason="")),
    }


def build(system: TradingSystem, case: Case, known: Iterator[uuid.UUID]) -> Poison:
    """The record of ``case`` (``known``: ids of started workflows without a plan)."""
    account = system.account.encode()
    event = valid_event(system, case.topic)
    valid = system.serde.serialize(event)
    other = valid_event(
        system,
        SignalGenerated.TOPIC if case.topic == WorkflowStarted.TOPIC else WorkflowStarted.TOPIC,
    )
    common: dict[str, tuple[bytes | None, bytes]] = {
        "too_short": (account, b"\x00\x01"),
        "text": (account, b"this is not an event, it is a sentence"),
        "garbage_body": (account, valid[:5] + b"\xff\xff\xff\xff not an avro body"),
        "truncated_body": (account, valid[: len(valid) // 2]),
        "bad_magic_byte": (account, b"\x07" + valid[1:]),
        "unknown_schema_id": (account, b"\x00" + struct.pack(">I", UNKNOWN_SCHEMA_ID) + valid[5:]),
        "other_topics_event": (account, system.serde.serialize(other)),
        "empty_key": (b"", valid),
        "null_key": (None, valid),
        "other_accounts_key": (b"SOMEONE-ELSE", valid),
        "empty_account_id": (b"", bypassing_validation(system, event, _set(account_id=""))),
    }
    if case.name in common:
        key, value = common[case.name]
        return Poison(case, key, value, event.correlation_id)
    made = _specific(system, event, known)[(case.topic, case.name)]()
    if isinstance(made, bytes):
        return Poison(case, account, made, event.correlation_id)
    return Poison(case, account, system.serde.serialize(made), made.correlation_id)


def produce(system: TradingSystem, records: list[Poison]) -> None:
    """Produce ``records`` in order and note each one's offset."""
    producer = Producer({"bootstrap.servers": system.bootstrap, "enable.idempotence": True})
    errors: list[str] = []
    for record in records:

        def delivered(error: object, message: object, record: Poison = record) -> None:
            if error is not None:
                errors.append(str(error))
            else:
                record.offset = message.offset()  # type: ignore[attr-defined]

        producer.produce(
            record.case.topic, value=record.value, key=record.key, on_delivery=delivered
        )
    assert producer.flush(30) == 0
    assert not errors, errors
    assert all(record.offset >= 0 for record in records)


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Run:
    """What the module's system went through, read back from its topics and the exchange."""

    system: TradingSystem
    poison: list[Poison] = field(default_factory=list)
    good: list[tuple[Event, WorkflowOutcome]] = field(default_factory=list)
    orders_after_poison: list[set[str]] = field(default_factory=list)
    dead: dict[str, list[Record]] = field(default_factory=dict)

    def dead_letters_of(self, poison: Poison) -> list[Record]:
        """The dead letters of one poison record (any consumer)."""
        return [
            record
            for record in self.dead[dlq_topic(poison.case.topic)]
            if record.headers.get("dlq.original_offset") == str(poison.offset).encode()
        ]


def _read_dead(system: TradingSystem) -> dict[str, list[Record]]:
    """Every record of every dead-letter topic, read by one consumer (undecoded)."""
    dead: dict[str, list[Record]] = {topic: [] for topic in DLQ_TOPICS}
    for r in read_topics(system.bootstrap, list(DLQ_TOPICS)):
        headers = {name: value for name, value in r.headers() or [] if value is not None}
        dead[r.topic()].append(Record(r.topic(), r.offset(), r.key(), r.value(), headers, None))
    return dead


def _pending(system: TradingSystem, poison: list[Poison]) -> list[str]:
    """The poison records not at their end yet: their dead letters, or their failed workflow."""
    dead = _read_dead(system)
    seen = Counter(
        (topic, record.headers.get("dlq.original_offset", b"").decode())
        for topic, records in dead.items()
        for record in records
    )
    failed_ids = {event.correlation_id for event in system.events(WorkflowFailed.TOPIC)}
    return [
        f"{record.case.id}@{record.offset}"
        for record in poison
        if (
            record.correlation_id not in failed_ids
            if record.case.reason is None
            else seen[(dlq_topic(record.case.topic), str(record.offset))]
            < len(CONSUMERS[record.case.topic])
        )
    ]


def _wait_settled(system: TradingSystem, poison: list[Poison]) -> None:
    """Wait until every poison record reached its end; fail naming the ones that did not."""
    deadline = time.monotonic() + WAIT_S
    while pending := _pending(system, poison):
        if time.monotonic() > deadline:
            raise AssertionError(f"after {WAIT_S:.0f} s, poison without its end: {pending}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def system(
    private_broker: str, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TradingSystem]:
    """One trading system for the module (its own databases), stopped after it."""
    workdir: Path = tmp_path_factory.mktemp("poison")
    with running_system(
        private_broker,
        postgres_server_url,
        workdir,
        api_key="e2e-poison-key",
        secret_key="e2e-poison-secret",
    ) as trading:
        yield trading


@pytest.fixture(scope="module")
def run(system: TradingSystem) -> Run:
    """Rounds of poison on every input topic, each followed by a good workflow."""
    result = Run(system)
    for round_ in range(scale(1, len(SESSIONS))):
        # started workflows without a plan of their own (strategy fails them: no session)
        starts = [
            system.trigger(NO_SESSION, rerun=True, requested_by="e2e-poison-known")
            for _ in KNOWN_WORKFLOW_PLANS
        ]
        for start in starts:
            failure = system.wait_for_outcome(start, WAIT_S).event
            assert isinstance(failure, WorkflowFailed), failure
            assert failure.failure_step is FailureStep.STRATEGY, failure
        known = iter(start.correlation_id for start in starts)
        orders_before = {order.client_order_id for order in system.orders()}
        batch = [build(system, case, known) for case in CASES]
        produce(system, batch)
        result.poison.extend(batch)
        _wait_settled(system, result.poison)
        result.orders_after_poison.append(
            {order.client_order_id for order in system.orders()} - orders_before
        )
        good = system.trigger(SESSIONS[round_])
        result.good.append((good, system.wait_for_outcome(good, WAIT_S)))
    result.dead = _read_dead(system)
    return result


# -- the assertions ------------------------------------------------------------------------------


def test_registry_when_asked_for_the_unknown_schema_id_then_404(system: TradingSystem) -> None:
    answer = httpx.get(f"{system.registry.url}/schemas/ids/{UNKNOWN_SCHEMA_ID}", timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error_code"] == 40403


@pytest.mark.parametrize(
    "case", [case for case in CASES if case.reason is not None], ids=lambda case: case.id
)
def test_poison_when_consumed_then_each_consumer_dead_letters_it_once_with_its_reason(
    run: Run, case: Case
) -> None:
    records = [poison for poison in run.poison if poison.case == case]
    assert records
    consumers = sorted(run.system.service_name(name) for name in CONSUMERS[case.topic])
    for poison in records:
        dead = run.dead_letters_of(poison)
        assert sorted(d.headers["dlq.consumer"].decode() for d in dead) == consumers
        for letter in dead:
            headers = {name: value.decode() for name, value in letter.headers.items()}
            assert headers["dlq.reason"] == case.reason, headers.get("dlq.error_message")
            assert headers["dlq.original_topic"] == case.topic
            assert headers["dlq.original_partition"] == "0"
            assert headers["dlq.error_class"]
            assert headers["dlq.error_message"]
            assert letter.value == poison.value  # the original bytes, unchanged
            assert (letter.key or b"") == (poison.key or b"")


def test_signal_when_symbol_unlisted_then_workflow_failed_at_portfolio_not_dead_lettered(
    run: Run,
) -> None:
    unlisted = [p for p in run.poison if p.case.reason is None]
    assert unlisted
    failures = {event.correlation_id: event for event in run.system.events(WorkflowFailed.TOPIC)}
    for poison in unlisted:
        assert not run.dead_letters_of(poison)
        failure = failures[poison.correlation_id]
        assert failure.failure_step is FailureStep.PORTFOLIO
        assert UNLISTED in failure.reason
        assert failure.failed_symbols == [UNLISTED]
    planned = {event.correlation_id for event in run.system.events(RebalancePlanned.TOPIC)}
    assert not planned & {poison.correlation_id for poison in unlisted}


def test_poison_when_handled_then_only_poison_dead_lettered_and_no_order_placed(run: Run) -> None:
    expected = Counter(
        dlq_topic(poison.case.topic)
        for poison in run.poison
        if poison.case.reason is not None
        for _ in CONSUMERS[poison.case.topic]
    )
    assert {topic: len(records) for topic, records in run.dead.items()} == {
        topic: expected.get(topic, 0) for topic in DLQ_TOPICS
    }
    assert run.orders_after_poison == [set()] * len(run.good)
    poisoned = {poison.correlation_id for poison in run.poison}
    for topic in (TradeExecuted.TOPIC, WorkflowCompleted.TOPIC):
        ran = {  # what the services emitted (the topic also holds the poison itself)
            event.correlation_id
            for event in run.system.events(topic)
            if event.source.service != SOURCE.service
        }
        assert not ran & poisoned, topic


def test_poison_when_handled_then_services_alive_and_next_workflow_completes(run: Run) -> None:
    for name in PROCESSES:
        assert run.system.alive(name), name
    for name in SERVICES:
        assert run.system.services[name].starts == 1, f"{name} was restarted"
    executed = {event.correlation_id: event for event in run.system.events(TradeExecuted.TOPIC)}
    client_ids: set[str] = set()
    for good, outcome in run.good:
        assert outcome.succeeded, outcome.event
        report = executed[good.correlation_id]
        assert report.success
        assert report.orders_placed > 0
        client_ids |= {order.client_order_id for order in report.orders}
    assert {order.client_order_id for order in run.system.orders()} == client_ids


def _committed(system: TradingSystem, service: str, topic: str) -> int:
    """The offset ``service``'s group committed on partition 0 of ``topic``."""
    consumer = Consumer(
        {"bootstrap.servers": system.bootstrap, "group.id": system.service_name(service)}
    )
    try:
        (position,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return int(position.offset)
    finally:
        consumer.close()


def test_plan_when_its_workflow_already_failed_then_not_executed(run: Run) -> None:
    """A valid plan of a workflow strategy already failed: execution refuses it (dead-lettered
    as ``workflow_ended``) with no order and no second outcome. Last in the module: its dead
    letter is not one of the poison the tests above count."""
    system = run.system
    start = system.trigger(NO_SESSION, rerun=True, requested_by="e2e-poison-ended")
    ended = system.wait_for_outcome(start, WAIT_S).event
    assert isinstance(ended, WorkflowFailed)
    assert ended.failure_step is FailureStep.STRATEGY
    orders_before = {order.client_order_id for order in system.orders()}
    late = plan(system, [buy("SPY", "0.05", "500")], correlation_id=start.correlation_id)
    record = Poison(
        Case(RebalancePlanned.TOPIC, "plan_of_ended_workflow", None),
        system.account.encode(),
        system.serde.serialize(late),
        late.correlation_id,
    )
    produce(system, [record])
    system.wait_until(
        lambda: _committed(system, "execution", RebalancePlanned.TOPIC) > record.offset,
        "execution past the plan",
        WAIT_S,
    )
    assert {order.client_order_id for order in system.orders()} == orders_before
    outcomes = [
        event
        for topic in (WorkflowCompleted.TOPIC, WorkflowFailed.TOPIC)
        for event in system.events(topic)
        if event.correlation_id == start.correlation_id
    ]
    assert outcomes == [ended]

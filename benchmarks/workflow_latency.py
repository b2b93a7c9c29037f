"""Workflow latency on the embedded stack, beside the same broker's bare round trip.

**What runs.** :class:`alchemiser_devtools.stack.Stack` in a temporary run directory: the
embedded broker (tansu, in memory), the schema registry, the paper exchange (SQLite, the
bundled dataset) and strategy, portfolio and execution as separate processes with their own
SQLite databases and the settings ``make run`` uses (``fetch.wait.max.ms`` 10, a poll timeout
of 100 ms). The stack is stopped in a ``finally``; every wait below is bounded.

**How.** In this order, on the dataset's last session:

1. ``BENCH_WORKFLOW_WARMUP`` (default 3) workflows, not counted. The first one buys the target
   portfolio; after it the account holds the target, so the measured workflows plan nothing
   to trade (``TradeExecuted`` without orders, counted in ``workflows_with_orders``): this is
   the pipeline's latency, not order fills. (Rotating sessions would trade every time but soon
   reach execution's circuit breaker on the value traded per account and day.)
2. :func:`benchmarks.roundtrip.bare_roundtrips_ms` on the same broker, the stack idle.
3. ``BENCH_WORKFLOWS`` (default 200) workflows, one after another: the account's workflows are
   serialised by design (portfolio holds a plan until the previous workflow's outcome), so
   each is ``build_trigger(account, requested_by=..., as_of=session, rerun=True)`` +
   ``publish``, then a wait for its outcome on one long-lived reader of
   ``workflow.completed.v1``/``workflow.failed.v1`` and the dead-letter topics (a dead letter,
   a dead process or :data:`WORKFLOW_TIMEOUT_S` fails the benchmark; publishing stops after
   :data:`RUN_LIMIT_S`, the figures then cover the workflows that ran).
4. The workflow topics read once, from their beginning: each event's record timestamp
   (``CreateTime``: when its service produced it, inside its transaction, before the commit)
   and its ``occurred_at``.

**The clock points.** A workflow starts when ``publish()`` returns, within about a millisecond
of the broker acknowledging the trigger. Not at the trigger's record timestamp: ``publish()``
makes a fresh idempotent producer each call, and librdkafka holds its first record until the
producer has an id, which it retries on a 500 ms timer when no connection is up yet, so
0.5-1 s pass in the trigger client before the trigger exists on the broker. That time is
reported beside (``trigger_publish_ms``, and ``latency_from_trigger_created_ms`` from the
trigger's record timestamp), not in the target. The hops, which add up to the latency:

* ``trigger->signal``    SignalGenerated's timestamp - start
* ``signal->plan``       RebalancePlanned's - SignalGenerated's
* ``plan->settled``      TradeExecuted's - RebalancePlanned's
* ``settled->completed`` WorkflowCompleted's - TradeExecuted's (same transaction)

Each hop holds the upstream commit, the downstream fetch and its handling up to the produce.
``hop_split_ms`` cuts each at the output's ``occurred_at``, which the handler stamps (strategy
and portfolio when they start handling, execution after the orders): ``until_occurred_at`` is
the pickup (commit, fetch, decode, inbox; for execution also the orders), ``after_occurred_at``
the handling left until the produce (``settled->completed`` is not split: both events come
from one handler call, with one ``occurred_at``). All processes share the machine's clock.

The benchmark's own reader fetches with ``fetch.wait.max.ms`` 100, not 10: against tansu an
idle 10 ms fetcher costs the broker about 45 ms of CPU per second, which would load the
machine the services run on; the outcome is only used to send the next trigger.

Also reported: the CPU each process uses per second with the stack idle (after the round
trips; the services' idle fetching) and during the measured workflows (ms per workflow),
from ``/proc``; and how often portfolio held a signal for the previous workflow (its log).

Targets: p50 <= 60 ms and p99 <= 150 ms over 200 workflows.
"""

from __future__ import annotations

import logging
import os
import resource
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from alchemiser_common.events import Event, TradeExecuted, WorkflowCompleted, WorkflowFailed
from alchemiser_common.serde import EventSerde
from alchemiser_common.topics import DLQ_TOPICS, EVENT_TOPICS
from alchemiser_common.workflow import build_trigger, publish
from alchemiser_devtools.stack import Stack
from benchmarks.roundtrip import bare_roundtrips_ms
from benchmarks.stats import spread

__all__ = ["TARGET_P50_MS", "TARGET_P99_MS", "TARGET_WORKFLOWS", "WORKFLOWS", "main"]

WORKFLOWS = int(os.environ.get("BENCH_WORKFLOWS", "200"))
WARMUP = int(os.environ.get("BENCH_WORKFLOW_WARMUP", "3"))
TARGET_P50_MS = 60.0
TARGET_P99_MS = 150.0
TARGET_WORKFLOWS = 200
"""The latency targets hold over this many workflows; a smaller run is a smoke run."""
WORKFLOW_TIMEOUT_S = 60.0
"""One workflow takes well under a second; a minute means a stuck service."""
RUN_LIMIT_S = 900.0
"""No new workflow is published after this long (a loaded machine still ends the run)."""
READ_LIMIT_S = 60.0
"""How long the final read of the workflow topics may take."""
IDLE_S = 3.0
"""How long the idle CPU of each process is measured."""
_POLL_S = 0.2
_WAITER_FETCH_WAIT_MS = 100  # see the module docstring
REQUESTED_BY = "alchemiser-bench"
HOPS: tuple[tuple[str, str], ...] = (
    ("trigger->signal", "SignalGenerated"),
    ("signal->plan", "RebalancePlanned"),
    ("plan->settled", "TradeExecuted"),
    ("settled->completed", "WorkflowCompleted"),
)
"""Each hop by the event that ends it; it starts where the previous one ended."""
_SPLIT = HOPS[:-1]  # the last hop's two events share their occurred_at
_WAITED = "waiting for the account's previous workflow to finish"  # portfolio's log line

_quiet = logging.getLogger("benchmarks.workflow_latency.kafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass(frozen=True)
class _Sent:
    """One measured workflow as the benchmark saw it (``delivered_at``: ``time.time()`` when
    ``publish()`` returned)."""

    correlation_id: str
    delivered_at: float
    publish_ms: float
    completed: bool


@dataclass(frozen=True)
class _Stamped:
    """One event read back: its record timestamp and ``occurred_at``, both in epoch ms."""

    record_ms: float
    occurred_ms: float
    event: Event


def _consumer(bootstrap: str, purpose: str, **overrides: Any) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{purpose}-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 10,
            "logger": _quiet,
            **overrides,
        }
    )


def _header(record: Message, name: str) -> bytes | None:
    raw = record.headers() or []
    for key, value in raw.items() if isinstance(raw, dict) else raw:
        if key == name:
            return value if isinstance(value, bytes) else (value or "").encode()
    return None


class _OutcomeWaiter:
    """One reader of the outcome and dead-letter topics, from their current ends."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._consumer = _consumer(
            stack.bootstrap_servers, "waiter", **{"fetch.wait.max.ms": _WAITER_FETCH_WAIT_MS}
        )
        partitions = []
        for topic in (WorkflowCompleted.TOPIC, WorkflowFailed.TOPIC, *DLQ_TOPICS):
            _low, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, 0), timeout=10.0
            )
            partitions.append(TopicPartition(topic, 0, high))
        self._consumer.assign(partitions)

    def wait(self, correlation_id: str) -> bool:
        """Whether the workflow completed (``False``: it failed)."""
        wanted = correlation_id.encode()
        deadline = time.monotonic() + WORKFLOW_TIMEOUT_S
        while time.monotonic() < deadline:
            self._stack.check_alive()
            record = self._consumer.poll(_POLL_S)
            if record is None or record.error() is not None:
                continue
            if _header(record, "correlation_id") != wanted:
                continue
            topic = str(record.topic())
            if topic in DLQ_TOPICS:
                reason = (_header(record, "dlq.reason") or b"?").decode(errors="replace")
                raise RuntimeError(f"workflow {correlation_id} was dead-lettered: {reason}")
            return topic == WorkflowCompleted.TOPIC
        raise RuntimeError(
            f"workflow {correlation_id} did not finish within {WORKFLOW_TIMEOUT_S:g} s"
        )

    def close(self) -> None:
        """Leave the broker."""
        self._consumer.close()


def _run_one(stack: Stack, serde: EventSerde, waiter: _OutcomeWaiter, session: date) -> _Sent:
    trigger = build_trigger(stack.account, requested_by=REQUESTED_BY, as_of=session, rerun=True)
    started = time.perf_counter()
    publish(trigger, stack.kafka, serde)
    delivered_at = time.time()
    publish_ms = (time.perf_counter() - started) * 1000
    completed = waiter.wait(str(trigger.correlation_id))
    return _Sent(str(trigger.correlation_id), delivered_at, publish_ms, completed)


def _read_topics(bootstrap: str, serde: EventSerde) -> dict[str, dict[str, _Stamped]]:
    """Every workflow event by correlation id and event type (first copy), read once."""
    consumer = _consumer(bootstrap, "reader", **{"enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING) for topic in EVENT_TOPICS])
    pending = set(EVENT_TOPICS)
    events: dict[str, dict[str, _Stamped]] = {}
    deadline = time.monotonic() + READ_LIMIT_S
    try:
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not read {sorted(pending)} within {READ_LIMIT_S:g} s")
            for record in consumer.consume(500, timeout=0.5):
                error = record.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(str(record.topic()))
                    continue
                event = serde.deserialize(str(record.topic()), record.value())
                stamped = _Stamped(
                    float(record.timestamp()[1]), event.occurred_at.timestamp() * 1000, event
                )
                events.setdefault(str(event.correlation_id), {}).setdefault(
                    event.event_type, stamped
                )
    finally:
        consumer.close()
    return events


def _cpu_s(pids: Mapping[str, int]) -> dict[str, float]:
    """User+system CPU seconds of each process so far (``/proc``; empty without it)."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        seconds[name] = (int(fields[11]) + int(fields[12])) / ticks
    own = resource.getrusage(resource.RUSAGE_SELF)
    seconds["benchmark"] = own.ru_utime + own.ru_stime
    return seconds


def _waits(stack: Stack) -> int:
    try:
        return stack.log_path("portfolio").read_text(errors="replace").count(_WAITED)
    except OSError:
        return 0


def _latencies(
    sent: Sequence[_Sent], events: Mapping[str, Mapping[str, _Stamped]]
) -> dict[str, Any]:
    """The latency, the hops and their splits of the completed workflows."""
    total: list[float] = []
    from_created: list[float] = []
    hops: dict[str, list[float]] = {name: [] for name, _ in HOPS}
    until: dict[str, list[float]] = {name: [] for name, _ in _SPLIT}
    after: dict[str, list[float]] = {name: [] for name, _ in _SPLIT}
    with_orders = 0
    for run in sent:
        stamped = events.get(run.correlation_id, {})
        if not run.completed or any(kind not in stamped for _, kind in HOPS):
            continue
        previous = run.delivered_at * 1000
        for name, kind in HOPS:
            ended = stamped[kind]
            hops[name].append(ended.record_ms - previous)
            if name in until:
                until[name].append(ended.occurred_ms - previous)
                after[name].append(ended.record_ms - ended.occurred_ms)
            previous = ended.record_ms
        total.append(previous - run.delivered_at * 1000)
        if "WorkflowStarted" in stamped:
            from_created.append(previous - stamped["WorkflowStarted"].record_ms)
        settled = stamped["TradeExecuted"].event
        with_orders += isinstance(settled, TradeExecuted) and settled.orders_placed > 0
    return {
        "latency_ms": spread(total, with_n=True),
        "hops_ms": {name: spread(values) for name, values in hops.items()},
        "hop_split_ms": {
            name: {
                "until_occurred_at": spread(until[name]),
                "after_occurred_at": spread(after[name]),
            }
            for name, _ in _SPLIT
        },
        "latency_from_trigger_created_ms": spread(from_created),
        "workflows_with_orders": with_orders,
    }


def _print_tails(stack: Stack, lines: int = 8) -> None:
    """The end of every process log (the run directory is removed on the way out)."""
    for process in stack.state.processes:
        try:
            tail = process.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        print(f"--- {process.name} ({process.log.name}) ---")
        for line in tail:
            print(f"  {line[:200]}")


def _measure(stack: Stack) -> dict[str, Any]:
    serde = EventSerde.from_url(stack.registry_url)
    session = stack.last_session()
    waiter = _OutcomeWaiter(stack)
    try:
        for _ in range(WARMUP):
            _run_one(stack, serde, waiter, session)
        roundtrips = bare_roundtrips_ms(stack.bootstrap_servers)
        pids = {process.name: process.pid for process in stack.state.processes}
        idle_before = _cpu_s(pids)
        time.sleep(IDLE_S)
        cpu_before, waits_before = _cpu_s(pids), _waits(stack)
        load_before = os.getloadavg()
        started = time.monotonic()
        sent: list[_Sent] = []
        while len(sent) < WORKFLOWS and time.monotonic() - started < RUN_LIMIT_S:
            sent.append(_run_one(stack, serde, waiter, session))
        elapsed = time.monotonic() - started
        cpu_after, waits_after = _cpu_s(pids), _waits(stack)
        load_after = os.getloadavg()
    finally:
        waiter.close()
    events = _read_topics(stack.bootstrap_servers, serde)
    figures = _latencies(sent, events)
    return {
        "session": session.isoformat(),
        "warmup": WARMUP,
        "workflows": len(sent),
        "completed": sum(run.completed for run in sent),
        "failed": sum(not run.completed for run in sent),
        **figures,
        "trigger_publish_ms": spread([run.publish_ms for run in sent]),
        "bare_roundtrip_ms": spread(roundtrips, with_n=True),
        "idle_cpu_ms_per_s": {
            name: round((cpu_before[name] - idle_before[name]) * 1000 / IDLE_S, 1)
            for name in cpu_before
            if name in idle_before
        },
        "cpu_ms_per_workflow": {
            name: round((cpu_after[name] - cpu_before[name]) * 1000 / max(len(sent), 1), 2)
            for name in cpu_after
            if name in cpu_before
        },
        "portfolio_waits_for_previous": waits_after - waits_before,
        "elapsed_s": round(elapsed, 1),
        "load_average": {"start": list(load_before), "end": list(load_after)},
        "targets": {
            "p50_ms": TARGET_P50_MS,
            "p99_ms": TARGET_P99_MS,
            "workflows": TARGET_WORKFLOWS,
        },
    }


def _report(figures: Mapping[str, Any]) -> None:
    latency, bare = figures["latency_ms"], figures["bare_roundtrip_ms"]
    print(
        f"workflow latency ({figures['completed']} completed, {figures['failed']} failed, "
        f"session {figures['session']}, {figures['warmup']} warm-up, "
        f"{figures['workflows_with_orders']} with orders, {figures['elapsed_s']} s)"
    )
    print(f"  trigger delivered -> completed  : p50 {latency['p50']} ms, p99 {latency['p99']} ms")
    for name, values in figures["hops_ms"].items():
        split = figures["hop_split_ms"].get(name)
        detail = (
            f" (until occurred_at p50 {split['until_occurred_at']['p50']}, "
            f"after p50 {split['after_occurred_at']['p50']})"
            if split
            else ""
        )
        print(f"    {name:<19}: p50 {values['p50']:>7} p99 {values['p99']:>7} ms{detail}")
    created, published = figures["latency_from_trigger_created_ms"], figures["trigger_publish_ms"]
    print(
        f"  from the trigger's record timestamp: p50 {created['p50']} ms, p99 {created['p99']} ms"
    )
    print(f"  publish() call (fresh producer)  : p50 {published['p50']} ms")
    print(f"  bare broker round trip           : p50 {bare['p50']} ms, p99 {bare['p99']} ms")
    print(f"  portfolio waits for previous     : {figures['portfolio_waits_for_previous']}")
    idle = ", ".join(f"{name} {ms}" for name, ms in figures["idle_cpu_ms_per_s"].items())
    print(f"  CPU ms per second, stack idle    : {idle}")
    cpu = ", ".join(f"{name} {ms}" for name, ms in figures["cpu_ms_per_workflow"].items())
    print(f"  CPU ms per workflow              : {cpu}")


def main() -> dict[str, Any]:
    """Start the stack, measure, stop it; print and return the figures."""
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
        stack = Stack(Path(tmp) / "run")
        try:
            started = time.monotonic()
            stack.start()
            print(f"stack started in {time.monotonic() - started:.1f} s (account {stack.account})")
            figures = _measure(stack)
        except BaseException:
            _print_tails(stack)
            raise
        finally:
            stack.stop()
    _report(figures)
    return figures


if __name__ == "__main__":
    main()

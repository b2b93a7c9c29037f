"""A broker killed and restarted under a running stage (tansu on S3 storage, so it keeps
its records and group offsets): the stage resumes, loses nothing and doubles nothing; SIGTERM
during the outage still ends it within the shutdown bound.

Before ``metadata.recovery.strategy=none`` a transactional producer that lived through such
an outage stayed blocked in ``send_offsets_to_transaction`` for minutes (librdkafka waited on
a group coordinator it had forgotten), and SIGTERM could not reach the Python handler.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alchemiser_common.events import SignalGenerated
from alchemiser_common.topics import create_topics
from alchemiser_devtools.broker import RestartableBroker
from alchemiser_devtools.harness import STAGE_ONE, Pipeline, distinct_ids

pytestmark = pytest.mark.integration

OUTAGE_S = 10.0  # the hang was seen after 10, 20 and 30 s outages alike
RESUME_BOUND_S = 30.0
S3_FETCH_WAIT_MS = "100"  # the S3-backed broker wants fetch.wait.max.ms >= 100


@pytest.fixture
def restart_pipeline(
    restartable_broker: RestartableBroker,
    registered_registry: str,
    postgres_url: str,
    tmp_path: Path,
) -> Iterator[Pipeline]:
    create_topics(
        {"bootstrap.servers": restartable_broker.bootstrap_servers},
        partitions=1,
        replication_factor=1,
    )
    harness = Pipeline(
        restartable_broker.bootstrap_servers, registered_registry, postgres_url, tmp_path
    )
    try:
        yield harness
    finally:
        harness.stop_all()


def _signals_for(pipeline: Pipeline, triggers: list) -> bool:
    wanted = {str(t.correlation_id) for t in triggers}
    return wanted <= set(pipeline.outputs_by_correlation(SignalGenerated.TOPIC))


def test_stage_when_broker_restarts_then_resumes_within_bound_without_loss_or_copies(
    restart_pipeline: Pipeline, restartable_broker: RestartableBroker
) -> None:
    pipeline = restart_pipeline
    stage = pipeline.start(STAGE_ONE, "one", ALCHEMISER_KAFKA__FETCH_WAIT_MAX_MS=S3_FETCH_WAIT_MS)
    before = [pipeline.trigger() for _ in range(3)]
    pipeline.produce(before)
    pipeline.wait_for(lambda: _signals_for(pipeline, before), "signals before the outage")

    restartable_broker.restart(down_s=OUTAGE_S)
    restarted_at = time.monotonic()
    after = [pipeline.trigger() for _ in range(3)]
    pipeline.produce(after)
    pipeline.wait_for(lambda: _signals_for(pipeline, after), "signals after the restart")

    assert time.monotonic() - restarted_at < RESUME_BOUND_S
    base = stage.metrics_url().removesuffix("/metrics")
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    effects = pipeline.effects("one")
    wanted = {str(t.correlation_id) for t in [*before, *after]}
    assert {cid: effects.get(cid) for cid in wanted} == dict.fromkeys(wanted, 1)
    by_id = distinct_ids(pipeline.read_all(SignalGenerated.TOPIC))
    assert all(len(values) == 1 for values in by_id.values())  # copies are byte-identical


def test_stage_when_sigterm_during_broker_outage_then_exits_within_shutdown_bound(
    restart_pipeline: Pipeline, restartable_broker: RestartableBroker
) -> None:
    pipeline = restart_pipeline
    stage = pipeline.start(
        STAGE_ONE,
        "one",
        ALCHEMISER_KAFKA__FETCH_WAIT_MAX_MS=S3_FETCH_WAIT_MS,
        ALCHEMISER_RUNTIME__SHUTDOWN_TIMEOUT_S="3",
    )
    first = [pipeline.trigger()]
    pipeline.produce(first)
    pipeline.wait_for(lambda: _signals_for(pipeline, first), "a signal before the outage")
    base = stage.metrics_url().removesuffix("/metrics")

    restartable_broker.kill()
    pipeline.wait_for(
        lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 503,
        "readiness to notice the broker is gone",
    )
    started = time.monotonic()
    code = stage.terminate(timeout=30)

    assert code in (0, 1)  # a clean stop, or the watchdog's exit when a call would not return
    assert time.monotonic() - started < 3 + 5  # the bound, plus slack for a loaded machine

"""A database outage is retried with backoff; nothing is dead-lettered, nothing is lost."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.engine import make_url

from alchemiser_common.events import SignalGenerated, WorkflowStarted
from alchemiser_common.topics import dlq_topic
from alchemiser_devtools.harness import STAGE_ONE, Pipeline

from .tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


def test_stage_when_database_goes_down_then_retries_and_handles_everything_once(
    pipeline: Pipeline,
) -> None:
    url = make_url(pipeline.database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        stage = pipeline.start(STAGE_ONE, "one", ALCHEMISER_DATABASE__URL=proxied)
        before = [pipeline.trigger() for _ in range(3)]
        pipeline.produce(before)
        pipeline.wait_for(
            lambda: (
                {str(t.correlation_id) for t in before}
                <= set(pipeline.outputs_by_correlation(SignalGenerated.TOPIC))
            ),
            "signals before the outage",
        )
        proxy.cut()
        during = [pipeline.trigger() for _ in range(5)]
        pipeline.produce(during)
        time.sleep(4)  # the stage retries against a dead database meanwhile
        assert stage.process.poll() is None
        assert stage.metric("inbox_retry_total") >= 1
        proxy.restore()
        wanted = {str(t.correlation_id) for t in [*before, *during]}
        pipeline.wait_for(
            lambda: wanted <= set(pipeline.outputs_by_correlation(SignalGenerated.TOPIC)),
            "every signal after the database came back",
        )
    effects = pipeline.effects("one")
    assert {cid: effects.get(cid) for cid in wanted} == dict.fromkeys(wanted, 1)
    assert pipeline.read_all(dlq_topic(WorkflowStarted.TOPIC)) == []

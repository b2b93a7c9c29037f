"""The pipeline mode (the services over Kafka, the embedded stack) against the in-process mode.

The same sessions produce the same orders, fills, accounts and allocations in both, also when
a fresh stack takes over every few sessions; a service killed in the middle of a pipeline
backtest stops it, and ``--resume`` ends with the results of an uninterrupted run.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from alchemiser_backtest.records import SessionRecord
from alchemiser_backtest.session import Backtest, BacktestError, Mode
from alchemiser_common.events import WorkflowStarted
from alchemiser_devtools.embedded import EmbeddedBroker
from alchemiser_devtools.harness import read_topic
from alchemiser_devtools.registry import RegistryServerProcess
from alchemiser_marketdata import DatasetMarketData
from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR

pytestmark = pytest.mark.integration


def _sibling(name: str) -> ModuleType:
    """A test module beside this one (tests run with --import-mode=importlib)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"backtest_tests_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


helpers = _sibling("test_backtest")


@pytest.fixture(scope="module")
def dataset() -> DatasetMarketData:
    data = DatasetMarketData(Path(DEMO_DATASET_DIR))
    data.trading_days()
    return data


def _prepare(out: Path, dataset: DatasetMarketData, start: date, end: date, mode: Mode) -> Backtest:
    return helpers._prepare(out, dataset, start=start, end=end, mode=mode)  # type: ignore[no-any-return]


def _run(backtest: Backtest, *, resume: bool = False) -> list[SessionRecord]:
    return helpers._run(backtest, resume=resume)  # type: ignore[no-any-return]


FULL = os.environ.get("ALCHEMISER_E2E_FULL", "").strip().lower() in {"1", "true", "yes"}
"""``make e2e-full``: the whole year 2008; ``make test``: September and October 2008 (the
crash)."""


def test_pipeline_when_a_year_of_sessions_then_same_orders_and_fills_as_inprocess(
    dataset: DatasetMarketData, tmp_path: Path
) -> None:
    start, end = (
        (date(2008, 1, 2), date(2008, 12, 31)) if FULL else (date(2008, 9, 2), date(2008, 10, 31))
    )
    inprocess = _run(_prepare(tmp_path / "inprocess", dataset, start, end, Mode.INPROCESS))
    pipeline = _run(_prepare(tmp_path / "pipeline", dataset, start, end, Mode.PIPELINE))

    assert len(pipeline) == len(inprocess) >= (250 if FULL else 40)
    assert sum(len(record.trades) for record in pipeline) > len(pipeline)
    assert helpers.comparable(pipeline) == helpers.comparable(inprocess)


def test_resume_when_a_service_is_killed_mid_pipeline_then_same_results_as_uninterrupted(
    dataset: DatasetMarketData, tmp_path: Path
) -> None:
    start, end = date(2008, 9, 15), date(2008, 10, 3)
    expected = _run(_prepare(tmp_path / "inprocess", dataset, start, end, Mode.INPROCESS))
    backtest = _prepare(tmp_path / "pipeline", dataset, start, end, Mode.PIPELINE)

    class KillExecution:
        def session_done(self, record: SessionRecord, done: int, total: int) -> None:
            if done == 5:
                assert stack is not None
                (execution,) = [p for p in stack.state.processes if p.name == "execution"]
                os.kill(execution.pid, signal.SIGKILL)

    with (
        pytest.raises(BacktestError, match="execution"),
        backtest.open(resume=False) as running,
    ):
        stack = running.stack
        running.run(resume=False, progress=KillExecution())
    done = (tmp_path / "pipeline" / "state" / "sessions.jsonl").read_text().splitlines()
    assert 5 <= len(done) < len(expected)

    resumed = _run(_prepare(tmp_path / "pipeline", dataset, start, end, Mode.PIPELINE), resume=True)

    assert helpers.comparable(resumed) == helpers.comparable(expected)
    assert resumed[-1].day.equity == expected[-1].day.equity != Decimal(100000)


def test_pipeline_when_each_stack_runs_a_few_sessions_then_same_results_as_inprocess(
    dataset: DatasetMarketData, tmp_path: Path
) -> None:
    """On the embedded broker a fresh stack takes over every ``stack_sessions`` sessions and
    carries on from the checkpoint: the results are those of the in-process run."""
    start, end = date(2008, 9, 15), date(2008, 9, 19)
    expected = _run(_prepare(tmp_path / "inprocess", dataset, start, end, Mode.INPROCESS))
    backtest = _prepare(tmp_path / "pipeline", dataset, start, end, Mode.PIPELINE)
    backtest.stack_sessions = 3
    said: list[str] = []

    records = backtest.run(said.append)

    assert sum(line.startswith("starting the broker") for line in said) == 2
    assert len(records) == len(expected) == 5
    assert sum(len(record.trades) for record in records) > 0
    assert helpers.comparable(records) == helpers.comparable(expected)


def test_pipeline_when_kafka_and_registry_are_given_then_runs_over_them_and_starts_neither(
    dataset: DatasetMarketData, tmp_path: Path, registry_server: RegistryServerProcess
) -> None:
    """Two backtests one after the other over the same given broker and registry: each starts
    neither, and the second (its services under names of its own, their groups at the topics'
    ends) trades exactly as the first and as the in-process run."""
    start, end = date(2008, 9, 15), date(2008, 9, 19)
    expected = _run(_prepare(tmp_path / "inprocess", dataset, start, end, Mode.INPROCESS))
    runs: list[list[SessionRecord]] = []
    started: list[set[str]] = []
    groups: list[set[str]] = []
    with EmbeddedBroker(log_dir=tmp_path / "broker") as broker:
        broker_address = broker.bootstrap_servers
        for index in range(2):
            backtest = _prepare(tmp_path / f"pipeline-{index}", dataset, start, end, Mode.PIPELINE)
            backtest.kafka_address = broker_address
            backtest.registry_address = registry_server.url
            with backtest.open(resume=False) as running:
                assert running.stack is not None
                started.append({process.name for process in running.stack.state.processes})
                groups.append({running.stack.service_name(name) for name in running.stack.services})
                runs.append(running.run(resume=False))
        triggers = read_topic(broker_address, WorkflowStarted.TOPIC)

    for names in started:
        assert names.isdisjoint({"broker", "tansu", "registry"})
        assert {"exchange", "strategy", "portfolio", "execution"} <= names
    assert groups[0].isdisjoint(groups[1])
    assert len(triggers) == 2 * len(runs[0]) == 10
    assert helpers.comparable(runs[0]) == helpers.comparable(expected)
    assert helpers.comparable(runs[1]) == helpers.comparable(expected)
    assert all(record.day.outcome == "completed" for record in runs[1])

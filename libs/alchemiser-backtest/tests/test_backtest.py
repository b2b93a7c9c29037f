"""The backtest loop in process: results, resume after an interruption or a crash, costs, options.

The pipeline mode (the same sessions through the services over Kafka) is compared with these
results in ``test_pipeline.py``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser_backtest.ahead import can_work_ahead
from alchemiser_backtest.cli import command
from alchemiser_backtest.inprocess import InProcessWorkflow
from alchemiser_backtest.records import SessionRecord, TradeRecord
from alchemiser_backtest.runner import Outcome, Workflow
from alchemiser_backtest.session import Backtest, BacktestError, Mode
from alchemiser_common.events import Event, WorkflowStarted
from alchemiser_exchange.rules import cents, fill_price
from alchemiser_marketdata import DatasetMarketData
from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR
from alchemiser_strategy.settings import default_strategies_dir

START, END = date(2008, 9, 2), date(2008, 10, 10)  # a turbulent stretch: trades most days


@pytest.fixture(scope="module")
def dataset() -> DatasetMarketData:
    data = DatasetMarketData(Path(DEMO_DATASET_DIR))
    data.trading_days()  # loaded once for the module
    return data


def _prepare(
    out: Path,
    dataset: DatasetMarketData,
    *,
    start: date = START,
    end: date = END,
    slippage_bps: str = "5",
    commission_bps: str = "0",
    mode: Mode = Mode.INPROCESS,
) -> Backtest:
    return Backtest.prepare(
        start=start,
        end=end,
        strategies_dir=None,
        cash=Decimal(100000),
        mode=mode,
        out_dir=out,
        benchmark="SPY",
        slippage_bps=Decimal(slippage_bps),
        commission_bps=Decimal(commission_bps),
        commission_per_share=Decimal(0),
        commission_min=Decimal(0),
        dataset_dir=Path(DEMO_DATASET_DIR),
        dataset=dataset,
    )


def _run(
    backtest: Backtest, *, resume: bool = False, stop_after: int | None = None
) -> list[SessionRecord]:
    done: list[int] = []

    class Count:
        def session_done(self, record: SessionRecord, count: int, total: int) -> None:
            done.append(count)

    with backtest.open(resume=resume) as running:
        return running.run(
            resume=resume,
            progress=Count(),
            stop=lambda: stop_after is not None and bool(done) and done[-1] >= stop_after,
        )


def comparable(records: list[SessionRecord]) -> list[SessionRecord]:
    """The records without the exchange's random order ids."""
    return [
        dataclasses.replace(
            record,
            trades=tuple(dataclasses.replace(trade, broker_order_id="") for trade in record.trades),
        )
        for record in records
    ]


@pytest.fixture(scope="module")
def uninterrupted(
    dataset: DatasetMarketData, tmp_path_factory: pytest.TempPathFactory
) -> list[SessionRecord]:
    return _run(_prepare(tmp_path_factory.mktemp("whole"), dataset))


def test_run_when_uninterrupted_then_one_record_per_session_and_trades(
    uninterrupted: list[SessionRecord], dataset: DatasetMarketData
) -> None:
    sessions = [day for day in dataset.trading_days() if START <= day <= END]
    assert [record.day.session for record in uninterrupted] == sessions
    assert all(record.day.outcome == "completed" for record in uninterrupted)
    assert sum(len(record.trades) for record in uninterrupted) > len(sessions)
    for record in uninterrupted:
        held = sum((position.market_value for position in record.positions), Decimal(0))
        assert record.day.equity == record.day.cash + held
        assert record.day.long_market_value == held
        weights = sum((item.weight for item in record.allocations), Decimal(0))
        assert abs(weights - 1) < Decimal("1e-9")


class _CrashAfterOrders:
    """Runs the real workflow of ``session`` (its orders fill), then dies before the checkpoint."""

    def __init__(self, inner: Workflow, session: date) -> None:
        self._inner, self._session = inner, session

    def run(self, trigger: WorkflowStarted) -> Outcome:
        outcome = self._inner.run(trigger)
        if trigger.as_of == self._session:
            raise RuntimeError("killed after the session's orders filled")
        return outcome


def test_resume_when_stopped_then_crashed_mid_session_then_same_results_as_uninterrupted(
    uninterrupted: list[SessionRecord], dataset: DatasetMarketData, tmp_path: Path
) -> None:
    backtest = _prepare(tmp_path, dataset)
    first = _run(backtest, stop_after=8)
    assert len(first) == 8
    crash_on = backtest.sessions[12]
    with backtest.open(resume=True) as running:
        running.workflow = _CrashAfterOrders(running.workflow, crash_on)
        with pytest.raises(RuntimeError, match="killed"):
            running.run(resume=True)
    lines = (tmp_path / "state" / "sessions.jsonl").read_text().splitlines()
    assert len(lines) == 12  # the crashed session was not checkpointed

    resumed = _run(_prepare(tmp_path, dataset), resume=True)

    assert comparable(resumed) == comparable(uninterrupted)


@pytest.mark.skipif(not can_work_ahead(), reason="needs two cores and fork")
def test_run_when_strategy_steps_computed_ahead_then_same_results_and_only_the_first_here(
    uninterrupted: list[SessionRecord],
    dataset: DatasetMarketData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here: list[date | None] = []
    step = InProcessWorkflow._strategy_step

    def counted(workflow: InProcessWorkflow, trigger: WorkflowStarted) -> Sequence[Event]:
        here.append(trigger.as_of)  # in this process only: the worker has its own list
        return step(workflow, trigger)

    monkeypatch.setattr(InProcessWorkflow, "_strategy_step", counted)
    ahead = _run(_prepare(tmp_path / "ahead", dataset))
    assert here == [START]  # every later session's step came from the worker
    assert comparable(ahead) == comparable(uninterrupted)

    here.clear()
    backtest = _prepare(tmp_path / "here", dataset)
    backtest.work_ahead = False
    assert comparable(_run(backtest)) == comparable(uninterrupted)
    assert here == list(backtest.sessions)


def test_resume_when_options_differ_then_refused_naming_them(
    dataset: DatasetMarketData, tmp_path: Path
) -> None:
    _run(_prepare(tmp_path, dataset, end=date(2008, 9, 5)), stop_after=1)
    with pytest.raises(BacktestError, match="slippage_bps"):
        _run(_prepare(tmp_path, dataset, end=date(2008, 9, 5), slippage_bps="7"), resume=True)


def test_run_when_out_holds_a_backtest_then_refused_with_resume_hint(
    dataset: DatasetMarketData, tmp_path: Path
) -> None:
    _run(_prepare(tmp_path, dataset, end=date(2008, 9, 3)))
    with pytest.raises(BacktestError, match="--resume"):
        _run(_prepare(tmp_path, dataset, end=date(2008, 9, 3)))


def _close(dataset: DatasetMarketData, trade: TradeRecord) -> Decimal:
    history = dataset.history(trade.symbol)
    assert history is not None
    bar = history.bar_on_or_before(trade.session)
    assert bar is not None and bar.date == trade.session
    return fill_price(bar.close)


def test_costs_when_slippage_and_commission_then_each_fill_pays_them(
    dataset: DatasetMarketData, tmp_path: Path
) -> None:
    end = date(2008, 9, 10)
    slipped = _run(_prepare(tmp_path / "c", dataset, end=end, commission_bps="10"))
    free = _run(_prepare(tmp_path / "f", dataset, end=end, slippage_bps="0"))

    trades = [trade for record in slipped for trade in record.trades]
    assert trades
    for trade in trades:
        close = _close(dataset, trade)
        factor = Decimal("1.0005") if trade.side == "buy" else Decimal("0.9995")
        assert trade.price == fill_price(close * factor)
        assert trade.fees == cents(trade.qty * trade.price * Decimal("0.001"))
    for trade in (trade for record in free for trade in record.trades):
        assert trade.price == _close(dataset, trade)
        assert trade.fees == 0
    assert free[0].day.equity > slipped[0].day.equity


def test_report_when_written_then_results_and_tearsheet_files(
    uninterrupted: list[SessionRecord], dataset: DatasetMarketData, tmp_path: Path
) -> None:
    backtest = _prepare(tmp_path, dataset)
    page = backtest.write_report(uninterrupted)

    assert page.name == "tearsheet.html"
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["sessions"] == len(uninterrupted)
    assert stats["benchmark"] == "SPY"
    assert stats["trades"] == sum(len(record.trades) for record in uninterrupted)
    assert Decimal(stats["end_equity"]) == uninterrupted[-1].day.equity
    for name in ("equity", "positions", "trades", "allocations"):
        assert (tmp_path / f"{name}.csv").is_file()
        assert (tmp_path / f"{name}.parquet").is_file()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--from", "1990-01-02", "--to", "1990-02-01"], "no session of the dataset"),
        (["--from", "2008-02-01", "--to", "2008-01-02"], "is before --from"),
        (["--from", "2008-13-01", "--to", "2008-01-02"], "is not a date"),
        (["--from", "2008-01-02", "--to", "2008-01-03", "--cash", "x"], "--cash"),
        (["--from", "2008-01-02", "--to", "2008-01-03", "--benchmark", "NOPE"], "--benchmark"),
    ],
)
def test_cli_when_an_option_is_wrong_then_one_line_and_exit_2(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        command.main([*arguments, "--out", str(tmp_path), "--mode", "inprocess"])
    assert stopped.value.code == 2
    out = capsys.readouterr().out
    assert message in out
    assert "Traceback" not in out


def test_cli_when_run_in_process_then_tearsheet_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        command.main(
            [
                "--from",
                "2008-09-02",
                "--to",
                "2008-09-05",
                "--mode",
                "inprocess",
                "--out",
                str(tmp_path),
            ]
        )
    assert stopped.value.code == 0
    assert "tearsheet:" in capsys.readouterr().out
    assert (tmp_path / "tearsheet.html").is_file()


def test_run_when_strategies_folder_without_weights_then_equal_weights_over_its_files(
    dataset: DatasetMarketData, tmp_path: Path
) -> None:
    bundled = default_strategies_dir()
    folder = tmp_path / "mine"
    folder.mkdir()
    for stem in ("tecl", "klm"):
        shutil.copy(bundled / f"{stem}.clj", folder / f"{stem}.clj")
    backtest = Backtest.prepare(
        start=date(2008, 9, 2),
        end=date(2008, 9, 4),
        strategies_dir=folder,
        cash=Decimal(50000),
        mode=Mode.INPROCESS,
        out_dir=tmp_path / "out",
        benchmark="QQQ",
        slippage_bps=Decimal(0),
        commission_bps=Decimal(0),
        commission_per_share=Decimal(0),
        commission_min=Decimal(0),
        dataset_dir=Path(DEMO_DATASET_DIR),
        dataset=dataset,
    )
    assert backtest.config.weights == {"klm": "1", "tecl": "1"}

    records = _run(backtest)

    assert len(records) == 3
    for record in records:
        shares: dict[str, Decimal] = {}
        for item in record.allocations:
            shares[item.strategy] = shares.get(item.strategy, Decimal(0)) + item.weight
        assert set(shares) == {"klm", "tecl"}
        assert all(abs(share - Decimal("0.5")) < Decimal("1e-9") for share in shares.values())
    bought = sum((trade.notional for trade in records[0].trades if trade.side == "buy"), Decimal(0))
    assert Decimal(45000) < bought <= Decimal(50000)

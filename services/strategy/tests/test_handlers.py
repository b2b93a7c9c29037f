"""The WorkflowStarted handler on the bundled demo dataset (no broker: called directly)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from alchemiser_common.events import (
    AllocationStatus,
    FailureStep,
    SignalGenerated,
    WorkflowFailed,
    WorkflowStarted,
    derive_event_id,
    signal_hash,
)
from alchemiser_common.events.samples import sample_workflow_started
from alchemiser_common.runtime.handlers import HandlerContext
from alchemiser_marketdata import (
    DatasetMarketData,
    MarketDataRequestError,
    MarketDataUnavailableError,
    PriceHistory,
    market_snapshot_id,
    start_for_bars,
)
from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR
from alchemiser_strategy.app import SignalEngine, load_strategy_files
from alchemiser_strategy.handlers import SignalHandler
from alchemiser_strategy.settings import BUNDLED_STRATEGIES_DIR, DEFAULT_WEIGHTS

NOW = datetime(2025, 3, 14, 19, 45, tzinfo=UTC)
IN_DATASET = date(2015, 6, 15)


@cache
def _dataset() -> DatasetMarketData:
    dataset = DatasetMarketData(DEMO_DATASET_DIR)
    dataset.histories  # noqa: B018 -- load once for the module
    return dataset


class _CountingPort:
    """Serves the demo dataset, records every request, optionally drops or raises."""

    def __init__(self, drop_last_bar_of: str | None = None, error: Exception | None = None):
        self.calls: list[tuple[tuple[str, ...], date, date]] = []
        self._drop = drop_last_bar_of
        self._error = error

    def get_daily_bars(
        self, symbols: Iterable[str], start: date, end: date
    ) -> dict[str, PriceHistory]:
        wanted = tuple(symbols)
        self.calls.append((wanted, start, end))
        if self._error is not None:
            raise self._error
        bars = _dataset().get_daily_bars(wanted, start, end)
        if self._drop is not None:
            history = bars[self._drop]
            bars[self._drop] = PriceHistory(self._drop, history.bars[:-1])
        return bars

    def close_on(self, symbol: str, day: date) -> Decimal | None:
        return _dataset().close_on(symbol, day)


def _engine(
    port: Any, weights: dict[str, Decimal] | None = None, folder: Path | None = None
) -> SignalEngine:
    shares = weights or dict(DEFAULT_WEIGHTS)
    directory = folder or BUNDLED_STRATEGIES_DIR
    files = {stem: directory / f"{stem}.clj" for stem in shares}
    strategies = load_strategy_files(files, shares)
    return SignalEngine(strategies, port, lambda _now: _dataset().trading_days()[-1])


def _context() -> HandlerContext:
    return HandlerContext(consumer="strategy", now=lambda: NOW)


def _trigger(as_of: date | None) -> WorkflowStarted:
    return sample_workflow_started().model_copy(
        update={"event_id": uuid4(), "correlation_id": uuid4(), "as_of": as_of}
    )


def _handle(port: Any, as_of: date | None, **engine: Any) -> tuple[WorkflowStarted, Any]:
    trigger = _trigger(as_of)
    (output,) = SignalHandler(_engine(port, **engine))(trigger, _context())
    return trigger, output


def test_handle_when_as_of_inside_dataset_then_signal_sums_to_one_and_hash_verifies() -> None:
    port = _CountingPort()

    trigger, signal = _handle(port, IN_DATASET)

    assert isinstance(signal, SignalGenerated)
    assert signal.as_of == IN_DATASET
    assert signal.event_id == derive_event_id(trigger.event_id, "SignalGenerated")
    assert signal.causation_id == trigger.event_id
    assert signal.correlation_id == trigger.correlation_id
    assert signal.occurred_at == NOW
    assert signal.source.service == "strategy"
    assert sum(weight.weight for weight in signal.consolidated_portfolio) == Decimal(1)
    assert signal.signal_hash == signal_hash(
        signal.consolidated_portfolio, signal.signals, trigger.correlation_id
    )
    assert [a.strategy for a in signal.strategy_allocations] == list(DEFAULT_WEIGHTS)
    assert {a.strategy: a.allocation_weight for a in signal.strategy_allocations} == {
        name: weight.quantize(Decimal("1E-12")) for name, weight in DEFAULT_WEIGHTS.items()
    }
    assert all(signal.reason for signal in signal.signals)
    for name in DEFAULT_WEIGHTS:
        mine = [s.target_weight for s in signal.signals if s.strategy == name]
        assert sum(mine) == Decimal(1)


def test_handle_when_run_then_every_symbol_fetched_once_with_the_largest_lookback() -> None:
    port = _CountingPort()
    engine = _engine(port)

    _trigger_event, signal = _handle(port, IN_DATASET)

    assert len(port.calls) == 1
    symbols, start, end = port.calls[0]
    assert sorted(symbols) == sorted(set(symbols)) == list(engine.symbols)
    assert engine.lookback_bars == max(item.strategy.lookback_bars for item in engine.strategies)
    assert (start, end) == (start_for_bars(IN_DATASET, engine.lookback_bars), IN_DATASET)
    histories = _dataset().get_daily_bars(symbols, start, end)
    assert signal.market_snapshot_id == market_snapshot_id(histories, IN_DATASET)


def test_handle_when_as_of_is_none_then_the_newest_date_of_the_data_is_used() -> None:
    _trigger_event, signal = _handle(_CountingPort(), None)

    assert isinstance(signal, SignalGenerated)
    assert signal.as_of == date(2018, 12, 31)


def test_handle_when_same_trigger_twice_then_identical_signal() -> None:
    handler = SignalHandler(_engine(_CountingPort()))
    trigger = _trigger(IN_DATASET)

    first = handler(trigger, _context())
    second = handler(trigger, _context())

    assert first == second


@pytest.mark.parametrize(
    ("as_of", "reason"),
    [
        (date(2030, 1, 2), "no market data up to 2030-01-02 for any of the 35"),
        (date(2019, 1, 2), "no market data for 2019-01-02: not a session"),  # after the end
        (date(2004, 6, 1), "no market data up to 2004-06-01"),
        (date(2015, 6, 13), "no market data for 2015-06-13: not a session"),  # a Saturday
    ],
)
def test_handle_when_as_of_has_no_session_then_workflow_failed_at_strategy(
    as_of: date, reason: str
) -> None:
    trigger, failed = _handle(_CountingPort(), as_of)

    assert isinstance(failed, WorkflowFailed)
    assert failed.failure_step is FailureStep.STRATEGY
    assert failed.reason.startswith(reason)
    assert failed.causation_id == trigger.event_id
    assert failed.event_id == derive_event_id(trigger.event_id, "WorkflowFailed")
    assert failed.details["as_of"] == as_of.isoformat()
    assert failed.details["error_type"] == "MarketDataMissingError"


def test_handle_when_one_symbol_lacks_the_as_of_bar_then_workflow_failed_naming_it() -> None:
    _trigger_event, failed = _handle(_CountingPort(drop_last_bar_of="TQQQ"), IN_DATASET)

    assert isinstance(failed, WorkflowFailed)
    assert failed.failed_symbols == ["TQQQ"]
    assert failed.details["missing"] == "TQQQ"
    assert "TQQQ" in failed.reason


def test_handle_when_source_refuses_then_workflow_failed_with_its_message() -> None:
    refused = MarketDataRequestError("Alpaca refused the bars request: HTTP 403: forbidden")

    _trigger_event, failed = _handle(_CountingPort(error=refused), IN_DATASET)

    assert isinstance(failed, WorkflowFailed)
    assert failed.reason == str(refused)
    assert failed.details["error_type"] == "MarketDataRequestError"


def test_handle_when_source_transiently_down_then_error_propagates_for_a_retry() -> None:
    port = _CountingPort(error=MarketDataUnavailableError("Alpaca bars unavailable"))
    handler = SignalHandler(_engine(port))

    with pytest.raises(MarketDataUnavailableError):
        handler(_trigger(IN_DATASET), _context())


def test_handle_when_history_too_short_for_every_strategy_then_workflow_failed_not_cash() -> None:
    # 2005-01-10 is the 6th session of the data: no RSI(10) or SMA(200) has a value yet.
    _trigger_event, failed = _handle(_CountingPort(), date(2005, 1, 10))

    # no all-cash signal: an evaluation problem must never sell the whole account
    assert isinstance(failed, WorkflowFailed)
    assert failed.failure_step is FailureStep.STRATEGY
    assert failed.reason.startswith("every strategy file failed (4)")
    reasons = {k: v for k, v in failed.details.items() if k.startswith("failed:")}
    names = ("klm", "nuclear", "tecl", "tqqq_ftlt")
    assert set(reasons) == {f"failed:{name}.clj" for name in names}
    assert all("not enough history" in reason for reason in reasons.values())


def test_handle_when_one_file_fails_then_it_is_dropped_and_the_rest_renormalised(
    tmp_path: Path,
) -> None:
    for name in ("klm", "tecl"):
        (tmp_path / f"{name}.clj").write_text((BUNDLED_STRATEGIES_DIR / f"{name}.clj").read_text())
    # a window longer than the whole dataset: this file can never be evaluated
    (tmp_path / "greedy.clj").write_text(
        '(defsymphony "greedy" {}\n'
        ' (if (> (rsi "SPY" {:window 4000}) 50) (asset "SPY") (asset "BIL")))'
    )
    weights = {"klm": Decimal("0.2"), "tecl": Decimal("0.2"), "greedy": Decimal("0.6")}

    _trigger_event, signal = _handle(_CountingPort(), IN_DATASET, weights=weights, folder=tmp_path)

    allocations = {a.strategy: a for a in signal.strategy_allocations}
    assert allocations["greedy"].status is AllocationStatus.FAILED
    assert (allocations["greedy"].error or "").startswith("greedy.clj:2:9: not enough history")
    assert allocations["klm"].allocation_weight == Decimal("0.5")
    assert allocations["tecl"].allocation_weight == Decimal("0.5")
    assert sum(w.weight for w in signal.consolidated_portfolio) == Decimal(1)
    assert {s.strategy for s in signal.signals} == {"klm", "tecl"}


def _spy_and_tqqq_files(folder: Path) -> dict[str, Decimal]:
    (folder / "spy_only.clj").write_text(
        '(defsymphony "spy" {} (if (> (rsi "SPY" {:window 10}) 50) (asset "SPY") (asset "BIL")))'
    )
    (folder / "needs_tqqq.clj").write_text(
        '(defsymphony "t" {} (if (> (rsi "TQQQ" {:window 10}) 50) (asset "TQQQ") (asset "BIL")))'
    )
    return {"spy_only": Decimal("0.25"), "needs_tqqq": Decimal("0.75")}


def test_handle_when_a_symbol_lacks_the_bar_for_one_file_then_only_that_file_is_dropped(
    tmp_path: Path,
) -> None:
    weights = _spy_and_tqqq_files(tmp_path)

    _trigger_event, signal = _handle(
        _CountingPort(drop_last_bar_of="TQQQ"), IN_DATASET, weights=weights, folder=tmp_path
    )

    assert isinstance(signal, SignalGenerated)
    allocations = {a.strategy: a for a in signal.strategy_allocations}
    assert allocations["needs_tqqq"].status is AllocationStatus.FAILED
    assert "no price data for symbol 'TQQQ'" in (allocations["needs_tqqq"].error or "")
    assert allocations["spy_only"].allocation_weight == Decimal(1)
    assert sum(w.weight for w in signal.consolidated_portfolio) == Decimal(1)
    assert "TQQQ" not in {w.symbol for w in signal.consolidated_portfolio}


def test_handle_when_missing_bars_make_every_file_fail_then_workflow_failed_not_cash(
    tmp_path: Path,
) -> None:
    weights = _spy_and_tqqq_files(tmp_path)

    _trigger_event, failed = _handle(
        _CountingPort(drop_last_bar_of="SPY"),
        IN_DATASET,
        weights={"spy_only": weights["spy_only"]},
        folder=tmp_path,
    )

    assert isinstance(failed, WorkflowFailed)
    assert failed.failed_symbols == ["SPY"]
    assert failed.reason.startswith("market data missing on 2015-06-15 for 1 of 2 symbols: SPY")

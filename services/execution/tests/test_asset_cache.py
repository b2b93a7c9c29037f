"""Execution reuses the broker's answer on an asset for ``asset_cache_s`` (as the original
system's asset metadata service did); an unknown symbol is asked again every time.

Through ``Executor.check_plan`` (the plan rules that read the assets; nothing is sent) over the
real Alpaca adapter and the paper exchange, counting the adapter's asset reads.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from alchemiser_broker import AssetInfo
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_devtools.exchange import PaperExchange, adapter_settings
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.app import execution_config
from alchemiser_execution.exceptions import InvalidPlanError
from alchemiser_execution.executor import Executor
from alchemiser_execution.orders import OrderDesk
from alchemiser_execution.settings import ExecutionSettings
from alchemiser_execution.testing import FAST_CONFIG, buy, execution_request, planned


class _Counting(AlpacaBroker):
    """The adapter, counting ``get_asset`` calls per symbol."""

    def __init__(self, exchange: PaperExchange) -> None:
        super().__init__(adapter_settings(exchange.url), sleep=lambda _s: None)
        self.asked: list[str] = []

    def get_asset(self, symbol: str) -> AssetInfo:
        self.asked.append(symbol)
        return super().get_asset(symbol)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def exchange(paper_exchange: PaperExchange) -> PaperExchange:
    paper_exchange.set_prices({"TQQQ": "50", "SPY": "500"})
    paper_exchange.exchange.set_cash(paper_exchange.account, Decimal(100_000))
    return paper_exchange


def _executor(
    broker: AlpacaBroker, store: AttemptStore, clock: _Clock, asset_cache_s: float
) -> Executor:
    config = dataclasses.replace(FAST_CONFIG, asset_cache_s=asset_cache_s)
    desk = OrderDesk(broker, store, broker_name="test")
    return Executor(broker, store, desk, config, sleep=lambda _s: None, monotonic=clock)


def _check(executor: Executor, exchange: PaperExchange, *symbols: str) -> None:
    event = planned([buy(symbol, "1000") for symbol in symbols], account_id=exchange.account)
    executor.check_plan(execution_request(event))


def test_check_when_assets_read_within_the_cache_time_then_broker_asked_once_per_symbol(
    exchange: PaperExchange, store: AttemptStore
) -> None:
    broker, clock = _Counting(exchange), _Clock()
    executor = _executor(broker, store, clock, asset_cache_s=300)

    _check(executor, exchange, "TQQQ", "SPY")
    clock.now += 299
    _check(executor, exchange, "TQQQ", "SPY")
    assert sorted(broker.asked) == ["SPY", "TQQQ"]

    clock.now += 1  # 300 s after the first answer
    _check(executor, exchange, "TQQQ")
    assert sorted(broker.asked) == ["SPY", "TQQQ", "TQQQ"]


def test_check_when_cache_time_zero_then_broker_asked_before_every_plan(
    exchange: PaperExchange, store: AttemptStore
) -> None:
    broker, clock = _Counting(exchange), _Clock()
    executor = _executor(broker, store, clock, asset_cache_s=0)

    for _ in range(3):
        _check(executor, exchange, "TQQQ")

    assert broker.asked == ["TQQQ"] * 3


def test_check_when_symbol_unknown_then_asked_again_on_the_next_plan_and_refused_each_time(
    exchange: PaperExchange, store: AttemptStore
) -> None:
    broker, clock = _Counting(exchange), _Clock()
    executor = _executor(broker, store, clock, asset_cache_s=300)

    for _ in range(2):
        with pytest.raises(InvalidPlanError, match="unknown asset NOPE"):
            _check(executor, exchange, "NOPE")

    assert broker.asked == ["NOPE", "NOPE"]


def test_settings_when_asset_cache_set_then_the_executor_config_carries_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert execution_config(ExecutionSettings()).asset_cache_s == 300.0
    monkeypatch.setenv("ALCHEMISER_EXECUTION__ASSET_CACHE_S", "0")
    assert execution_config(ExecutionSettings()).asset_cache_s == 0.0

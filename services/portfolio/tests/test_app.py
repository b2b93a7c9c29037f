"""register_handlers: the configured broker, checked at start-up and wired to the handler."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alchemiser_broker import OrderRequest, OrderSide
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_broker.simulated import SimulatedBroker
from alchemiser_broker.simulated_settings import SimulatedBrokerSettings
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.events import RebalancePlanned
from alchemiser_common.events.enums import PlanAction
from alchemiser_common.events.samples import sample_signal_generated
from alchemiser_common.observability import Metrics
from alchemiser_common.runtime.declaration import ServiceContainer
from alchemiser_common.runtime.handlers import (
    EventHandlerRegistry,
    HandlerContext,
    HandlerResult,
)
from alchemiser_marketdata import DatasetMarketData
from alchemiser_portfolio import register_handlers
from alchemiser_portfolio.adapters.ledger import WorkflowLedger
from alchemiser_portfolio.app import account_broker, event_source
from alchemiser_portfolio.domain import PlanRef
from alchemiser_portfolio.settings import PortfolioSettings

NOW = datetime(2025, 3, 14, 20, 0, tzinfo=UTC)
BARS = """date,symbol,open,high,low,close,volume
2025-03-13,TQQQ,70,71,69,70.00,1000
2025-03-14,TQQQ,70,73,69,72.50,1000
2025-03-14,OKLO,30,31,29,30.25,1000
2025-03-14,SMR,20,21,19,20.10,1000
2025-03-14,SOXL,25,26,24,25.00,1000
"""


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bars"
    directory.mkdir()
    (directory / "bars.csv").write_text(BARS, encoding="utf-8")
    return directory


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_engine_from_url(sqlite_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _container(engine: Engine, **settings: Any) -> ServiceContainer[PortfolioSettings]:
    return ServiceContainer(
        settings=PortfolioSettings(database={"url": str(engine.url)}, **settings),
        engine=engine,
        metrics=Metrics(),
        now=lambda: NOW,
    )


def _simulated(dataset_dir: Path | str) -> dict[str, Any]:
    return {"broker": {"kind": "simulated", "simulated": {"dataset_dir": str(dataset_dir)}}}


def test_register_when_simulated_then_plans_against_the_simulated_account(
    engine: Engine, dataset_dir: Path
) -> None:
    registry = EventHandlerRegistry()
    register_handlers(_container(engine, **_simulated(dataset_dir)), registry)
    # The simulated account (100,000 cash) buys 100 SOXL at the 25.00 close.
    seller = SimulatedBroker(engine, DatasetMarketData(dataset_dir), SimulatedBrokerSettings())
    seller.submit_order(
        OrderRequest(client_order_id="seed", symbol="SOXL", side=OrderSide.BUY, qty=Decimal(100))
    )

    signal = sample_signal_generated()
    handler = registry.handler_for(signal)
    assert handler is not None
    context = HandlerContext(consumer="portfolio", now=lambda: NOW)
    result = handler(signal, context)
    assert isinstance(result, HandlerResult)
    (planned,) = result.events

    # the outcome handlers feed the workflow ledger (one workflow at a time per account)
    assert registry.event_types() == ["SignalGenerated", "WorkflowCompleted", "WorkflowFailed"]
    assert isinstance(planned, RebalancePlanned)
    assert planned.source == event_source()
    assert [(i.symbol, i.action, i.trade_amount, i.priority) for i in planned.plan.items] == [
        ("SOXL", PlanAction.SELL, Decimal("-2500"), 2),
        ("TQQQ", PlanAction.BUY, Decimal("49500"), 1),
        ("OKLO", PlanAction.BUY, Decimal("33000"), 1),
        ("SMR", PlanAction.BUY, Decimal("16500"), 1),
    ]
    assert planned.plan.total_portfolio_value == Decimal("100000")


def test_register_when_started_then_ledger_tables_exist_and_the_plan_is_recorded(
    engine: Engine, dataset_dir: Path
) -> None:
    registry = EventHandlerRegistry()
    register_handlers(_container(engine, **_simulated(dataset_dir)), registry)
    signal = sample_signal_generated()
    handler = registry.handler_for(signal)
    assert handler is not None

    result = handler(signal, HandlerContext(consumer="portfolio", now=lambda: NOW))
    assert isinstance(result, HandlerResult)
    assert result.state is not None
    with engine.begin() as connection:
        result.state(connection)
    ledger = WorkflowLedger(engine)

    assert sa.inspect(engine).has_table("portfolio_plans")
    assert sa.inspect(engine).has_table("portfolio_finished_workflows")
    later = ledger.account_workflows(signal.account_id, excluding="another workflow")
    assert later.unfinished == (PlanRef(NOW, str(signal.correlation_id)),)


def test_register_when_dataset_dir_unset_then_configuration_error_names_it(
    engine: Engine,
) -> None:
    with pytest.raises(ConfigurationError, match="ALCHEMISER_BROKER__SIMULATED__DATASET_DIR"):
        register_handlers(_container(engine), EventHandlerRegistry())


def test_register_when_dataset_dir_missing_then_configuration_error(
    engine: Engine, tmp_path: Path
) -> None:
    container = _container(engine, **_simulated(tmp_path / "nowhere"))

    with pytest.raises(ConfigurationError, match="not a directory"):
        register_handlers(container, EventHandlerRegistry())


def test_register_when_dataset_malformed_then_configuration_error(
    engine: Engine, tmp_path: Path
) -> None:
    (tmp_path / "bad.csv").write_text("date,symbol,close\n2025-03-14,SPY,1\n", encoding="utf-8")

    with pytest.raises(ConfigurationError, match=r"DATASET_DIR=.*bad\.csv"):
        register_handlers(_container(engine, **_simulated(tmp_path)), EventHandlerRegistry())


def test_account_broker_when_alpaca_kind_then_alpaca_adapter_in_paper_mode(engine: Engine) -> None:
    container = _container(
        engine,
        broker={"kind": "alpaca"},
        alpaca={"api_key": "key", "secret_key": "secret"},
    )
    settings = container.settings

    broker = account_broker(settings, engine=engine, clock=lambda: NOW)

    assert isinstance(broker, AlpacaBroker)
    assert settings.require_alpaca().paper is True

"""register_handlers: the configured broker (the paper exchange by default), wired to the
handler; the account is read from a running exchange (the ``paper_exchange`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alchemiser_broker import ACCOUNT_MISMATCH, BrokerUnavailableError, OrderSide, OrderType
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.events import RebalancePlanned, SignalGenerated, WorkflowFailed
from alchemiser_common.events.enums import PlanAction
from alchemiser_common.events.samples import SAMPLE_ACCOUNT_ID, sample_signal_generated
from alchemiser_common.observability import Metrics
from alchemiser_common.runtime.declaration import ServiceContainer
from alchemiser_common.runtime.handlers import (
    EventHandlerRegistry,
    HandlerContext,
    HandlerResult,
)
from alchemiser_devtools.exchange import API_KEY, SECRET_KEY, SESSION, PaperExchange
from alchemiser_devtools.local import free_port
from alchemiser_exchange import OrderSpec
from alchemiser_portfolio import register_handlers
from alchemiser_portfolio.adapters.ledger import WorkflowLedger
from alchemiser_portfolio.app import account_broker, event_source
from alchemiser_portfolio.domain import PlanRef
from alchemiser_portfolio.settings import PortfolioSettings

NOW = datetime(2025, 3, 14, 20, 0, tzinfo=UTC)
# The session's bars (open, high, low, close); the sample signal is for 2025-03-14.
BARS: dict[str, Any] = {
    "TQQQ": ("70", "73", "69", "72.50"),
    "OKLO": ("30", "31", "29", "30.25"),
    "SMR": ("20", "21", "19", "20.10"),
    "SOXL": ("25", "26", "24", "25.00"),
}


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_engine_from_url(sqlite_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def exchange(paper_exchange: PaperExchange) -> PaperExchange:
    """The exchange account (100,000 cash) after buying 100 SOXL at the 25.00 close."""
    paper_exchange.set_prices(BARS)
    paper_exchange.exchange.submit(
        paper_exchange.account,
        OrderSpec(
            symbol="SOXL",
            side=OrderSide.BUY,
            order_type=OrderType.MARKET,
            qty=Decimal(100),
            client_order_id="seed",
        ),
    )
    return paper_exchange


def _container(engine: Engine, **settings: Any) -> ServiceContainer[PortfolioSettings]:
    return ServiceContainer(
        settings=PortfolioSettings(database={"url": str(engine.url)}, **settings),
        engine=engine,
        metrics=Metrics(),
        now=lambda: NOW,
    )


def _on_exchange(url: str, **alpaca: Any) -> dict[str, Any]:
    """Settings reading the account of ``API_KEY`` on the exchange at ``url``."""
    keys = {"api_key": API_KEY, "secret_key": SECRET_KEY, "retry_backoff_s": 0, **alpaca}
    return {"broker": {"kind": "exchange", "exchange_url": url}, "alpaca": keys}


def _signal(account_id: str) -> SignalGenerated:
    return sample_signal_generated().model_copy(update={"account_id": account_id})


def _handle(registry: EventHandlerRegistry, signal: SignalGenerated) -> HandlerResult:
    handler = registry.handler_for(signal)
    assert handler is not None
    result = handler(signal, HandlerContext(consumer="portfolio", now=lambda: NOW))
    assert isinstance(result, HandlerResult)
    return result


def test_register_when_exchange_then_plans_against_the_exchange_account(
    engine: Engine, exchange: PaperExchange
) -> None:
    registry = EventHandlerRegistry()
    register_handlers(_container(engine, **_on_exchange(exchange.url)), registry)
    signal = _signal(exchange.account)
    assert signal.as_of == SESSION

    (planned,) = _handle(registry, signal).events

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
    assert planned.account_id == exchange.account
    # the handler moved the account's clock to the signal's session
    assert exchange.exchange.account(exchange.account).session_date == signal.as_of


def test_register_when_started_then_ledger_tables_exist_and_the_plan_is_recorded(
    engine: Engine, exchange: PaperExchange
) -> None:
    registry = EventHandlerRegistry()
    register_handlers(_container(engine, **_on_exchange(exchange.url)), registry)
    signal = _signal(exchange.account)

    result = _handle(registry, signal)
    assert result.state is not None
    with engine.begin() as connection:
        result.state(connection)
    ledger = WorkflowLedger(engine)

    assert sa.inspect(engine).has_table("portfolio_plans")
    assert sa.inspect(engine).has_table("portfolio_finished_workflows")
    later = ledger.account_workflows(signal.account_id, excluding="another workflow")
    assert later.unfinished == (PlanRef(NOW, str(signal.correlation_id)),)


def test_register_when_signal_for_another_account_then_account_mismatch_and_nothing_planned(
    engine: Engine, exchange: PaperExchange
) -> None:
    registry = EventHandlerRegistry()
    register_handlers(_container(engine, **_on_exchange(exchange.url)), registry)
    signal = _signal(SAMPLE_ACCOUNT_ID)
    assert signal.account_id != exchange.account

    result = _handle(registry, signal)

    (failed,) = result.events
    assert isinstance(failed, WorkflowFailed)
    assert failed.reason == ACCOUNT_MISMATCH
    assert failed.details["event_account_id"] == SAMPLE_ACCOUNT_ID
    assert failed.details["broker_account_number"] == exchange.account
    assert result.state is None  # no plan recorded
    # the account's clock was not moved by a signal that is not its own
    assert exchange.exchange.account(exchange.account).session_date is None


def test_register_when_exchange_not_running_then_starts_and_the_signal_is_retried(
    engine: Engine,
) -> None:
    # the exchange is read when a signal arrives, not at start-up; until it answers the
    # error is transient, so the runtime consumes the signal again later
    url = f"http://127.0.0.1:{free_port()}"
    registry = EventHandlerRegistry()
    register_handlers(_container(engine, **_on_exchange(url, max_retries=0)), registry)

    with pytest.raises(BrokerUnavailableError):
        _handle(registry, _signal("PA0000000000"))


def test_account_broker_when_exchange_kind_then_alpaca_adapter_on_the_exchange_account(
    engine: Engine, paper_exchange: PaperExchange
) -> None:
    settings = _container(engine, **_on_exchange(paper_exchange.url)).settings

    broker = account_broker(settings)

    assert isinstance(broker, AlpacaBroker)
    account = broker.get_account()
    assert account.account_number == paper_exchange.account
    assert account.cash == Decimal(100000)


def test_account_broker_when_alpaca_kind_then_alpaca_adapter_in_paper_mode(engine: Engine) -> None:
    container = _container(
        engine,
        broker={"kind": "alpaca"},
        alpaca={"api_key": "key", "secret_key": "secret"},
    )
    settings = container.settings

    broker = account_broker(settings)

    assert isinstance(broker, AlpacaBroker)
    assert settings.require_alpaca().paper is True

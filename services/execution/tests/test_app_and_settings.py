"""Settings, wiring and the paper exchange: what ``python -m alchemiser_execution`` builds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_broker.stream import TradeUpdatesFeed
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.events import OrderSide, OrderStatus, OrderType
from alchemiser_common.observability import Metrics
from alchemiser_common.runtime.declaration import ServiceContainer
from alchemiser_common.runtime.handlers import (
    EventHandlerRegistry,
    HandlerContext,
    HandlerResult,
)
from alchemiser_common.settings import load_settings
from alchemiser_devtools.exchange import API_KEY, SECRET_KEY, PaperExchange
from alchemiser_execution import register_handlers
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.domain import Attempt, AttemptState
from alchemiser_execution.handlers import RebalancePlannedHandler
from alchemiser_execution.settings import METRICS_PORT, ExecutionSettings
from alchemiser_execution.testing import (
    buy,
    context,
    outputs_by_type,
    planned,
    sell,
    trigger_for,
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ALCHEMISER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def exchange(paper_exchange: PaperExchange) -> PaperExchange:
    paper_exchange.set_prices({"SPY": "510.25", "QQQ": "400.10"})
    return paper_exchange


def _exchange_env(exchange: PaperExchange) -> dict[str, str]:
    """The default broker kind (``exchange``) pointed at the test's exchange and account."""
    return {
        "ALCHEMISER_BROKER__EXCHANGE_URL": exchange.url,
        "ALCHEMISER_ALPACA__API_KEY": API_KEY,
        "ALCHEMISER_ALPACA__SECRET_KEY": SECRET_KEY,
    }


@pytest.fixture
def started_feeds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[TradeUpdatesFeed]]:
    """Every trade-updates feed started during the test; stopped at its end."""
    feeds: list[TradeUpdatesFeed] = []
    start = TradeUpdatesFeed.start

    def recording_start(feed: TradeUpdatesFeed) -> None:
        feeds.append(feed)
        start(feed)

    monkeypatch.setattr(TradeUpdatesFeed, "start", recording_start)
    yield feeds
    for feed in feeds:
        feed.stop()


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> ExecutionSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(ExecutionSettings)


def test_settings_when_defaults_then_common_runtime_and_waits_fit_the_poll_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch, ALCHEMISER_RUNTIME__POLL_TIMEOUT_MS="100")
    # no execution-specific runtime any more: batches and transactions are the common ones
    assert (settings.runtime.batch_size, settings.runtime.transaction_timeout_ms) == (100, 60_000)
    assert settings.runtime.poll_timeout_ms == 100
    assert settings.broker.kind == "exchange"
    assert settings.broker.exchange_url == "http://127.0.0.1:8300"
    assert settings.broker.stream is True
    settings.check_timing()
    limit = _settings(monkeypatch, ALCHEMISER_EXECUTION__ORDER_POLICY="limit")
    limit.check_timing()  # the default limit policy's worst case still fits


def test_settings_when_waits_exceed_max_poll_interval_then_error_names_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch, ALCHEMISER_EXECUTION__FILL_TIMEOUT_S="200")
    with pytest.raises(ConfigurationError, match="ALCHEMISER_EXECUTION__FILL_TIMEOUT_S"):
        settings.check_timing()
    with pytest.raises(ConfigurationError, match="max poll interval"):
        settings.check_timing()


def test_settings_when_live_without_confirmation_then_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigurationError, match="LIVE_TRADING_CONFIRMED"):
        _settings(
            monkeypatch,
            ALCHEMISER_BROKER__KIND="alpaca",
            ALCHEMISER_ALPACA__API_KEY="k",
            ALCHEMISER_ALPACA__SECRET_KEY="s",
            ALCHEMISER_ALPACA__PAPER="false",
        )


def _container(settings: ExecutionSettings) -> ServiceContainer[ExecutionSettings]:
    engine = create_engine_from_url(settings.database.url.get_secret_value())
    return ServiceContainer(settings=settings, engine=engine, metrics=Metrics())


def test_register_when_alpaca_without_keys_then_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = _settings(
        monkeypatch,
        ALCHEMISER_BROKER__KIND="alpaca",
        ALCHEMISER_DATABASE__URL=f"sqlite:///{tmp_path / 'svc.db'}",
    )
    with pytest.raises(ConfigurationError, match="ALCHEMISER_ALPACA__API_KEY"):
        register_handlers(_container(settings), EventHandlerRegistry())


def test_settings_when_exchange_url_is_not_http_then_configuration_error_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the default broker (the exchange) needs only its URL, which has a default; a wrong one
    # is a configuration error naming the variable, before any handler is registered
    with pytest.raises(ConfigurationError, match="ALCHEMISER_BROKER__EXCHANGE_URL"):
        _settings(
            monkeypatch,
            ALCHEMISER_DATABASE__URL=f"sqlite:///{tmp_path / 'svc.db'}",
            ALCHEMISER_BROKER__EXCHANGE_URL="127.0.0.1:8300",
        )


@pytest.fixture
def on_exchange(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    exchange: PaperExchange,
    started_feeds: list[TradeUpdatesFeed],
) -> Iterator[tuple[ServiceContainer[ExecutionSettings], EventHandlerRegistry]]:
    settings = _settings(
        monkeypatch,
        ALCHEMISER_DATABASE__URL=f"sqlite:///{tmp_path / 'svc.db'}",
        ALCHEMISER_EXECUTION__FILL_POLL_INTERVAL_S="0.01",
        **_exchange_env(exchange),
    )
    container = _container(settings)
    registry = EventHandlerRegistry()
    register_handlers(container, registry)
    yield container, registry
    container.engine.dispose()


def _handler(registry: EventHandlerRegistry) -> RebalancePlannedHandler:
    handler = registry.handler_for(planned([buy("SPY", "1")]))
    assert isinstance(handler, RebalancePlannedHandler)
    return handler


def _handle(registry: EventHandlerRegistry, event: Any, ctx: HandlerContext) -> dict[str, Any]:
    return outputs_by_type(_handler(registry)(event, ctx))


def _start(
    container: ServiceContainer[ExecutionSettings], registry: EventHandlerRegistry, event: Any
) -> Any:
    """Consume ``event``'s trigger with the registered handler, as the runtime would."""
    trigger = trigger_for(event)
    handler = registry.handler_for(trigger)
    assert handler is not None
    result = handler(trigger, context())
    assert isinstance(result, HandlerResult) and result.state is not None
    assert list(result.events) == []
    with container.engine.begin() as connection:
        result.state(connection)
    return event


def test_register_when_default_broker_then_plans_execute_on_the_exchange(
    on_exchange: tuple[ServiceContainer[ExecutionSettings], EventHandlerRegistry],
    exchange: PaperExchange,
    started_feeds: list[TradeUpdatesFeed],
    tmp_path: Path,
) -> None:
    container, registry = on_exchange
    # the attempts live in the service database: no sibling files
    assert sorted(path.name for path in tmp_path.glob("svc*.db")) == ["svc.db"]
    assert len(started_feeds) == 1  # fills are pushed by the exchange's trade-updates stream
    account = exchange.account
    items = [buy("SPY", "5102.50"), buy("QQQ", "1000")]
    plan = _start(container, registry, planned(items, account_id=account))
    bought = _handle(registry, plan, context())
    assert [(o.symbol, o.status, o.filled_qty) for o in bought["TradeExecuted"].orders] == [
        ("QQQ", OrderStatus.FILLED, Decimal("2.499375")),
        ("SPY", OrderStatus.FILLED, Decimal(10)),
    ]
    items = [sell("SPY", "5102.50", current="5102.50")]
    plan = _start(container, registry, planned(items, account_id=account))
    sold = _handle(registry, plan, context())
    assert sold["TradeExecuted"].orders[0].filled_qty == Decimal(10)
    broker = _handler(registry).executor.broker
    assert isinstance(broker, AlpacaBroker)
    assert broker.get_account().account_number == account
    assert broker.get_position("SPY") is None
    assert exchange.exchange.positions(account)[0].symbol == "QQQ"  # what the exchange holds
    assert (
        container.metrics.orders_submitted.labels(side="buy", broker="exchange")._value.get() == 2
    )


def test_register_when_pending_attempt_left_then_reconciled_before_handler_registered(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    exchange: PaperExchange,
    started_feeds: list[TradeUpdatesFeed],
) -> None:
    attempts_url = f"sqlite:///{tmp_path / 'svc.db'}"
    store = AttemptStore(create_engine_from_url(attempts_url))
    store.migrate()
    now = datetime.now(UTC)
    store.add_pending(
        Attempt(
            account_id="a",
            correlation_id="c",
            leg=0,
            attempt=0,
            client_order_id="alc-left-behind",
            symbol="SPY",
            side=OrderSide.BUY,
            order_type=OrderType.MARKET,
            qty=Decimal(1),
            limit_price=None,
            close_position=False,
            state=AttemptState.PENDING,
            created_at=now,
            updated_at=now,
        )
    )
    settings = _settings(
        monkeypatch,
        ALCHEMISER_DATABASE__URL=f"sqlite:///{tmp_path / 'svc.db'}",
        **_exchange_env(exchange),
    )
    registry = EventHandlerRegistry()
    register_handlers(_container(settings), registry)
    attempt = store.find_attempt("alc-left-behind")
    assert attempt is not None and attempt.state is AttemptState.NOT_PLACED
    assert registry.event_types() == ["RebalancePlanned", "WorkflowFailed", "WorkflowStarted"]


def test_settings_when_defaults_then_execution_has_its_own_metrics_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # strategy 9101, portfolio 9102, execution 9103: the three run side by side on one machine
    monkeypatch.delenv("ALCHEMISER_OBSERVABILITY__METRICS_PORT", raising=False)
    monkeypatch.setenv("ALCHEMISER_OBSERVABILITY__LOG_LEVEL", "debug")  # the section is set

    settings = load_settings(ExecutionSettings)

    assert settings.observability.metrics_port == METRICS_PORT == 9103
    assert settings.observability.log_level == "DEBUG"
    monkeypatch.setenv("ALCHEMISER_OBSERVABILITY__METRICS_PORT", "0")
    assert load_settings(ExecutionSettings).observability.metrics_port == 0

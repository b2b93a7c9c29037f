"""The one broker factory and settings section portfolio and execution share."""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from alchemiser_broker import OrderRequest, OrderSide, OrderStatus
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_broker.alpaca_settings import LIVE_CONFIRMATION_ENV
from alchemiser_broker.factory import BuiltBroker, build_broker
from alchemiser_broker.settings import (
    LOCAL_EXCHANGE_KEY_ID,
    AlpacaSettings,
    BrokerKind,
    BrokerSettings,
)
from alchemiser_broker.stream import TradeUpdatesFeed
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.settings import CommonSettings, load_settings
from alchemiser_devtools.exchange import API_KEY, SECRET_KEY, SESSION, PaperExchange
from alchemiser_exchange import account_number_for


class _ServiceSettings(CommonSettings):
    """The two sections as a service declares them."""

    broker: BrokerSettings = BrokerSettings()
    alpaca: AlpacaSettings | None = None


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("ALCHEMISER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _keys(**overrides: object) -> AlpacaSettings:
    values: dict[str, object] = {"api_key": SecretStr("key"), "secret_key": SecretStr("secret")}
    values.update(overrides)
    return AlpacaSettings.model_validate(values)


def _exchange(url: str, **overrides: object) -> BrokerSettings:
    return BrokerSettings.model_validate({"exchange_url": url, "stream": False, **overrides})


# -- settings --------------------------------------------------------------------------------


def test_settings_when_environment_empty_then_local_exchange_with_stream() -> None:
    settings = load_settings(_ServiceSettings)

    assert settings.broker.kind is BrokerKind.EXCHANGE
    assert settings.broker.exchange_url == "http://127.0.0.1:8300"
    assert settings.broker.stream is True
    assert settings.alpaca is None


def test_settings_when_loaded_from_environment_then_every_variable_reaches_its_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "alpaca")
    monkeypatch.setenv("ALCHEMISER_BROKER__EXCHANGE_URL", "http://127.0.0.1:9300/")
    monkeypatch.setenv("ALCHEMISER_BROKER__STREAM", "false")
    monkeypatch.setenv("ALCHEMISER_ALPACA__API_KEY", "key")
    monkeypatch.setenv("ALCHEMISER_ALPACA__SECRET_KEY", "secret")

    settings = load_settings(_ServiceSettings)

    assert settings.broker.kind is BrokerKind.ALPACA
    assert settings.broker.kind == "alpaca"
    assert settings.broker.exchange_url == "http://127.0.0.1:9300"  # trailing slash dropped
    assert settings.broker.stream is False
    assert settings.alpaca is not None and settings.alpaca.paper is True
    assert settings.alpaca.api_key.get_secret_value() == "key"


def test_settings_when_kind_unknown_then_configuration_error_names_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "ibkr")

    with pytest.raises(ConfigurationError, match="ALCHEMISER_BROKER__KIND"):
        load_settings(_ServiceSettings)


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8300", "ftp://127.0.0.1:8300", "http://", "ws://127.0.0.1:8300"]
)
def test_settings_when_exchange_url_not_http_then_configuration_error_names_variable(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__EXCHANGE_URL", url)

    with pytest.raises(ConfigurationError, match="ALCHEMISER_BROKER__EXCHANGE_URL"):
        load_settings(_ServiceSettings)


def test_settings_when_exchange_url_invalid_in_code_then_validation_error_names_field() -> None:
    with pytest.raises(ValidationError, match="exchange_url"):
        BrokerSettings(exchange_url="localhost:8300")


def test_settings_when_stream_not_a_boolean_then_configuration_error_names_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__STREAM", "sometimes")

    with pytest.raises(ConfigurationError, match="ALCHEMISER_BROKER__STREAM"):
        load_settings(_ServiceSettings)


def test_settings_when_removed_simulated_variable_set_then_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__SIMULATED__DATASET_DIR", str(tmp_path))

    with pytest.raises(ConfigurationError, match="ALCHEMISER_BROKER__SIMULATED"):
        load_settings(_ServiceSettings)


@pytest.mark.parametrize(
    ("url", "stream_url"),
    [
        ("http://127.0.0.1:8300", "ws://127.0.0.1:8300/stream"),
        ("https://exchange.example/paper/", "wss://exchange.example/paper/stream"),
    ],
)
def test_settings_when_exchange_url_given_then_stream_url_follows(
    url: str, stream_url: str
) -> None:
    assert BrokerSettings(exchange_url=url).exchange_stream_url == stream_url


def test_adapter_settings_when_exchange_then_every_url_points_at_it() -> None:
    effective = BrokerSettings(exchange_url="http://127.0.0.1:9300").adapter_settings(None)

    assert effective.url_override == "http://127.0.0.1:9300"
    assert effective.data_url_override == "http://127.0.0.1:9300"
    assert effective.stream_url_override == "ws://127.0.0.1:9300/stream"
    assert effective.session_url == "http://127.0.0.1:9300/exchange/v1/session"
    assert effective.paper is True


def test_adapter_settings_when_alpaca_then_alpaca_endpoints_and_no_session_url() -> None:
    alpaca = _keys()

    effective = BrokerSettings(kind=BrokerKind.ALPACA).adapter_settings(alpaca)

    assert effective is alpaca
    assert (effective.url_override, effective.data_url_override) == (None, None)
    assert (effective.stream_url_override, effective.session_url) == (None, None)


# -- build_broker: Alpaca -------------------------------------------------------------------


def test_build_when_alpaca_kind_then_alpaca_adapter_in_paper_mode() -> None:
    alpaca = _keys()

    built = build_broker(BrokerSettings(kind=BrokerKind.ALPACA, stream=False), alpaca)

    assert isinstance(built.broker, AlpacaBroker)
    assert (built.name, built.updates) == ("alpaca", None)
    assert alpaca.paper is True
    assert repr(built.broker) == "AlpacaBroker(paper=True)"


def test_build_when_live_confirmed_then_named_alpaca_live() -> None:
    alpaca = _keys(paper=False, live_trading_confirmed=True)

    built = build_broker(BrokerSettings(kind=BrokerKind.ALPACA), alpaca)

    assert built.name == "alpaca-live"
    assert repr(built.broker) == "AlpacaBroker(paper=False)"
    assert isinstance(built.updates, TradeUpdatesFeed)
    assert "url=None" in repr(built.updates)  # Alpaca's own stream


def test_build_when_live_not_confirmed_then_configuration_error_names_variable() -> None:
    unchecked = AlpacaSettings.model_construct(
        api_key=SecretStr("key"), secret_key=SecretStr("secret"), paper=False
    )

    with pytest.raises(ConfigurationError, match=LIVE_CONFIRMATION_ENV):
        build_broker(BrokerSettings(kind=BrokerKind.ALPACA), unchecked)


def test_build_when_alpaca_kind_without_keys_then_configuration_error_names_them() -> None:
    with pytest.raises(ConfigurationError, match="ALCHEMISER_ALPACA__API_KEY"):
        build_broker(BrokerSettings(kind=BrokerKind.ALPACA), None)


# -- build_broker: the paper exchange -------------------------------------------------------


def test_build_when_exchange_kind_without_keys_then_local_identity_account(
    paper_exchange: PaperExchange,
) -> None:
    built = build_broker(_exchange(paper_exchange.url), None)

    assert isinstance(built.broker, AlpacaBroker)
    assert built.name == "exchange"
    account = built.broker.get_account()
    assert account.account_number == account_number_for(LOCAL_EXCHANGE_KEY_ID)
    assert account.account_number != paper_exchange.account
    effective = BrokerSettings().adapter_settings(None)
    assert effective.api_key.get_secret_value() == LOCAL_EXCHANGE_KEY_ID
    assert effective.secret_key.get_secret_value() == LOCAL_EXCHANGE_KEY_ID


def test_build_when_exchange_kind_with_keys_then_their_account_and_paper_forced(
    paper_exchange: PaperExchange,
) -> None:
    alpaca = _keys(
        api_key=SecretStr(API_KEY),
        secret_key=SecretStr(SECRET_KEY),
        paper=False,
        live_trading_confirmed=True,
    )

    built = build_broker(_exchange(paper_exchange.url), alpaca)

    assert built.name == "exchange"
    assert repr(built.broker) == "AlpacaBroker(paper=True)"
    assert built.broker.get_account().account_number == paper_exchange.account


def test_build_when_stream_on_then_feed_points_at_the_exchange_stream(
    paper_exchange: PaperExchange,
) -> None:
    built = build_broker(_exchange(paper_exchange.url, stream=True), None)

    assert isinstance(built.updates, TradeUpdatesFeed)
    assert f"url={paper_exchange.stream_url!r}" in repr(built.updates)
    assert built.updates.live is False  # built, not started


def test_build_when_stream_off_then_no_feed(paper_exchange: PaperExchange) -> None:
    assert build_broker(_exchange(paper_exchange.url), None).updates is None


def test_build_when_exchange_kind_then_use_session_moves_the_account_clock(
    paper_exchange: PaperExchange,
) -> None:
    broker = build_broker(_exchange(paper_exchange.url), None).broker
    assert broker.get_clock().timestamp.date() == SESSION

    broker.use_session(date(2025, 3, 15))

    clock = broker.get_clock()
    assert (clock.timestamp.date(), clock.is_open) == (date(2025, 3, 15), False)


def test_build_when_two_services_share_settings_then_they_share_one_account(
    paper_exchange: PaperExchange,
) -> None:
    settings = _exchange(paper_exchange.url)
    portfolio: BuiltBroker = build_broker(settings, None)
    execution: BuiltBroker = build_broker(settings, None)

    order = execution.broker.submit_order(
        OrderRequest(client_order_id="a", symbol="SPY", side=OrderSide.BUY, qty=Decimal(1))
    )

    assert order.status is OrderStatus.FILLED
    position = portfolio.broker.get_position("SPY")
    assert position is not None and position.qty == Decimal(1)
    assert portfolio.broker.get_order_by_client_id("a") == order
    assert portfolio.broker.get_account() == execution.broker.get_account()

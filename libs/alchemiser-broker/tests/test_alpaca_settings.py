"""AlpacaSettings: paper by default, live only when confirmed; secrets never leak."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from alchemiser_broker import BrokerAuthError, BrokerUnavailableError
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_broker.alpaca_http import TimeoutSession
from alchemiser_broker.alpaca_settings import LIVE_CONFIRMATION_ENV, AlpacaSettings
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.settings import load_settings, masked
from alchemiser_devtools.exchange import API_KEY, SECRET_KEY, PaperExchange, adapter_settings
from alchemiser_devtools.faults import ALPACA_ROUTES, Fault, FaultProxy

SECRET = "s3cr3t-VALUE-that-must-not-leak"
LEAK_KEY = "leak-test-key-id"


@pytest.fixture
def leaky(paper_exchange: PaperExchange) -> PaperExchange:
    """The exchange with an account whose secret is :data:`SECRET` (key :data:`LEAK_KEY`)."""
    paper_exchange.exchange.open_account(LEAK_KEY, SECRET)
    return paper_exchange


class _ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALCHEMISER_", env_nested_delimiter="__")

    alpaca: AlpacaSettings


def test_settings_when_defaults_then_paper_trading() -> None:
    settings = AlpacaSettings(api_key=SecretStr("k"), secret_key=SecretStr("s"))

    assert settings.paper is True
    assert settings.is_live is False
    assert settings.request_timeout_s == 10.0


def test_settings_when_live_without_confirmation_then_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=LIVE_CONFIRMATION_ENV):
        AlpacaSettings(api_key=SecretStr("k"), secret_key=SecretStr("s"), paper=False)


def test_settings_when_live_from_environment_without_confirmation_then_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_ALPACA__API_KEY", "k")
    monkeypatch.setenv("ALCHEMISER_ALPACA__SECRET_KEY", SECRET)
    monkeypatch.setenv("ALCHEMISER_ALPACA__PAPER", "false")

    with pytest.raises(ConfigurationError, match="ALCHEMISER_ALPACA__LIVE_TRADING_CONFIRMED"):
        load_settings(_ServiceSettings)

    monkeypatch.setenv("ALCHEMISER_ALPACA__LIVE_TRADING_CONFIRMED", "true")
    assert load_settings(_ServiceSettings).alpaca.is_live is True


def test_settings_when_confirmed_but_paper_then_still_paper() -> None:
    settings = AlpacaSettings(
        api_key=SecretStr("k"), secret_key=SecretStr("s"), live_trading_confirmed=True
    )

    assert settings.is_live is False


def test_broker_when_settings_bypass_validation_then_live_still_refused() -> None:
    unchecked = AlpacaSettings.model_construct(
        api_key=SecretStr("k"), secret_key=SecretStr("s"), paper=False
    )

    with pytest.raises(ConfigurationError, match=LIVE_CONFIRMATION_ENV):
        AlpacaBroker(unchecked)


def test_broker_when_built_then_sdk_retries_off_and_timeout_set(
    paper_exchange: PaperExchange,
) -> None:
    from alpaca.trading.client import TradingClient

    injected = TradingClient(
        api_key=API_KEY,
        secret_key=SECRET_KEY,
        raw_data=True,
        url_override=paper_exchange.url,
    )
    settings = adapter_settings(paper_exchange.url, request_timeout_s=1.5)

    AlpacaBroker(settings, trading_client=injected)

    assert isinstance(injected._session, TimeoutSession)
    assert injected._session.default_timeout == 1.5
    assert injected._retry == 0


def test_broker_when_injected_client_not_raw_then_configuration_error(
    paper_exchange: PaperExchange,
) -> None:
    from alpaca.trading.client import TradingClient

    wrapped = TradingClient(api_key="k", secret_key="s", url_override=paper_exchange.url)

    with pytest.raises(ConfigurationError, match="raw_data"):
        AlpacaBroker(adapter_settings(paper_exchange.url), trading_client=wrapped)


def test_secrets_when_settings_and_broker_printed_then_masked(leaky: PaperExchange) -> None:
    settings = adapter_settings(
        leaky.url, api_key=SecretStr(LEAK_KEY), secret_key=SecretStr(SECRET)
    )
    broker = AlpacaBroker(settings)

    assert broker.get_account().cash > 0  # the secret is the account's real one
    for text in (repr(settings), str(settings), str(masked(settings)), repr(broker)):
        assert SECRET not in text
        assert LEAK_KEY not in repr(settings)


@pytest.fixture
def leaky_proxy(leaky: PaperExchange) -> Iterator[FaultProxy]:
    with FaultProxy(leaky.url, routes=ALPACA_ROUTES) as running:
        yield running


def test_secrets_when_calls_fail_then_absent_from_errors_and_logs(
    leaky_proxy: FaultProxy,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    key = SecretStr(LEAK_KEY)
    good = AlpacaBroker(
        adapter_settings(leaky_proxy.url, api_key=key, secret_key=SecretStr(SECRET), max_retries=1),
        sleep=lambda _: None,
    )
    bad = AlpacaBroker(
        adapter_settings(leaky_proxy.url, api_key=key, secret_key=SecretStr(SECRET + "-wrong")),
        sleep=lambda _: None,
    )
    leaky_proxy.inject("GET /v2/account", Fault.BAD_GATEWAY_HTML, times=2)
    errors: list[Exception] = []

    with pytest.raises(BrokerUnavailableError) as unavailable:
        good.get_account()
    errors.append(unavailable.value)
    with pytest.raises(BrokerAuthError) as refused:
        bad.get_account()
    errors.append(refused.value)

    captured = capsys.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert "502" in logged  # the failures were logged ...
    for text in [logged, *(str(e) for e in errors), *(repr(e) for e in errors)]:
        assert SECRET not in text  # ... without the secret

"""PortfolioSettings from the environment: defaults, overrides and start-up refusals."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser_broker.settings import LOCAL_EXCHANGE_KEY_ID, BrokerKind
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.runtime.service import run_service
from alchemiser_common.settings import load_settings
from alchemiser_portfolio.domain import PlannerConfig
from alchemiser_portfolio.service import SERVICE
from alchemiser_portfolio.settings import METRICS_PORT, PortfolioSettings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ALCHEMISER_* variable and no .env file from the developer's shell leaks in."""
    for name in list(os.environ):
        if name.startswith("ALCHEMISER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_load_when_no_environment_then_original_rules_and_local_exchange() -> None:
    settings = load_settings(PortfolioSettings)

    assert settings.service_name == "portfolio"
    assert settings.broker.kind is BrokerKind.EXCHANGE
    assert settings.broker.exchange_url == "http://127.0.0.1:8300"
    assert settings.alpaca is None
    assert settings.portfolio.planner_config() == PlannerConfig()
    # no keys: the exchange's local identity, whose account it opens on first use
    adapter = settings.broker.adapter_settings(settings.alpaca)
    assert adapter.api_key.get_secret_value() == LOCAL_EXCHANGE_KEY_ID
    assert adapter.secret_key.get_secret_value() == LOCAL_EXCHANGE_KEY_ID
    assert adapter.url_override == "http://127.0.0.1:8300"


def test_load_when_planner_variables_set_then_planner_config_uses_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_PORTFOLIO__CASH_RESERVE_PCT", "0.05")
    monkeypatch.setenv("ALCHEMISER_PORTFOLIO__MIN_TRADE_AMOUNT", "25")
    monkeypatch.setenv("ALCHEMISER_PORTFOLIO__WEIGHT_SUM_MIN", "0.995")

    config = load_settings(PortfolioSettings).portfolio.planner_config()

    assert config.cash_reserve_pct == Decimal("0.05")
    assert config.min_trade_amount == Decimal("25")
    assert config.weight_sum_min == Decimal("0.995")
    assert config.weight_sum_max == Decimal("1.01")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ALCHEMISER_PORTFOLIO__CASH_RESERVE_PCT", "1"),
        ("ALCHEMISER_PORTFOLIO__CASH_RESERVE_PCT", "-0.01"),
        ("ALCHEMISER_PORTFOLIO__CASH_RESERVE_PCT", "NaN"),
        ("ALCHEMISER_PORTFOLIO__MIN_TRADE_AMOUNT", "five"),
        ("ALCHEMISER_BROKER__KIND", "ibkr"),
        ("ALCHEMISER_BROKER__KIND", "simulated"),
        ("ALCHEMISER_BROKER__EXCHANGE_URL", "127.0.0.1:8300"),
        ("ALCHEMISER_BROKER__STREAM", "sometimes"),
    ],
)
def test_load_when_value_invalid_then_configuration_error_names_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError, match=variable):
        load_settings(PortfolioSettings)


def test_load_when_previous_workflow_wait_set_then_used_and_default_is_900_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings(PortfolioSettings).portfolio.previous_workflow_wait_s == 900
    monkeypatch.setenv("ALCHEMISER_PORTFOLIO__PREVIOUS_WORKFLOW_WAIT_S", "30")

    assert load_settings(PortfolioSettings).portfolio.previous_workflow_wait_s == 30


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_load_when_previous_workflow_wait_invalid_then_configuration_error_names_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ALCHEMISER_PORTFOLIO__PREVIOUS_WORKFLOW_WAIT_S", value)

    with pytest.raises(ConfigurationError, match="ALCHEMISER_PORTFOLIO__PREVIOUS_WORKFLOW_WAIT_S"):
        load_settings(PortfolioSettings)


def test_load_when_weight_sum_bounds_crossed_then_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_PORTFOLIO__WEIGHT_SUM_MIN", "1.02")

    with pytest.raises(ConfigurationError, match=r"ALCHEMISER_PORTFOLIO.*weight_sum_min 1\.02"):
        load_settings(PortfolioSettings)


def test_load_when_alpaca_kind_without_credentials_then_configuration_error_names_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "alpaca")

    with pytest.raises(ConfigurationError, match="ALCHEMISER_ALPACA__API_KEY"):
        load_settings(PortfolioSettings)


def test_load_when_alpaca_secret_missing_then_configuration_error_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "alpaca")
    monkeypatch.setenv("ALCHEMISER_ALPACA__API_KEY", "key")

    with pytest.raises(ConfigurationError, match="ALCHEMISER_ALPACA__SECRET_KEY"):
        load_settings(PortfolioSettings)


def test_load_when_alpaca_credentials_set_then_paper_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "alpaca")
    monkeypatch.setenv("ALCHEMISER_ALPACA__API_KEY", "key")
    monkeypatch.setenv("ALCHEMISER_ALPACA__SECRET_KEY", "secret")

    alpaca = load_settings(PortfolioSettings).require_alpaca()

    assert alpaca.paper is True
    assert alpaca.secret_key.get_secret_value() == "secret"


def test_load_when_live_without_confirmation_then_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "alpaca")
    monkeypatch.setenv("ALCHEMISER_ALPACA__API_KEY", "key")
    monkeypatch.setenv("ALCHEMISER_ALPACA__SECRET_KEY", "secret")
    monkeypatch.setenv("ALCHEMISER_ALPACA__PAPER", "false")

    with pytest.raises(ConfigurationError, match="LIVE_TRADING_CONFIRMED"):
        load_settings(PortfolioSettings)


def test_load_when_exchange_variables_set_then_adapter_points_at_the_exchange_with_the_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "exchange")
    monkeypatch.setenv("ALCHEMISER_BROKER__EXCHANGE_URL", "http://127.0.0.1:8411/")
    monkeypatch.setenv("ALCHEMISER_ALPACA__API_KEY", "paper-key")
    monkeypatch.setenv("ALCHEMISER_ALPACA__SECRET_KEY", "paper-secret")

    settings = load_settings(PortfolioSettings)
    adapter = settings.broker.adapter_settings(settings.alpaca)

    assert settings.broker.kind is BrokerKind.EXCHANGE
    assert settings.broker.exchange_url == "http://127.0.0.1:8411"
    assert adapter.api_key.get_secret_value() == "paper-key"
    assert adapter.secret_key.get_secret_value() == "paper-secret"
    assert adapter.paper is True
    assert adapter.url_override == adapter.data_url_override == "http://127.0.0.1:8411"
    assert adapter.session_url == "http://127.0.0.1:8411/exchange/v1/session"


def test_load_when_simulated_broker_variables_set_then_configuration_error_names_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the simulated broker is gone: its old settings are refused, not silently ignored
    monkeypatch.setenv("ALCHEMISER_BROKER__SIMULATED__DATASET_DIR", str(tmp_path))

    with pytest.raises(ConfigurationError, match="ALCHEMISER_BROKER__SIMULATED"):
        load_settings(PortfolioSettings)


def test_run_service_when_alpaca_kind_without_credentials_then_exits_with_config_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "alpaca")

    code = run_service(SERVICE)

    assert code == 2
    assert "ALCHEMISER_ALPACA__API_KEY" in capsys.readouterr().out


def test_settings_when_defaults_then_portfolio_has_its_own_metrics_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # strategy 9101, portfolio 9102, execution 9103: the three run side by side on one machine
    monkeypatch.delenv("ALCHEMISER_OBSERVABILITY__METRICS_PORT", raising=False)
    monkeypatch.setenv("ALCHEMISER_OBSERVABILITY__LOG_LEVEL", "debug")  # the section is set

    settings = load_settings(PortfolioSettings)

    assert settings.observability.metrics_port == METRICS_PORT == 9102
    assert settings.observability.log_level == "DEBUG"
    monkeypatch.setenv("ALCHEMISER_OBSERVABILITY__METRICS_PORT", "0")
    assert load_settings(PortfolioSettings).observability.metrics_port == 0

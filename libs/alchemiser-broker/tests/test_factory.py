"""The one broker factory and settings section portfolio and execution share."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from alchemiser_broker import OrderRequest, OrderSide
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_broker.factory import (
    BuiltBroker,
    build_broker,
)
from alchemiser_broker.settings import AlpacaSettings, BrokerKind, BrokerSettings
from alchemiser_broker.simulated import SimulatedBroker
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.settings import CommonSettings, load_settings

NOW = datetime(2025, 3, 7, 20, 0, tzinfo=UTC)
BARS = """date,symbol,open,high,low,close,volume
2025-03-06,SPY,499,501,498,500.00,1000
2025-03-07,SPY,500,512,499,510.25,1000
"""


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


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    directory = tmp_path / "bars"
    directory.mkdir()
    (directory / "bars.csv").write_text(BARS, encoding="utf-8")
    return directory


def _simulated(dataset_dir: Path, **simulated: Any) -> BrokerSettings:
    return BrokerSettings.model_validate(
        {"simulated": {"dataset_dir": dataset_dir, "simulated_date": "2025-03-07", **simulated}}
    )


def _build(settings: BrokerSettings, service_url: str, **kwargs: Any) -> BuiltBroker:
    return build_broker(settings, None, service_name="svc", service_url=service_url, **kwargs)


def _dispose(built: BuiltBroker) -> None:
    if built.engine is not None:
        built.engine.dispose()


def test_settings_when_loaded_from_environment_then_every_variable_reaches_its_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "alpaca")
    monkeypatch.setenv("ALCHEMISER_BROKER__SIMULATED__DATASET_DIR", str(tmp_path))
    monkeypatch.setenv("ALCHEMISER_BROKER__SIMULATED__DATABASE_URL", "sqlite:///sim.db")
    monkeypatch.setenv("ALCHEMISER_BROKER__SIMULATED__SIMULATED_DATE", "2025-03-14")
    monkeypatch.setenv("ALCHEMISER_BROKER__SIMULATED__STARTING_CASH", "2500")
    monkeypatch.setenv("ALCHEMISER_ALPACA__API_KEY", "key")
    monkeypatch.setenv("ALCHEMISER_ALPACA__SECRET_KEY", "secret")

    settings = load_settings(_ServiceSettings)
    simulated = settings.broker.simulated
    behaviour = simulated.broker_settings()

    assert settings.broker.kind is BrokerKind.ALPACA
    assert settings.broker.kind == "alpaca"
    assert simulated.dataset_dir == tmp_path
    assert simulated.database_url == SecretStr("sqlite:///sim.db")
    assert behaviour.simulated_date == date(2025, 3, 14)
    assert behaviour.starting_cash == Decimal("2500")
    assert not hasattr(behaviour, "dataset_dir")
    assert settings.alpaca is not None and settings.alpaca.paper is True


def test_settings_when_kind_unknown_then_configuration_error_names_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "ibkr")

    with pytest.raises(ConfigurationError, match="ALCHEMISER_BROKER__KIND"):
        load_settings(_ServiceSettings)


def test_build_when_alpaca_kind_then_alpaca_adapter_in_paper_mode() -> None:
    alpaca = AlpacaSettings(api_key=SecretStr("key"), secret_key=SecretStr("secret"))

    built = build_broker(
        BrokerSettings(kind=BrokerKind.ALPACA), alpaca, service_name="svc", service_url="sqlite://"
    )

    assert isinstance(built.broker, AlpacaBroker)
    assert (built.name, built.engine) == ("alpaca", None)
    assert alpaca.paper is True


def test_build_when_live_confirmed_then_named_alpaca_live() -> None:
    alpaca = AlpacaSettings(
        api_key=SecretStr("key"),
        secret_key=SecretStr("secret"),
        paper=False,
        live_trading_confirmed=True,
    )

    built = build_broker(
        BrokerSettings(kind=BrokerKind.ALPACA), alpaca, service_name="svc", service_url="sqlite://"
    )

    assert built.name == "alpaca-live"


def test_build_when_alpaca_kind_without_keys_then_configuration_error_names_them() -> None:
    with pytest.raises(ConfigurationError, match="ALCHEMISER_ALPACA__API_KEY"):
        _build(BrokerSettings(kind=BrokerKind.ALPACA), "sqlite://")


def test_build_when_dataset_dir_unset_then_configuration_error_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ALCHEMISER_BROKER__SIMULATED__DATASET_DIR"):
        _build(BrokerSettings(), f"sqlite:///{tmp_path / 'svc.db'}")


def test_build_when_dataset_dir_missing_then_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"DATASET_DIR=.*nowhere: not a directory"):
        _build(_simulated(tmp_path / "nowhere"), f"sqlite:///{tmp_path / 'svc.db'}")


def test_build_when_dataset_malformed_or_empty_then_configuration_error(tmp_path: Path) -> None:
    bad, empty = tmp_path / "bad", tmp_path / "empty"
    bad.mkdir()
    empty.mkdir()
    (bad / "bad.csv").write_text("date,symbol,close\n2025-03-14,SPY,1\n", encoding="utf-8")

    with pytest.raises(ConfigurationError, match=r"DATASET_DIR=.*bad\.csv"):
        _build(_simulated(bad), f"sqlite:///{tmp_path / 'svc.db'}")
    with pytest.raises(ConfigurationError, match=r"DATASET_DIR=.*empty"):
        _build(_simulated(empty), f"sqlite:///{tmp_path / 'svc.db'}")


def test_build_when_no_database_configured_and_no_engine_given_then_service_database_used(
    tmp_path: Path, dataset: Path
) -> None:
    built = _build(_simulated(dataset), f"sqlite:///{tmp_path / 'svc.db'}")
    try:
        assert isinstance(built.broker, SimulatedBroker)
        assert built.name == "simulated"
        assert built.engine is not None
        assert (tmp_path / "svc.db").exists()
        assert not (tmp_path / "svc-simulated-broker.db").exists()  # no sibling files any more
    finally:
        _dispose(built)


def test_build_when_service_database_then_service_engine_reused_and_account_shared(
    tmp_path: Path, dataset: Path
) -> None:
    service = f"sqlite:///{tmp_path / 'svc.db'}"
    engine: Engine = create_engine_from_url(service)
    try:
        built = _build(
            _simulated(dataset),
            service,
            service_engine=engine,
            clock=lambda: NOW,
        )
        broker = built.broker
        broker.submit_order(
            OrderRequest(client_order_id="a", symbol="SPY", side=OrderSide.BUY, qty=Decimal(1))
        )

        assert built.engine is None  # the service's engine, not the broker's
        assert not (tmp_path / "svc-simulated-broker.db").exists()
        position = broker.get_position("SPY")
        assert position is not None and position.qty == Decimal(1)
        order = broker.get_order_by_client_id("a")
        assert order is not None and order.submitted_at == NOW
    finally:
        engine.dispose()


def test_build_when_service_database_configured_elsewhere_then_own_engine(
    tmp_path: Path, dataset: Path
) -> None:
    service = f"sqlite:///{tmp_path / 'svc.db'}"
    other = SecretStr(f"sqlite:///{tmp_path / 'sim.db'}")
    engine = create_engine_from_url(service)
    try:
        built = _build(
            _simulated(dataset, database_url=other),
            service,
            service_engine=engine,
        )
        assert built.engine is not None and built.engine is not engine
        assert (tmp_path / "sim.db").exists()
        _dispose(built)
    finally:
        engine.dispose()

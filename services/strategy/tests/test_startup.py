"""Settings and start-up: defaults, environment, and what stops the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest

from alchemiser_common.errors import ConfigurationError
from alchemiser_common.events import WorkflowStarted
from alchemiser_common.observability import Metrics
from alchemiser_common.runtime.declaration import ServiceContainer
from alchemiser_common.runtime.handlers import EventHandlerRegistry
from alchemiser_common.settings import load_settings, masked
from alchemiser_strategy import register_handlers
from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR
from alchemiser_strategy.app import build_engine
from alchemiser_strategy.service import SERVICE
from alchemiser_strategy.settings import (
    BUNDLED_STRATEGIES_DIR,
    DEFAULT_WEIGHTS,
    METRICS_PORT,
    StrategySettings,
    read_config_weights,
)

PREFIX = "ALCHEMISER_STRATEGY__"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name in list(os.environ):
        if name.startswith(PREFIX) or name == "ALCHEMISER_SERVICE_NAME":
            monkeypatch.delenv(name)


def _register(settings: StrategySettings) -> EventHandlerRegistry:
    registry = EventHandlerRegistry()
    container = ServiceContainer(settings=settings, engine=cast(Any, None), metrics=Metrics())
    register_handlers(container, registry)
    return registry


def test_settings_when_defaults_then_original_mix_on_bundled_files_and_demo_data() -> None:
    settings = load_settings(StrategySettings)

    section = settings.strategy
    assert settings.service_name == "strategy"
    assert section.weights == {
        "klm": Decimal("0.20"),
        "nuclear": Decimal("0.15"),
        "tecl": Decimal("0.50"),
        "tqqq_ftlt": Decimal("0.15"),
    }
    assert sum(DEFAULT_WEIGHTS.values()) == Decimal(1)
    assert section.strategies_dir == BUNDLED_STRATEGIES_DIR
    assert all(path.is_file() for path in section.strategy_files().values())
    assert section.market_data_source == "dataset"
    assert section.dataset_dir == DEMO_DATASET_DIR


def test_settings_when_weights_given_as_json_then_parsed_and_suffix_stripped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{PREFIX}WEIGHTS", json.dumps({"klm.clj": "1", "tecl": "3"}))

    settings = load_settings(StrategySettings)

    assert settings.strategy.weights == {"klm": Decimal(1), "tecl": Decimal(3)}


def test_settings_when_folder_has_strategies_toml_then_its_weights_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "strategies.toml").write_text('[weights]\nklm = "2"\ntecl = 1\n')
    monkeypatch.setenv(f"{PREFIX}STRATEGIES_DIR", str(tmp_path))

    settings = load_settings(StrategySettings)

    assert settings.strategy.weights == {"klm": Decimal(2), "tecl": Decimal(1)}
    assert read_config_weights(BUNDLED_STRATEGIES_DIR) == {
        "klm": "0.20",
        "nuclear": "0.15",
        "tqqq_ftlt": "0.15",
        "tecl": "0.50",
    }  # the bundled file is the default mix


def test_settings_when_weights_variable_set_then_it_wins_over_strategies_toml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "strategies.toml").write_text('[weights]\nklm = "2"\n')
    monkeypatch.setenv(f"{PREFIX}STRATEGIES_DIR", str(tmp_path))
    monkeypatch.setenv(f"{PREFIX}WEIGHTS", json.dumps({"tecl": "1"}))

    assert load_settings(StrategySettings).strategy.weights == {"tecl": Decimal(1)}


@pytest.mark.parametrize("text", ["[weights\n", "weights = 3\n", "[weights]\nklm = true\n"])
def test_settings_when_strategies_toml_invalid_then_configuration_error_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str
) -> None:
    (tmp_path / "strategies.toml").write_text(text)
    monkeypatch.setenv(f"{PREFIX}STRATEGIES_DIR", str(tmp_path))

    with pytest.raises(ConfigurationError, match=r"strategies\.toml"):
        load_settings(StrategySettings)


@pytest.mark.parametrize("weights", [{"klm": "-0.1"}, {"klm": "0"}, {"../x": "1"}])
def test_settings_when_weights_invalid_then_configuration_error_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, weights: dict[str, str]
) -> None:
    monkeypatch.setenv(f"{PREFIX}WEIGHTS", json.dumps(weights))

    with pytest.raises(ConfigurationError, match=f"{PREFIX}WEIGHTS"):
        load_settings(StrategySettings)


def test_register_when_alpaca_source_without_credentials_then_error_names_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{PREFIX}MARKET_DATA_SOURCE", "alpaca")
    settings = load_settings(StrategySettings)

    with pytest.raises(ConfigurationError, match=f"{PREFIX}ALPACA__API_KEY"):
        _register(settings)


def test_settings_when_alpaca_secret_key_missing_then_error_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{PREFIX}MARKET_DATA_SOURCE", "alpaca")
    monkeypatch.setenv(f"{PREFIX}ALPACA__API_KEY", "key-id")

    with pytest.raises(ConfigurationError, match=f"{PREFIX}ALPACA__SECRET_KEY"):
        load_settings(StrategySettings)


def test_settings_when_alpaca_credentials_given_then_engine_built_and_secrets_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{PREFIX}MARKET_DATA_SOURCE", "alpaca")
    monkeypatch.setenv(f"{PREFIX}ALPACA__API_KEY", "key-id-123")
    monkeypatch.setenv(f"{PREFIX}ALPACA__SECRET_KEY", "very-secret-456")
    settings = load_settings(StrategySettings)

    engine = build_engine(settings)

    assert type(engine.market_data).__name__ == "AlpacaBarsMarketData"
    dumped = json.dumps(masked(settings))
    assert "very-secret-456" not in dumped
    assert "key-id-123" not in dumped


def test_register_when_defaults_then_one_workflow_started_handler() -> None:
    registry = _register(load_settings(StrategySettings))

    assert registry.event_types() == ["WorkflowStarted"]
    assert len(registry) == 1


def test_service_when_declared_then_runtime_reads_strategy_settings_and_subscribes() -> None:
    assert SERVICE.name == "strategy"
    assert SERVICE.settings is StrategySettings
    assert SERVICE.topics() == [WorkflowStarted.TOPIC]


def test_register_when_strategy_file_has_syntax_error_then_error_gives_file_line_col(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "good.clj").write_text('(defsymphony "g" {} (asset "SPY"))')
    (tmp_path / "bad.clj").write_text('(defsymphony "b" {}\n  (asset "SPY"')
    monkeypatch.setenv(f"{PREFIX}STRATEGIES_DIR", str(tmp_path))
    monkeypatch.setenv(f"{PREFIX}WEIGHTS", json.dumps({"good": "1", "bad": "1"}))

    with pytest.raises(ConfigurationError) as caught:
        _register(load_settings(StrategySettings))

    assert (
        str(caught.value)
        == f"{tmp_path / 'bad.clj'}:2:3: unclosed '(' (reached the end of the file)"
    )


def test_register_when_weighted_file_missing_then_error_names_the_file_and_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(f"{PREFIX}STRATEGIES_DIR", str(tmp_path))

    with pytest.raises(ConfigurationError, match=r"klm\.clj not found .*WEIGHTS"):
        _register(load_settings(StrategySettings))


def test_register_when_dataset_dir_is_not_a_dataset_then_error_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(f"{PREFIX}DATASET_DIR", str(tmp_path / "nowhere"))

    with pytest.raises(ConfigurationError, match=f"{PREFIX}DATASET_DIR=.*not a directory"):
        _register(load_settings(StrategySettings))


def test_main_when_strategy_file_has_syntax_error_then_process_exits_2_naming_file_line_col(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.clj").write_text('(defsymphony "b" {}\n  (bogus "SPY"))')
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ALCHEMISER_")},
        f"{PREFIX}STRATEGIES_DIR": str(tmp_path),
        f"{PREFIX}WEIGHTS": json.dumps({"bad": "1"}),
        "ALCHEMISER_DATABASE__URL": f"sqlite:///{tmp_path / 'inbox.db'}",
        "ALCHEMISER_OBSERVABILITY__METRICS_PORT": "0",
    }

    done = subprocess.run(
        [sys.executable, "-m", "alchemiser_strategy"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 2
    assert f"{tmp_path / 'bad.clj'}:2:4: unknown operator 'bogus'" in done.stdout + done.stderr


def test_settings_when_defaults_then_strategy_has_its_own_metrics_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # strategy 9101, portfolio 9102, execution 9103: the three run side by side on one machine
    monkeypatch.delenv("ALCHEMISER_OBSERVABILITY__METRICS_PORT", raising=False)
    monkeypatch.setenv("ALCHEMISER_OBSERVABILITY__LOG_LEVEL", "debug")  # the section is set

    settings = load_settings(StrategySettings)

    assert settings.observability.metrics_port == METRICS_PORT == 9101
    assert settings.observability.log_level == "DEBUG"
    monkeypatch.setenv("ALCHEMISER_OBSERVABILITY__METRICS_PORT", "0")
    assert load_settings(StrategySettings).observability.metrics_port == 0

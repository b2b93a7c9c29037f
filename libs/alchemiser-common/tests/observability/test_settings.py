from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from alchemiser_common.observability import ObservabilitySettings
from alchemiser_common.observability.settings import DEFAULT_METRICS_PORT, metrics_port_field


def test_settings_when_defaults_then_loopback_json_and_no_exporter() -> None:
    settings = ObservabilitySettings()

    assert settings.metrics_host == "127.0.0.1"
    assert settings.metrics_port == 9000
    assert settings.log_format == "json"
    assert settings.otel_exporter == "none"


def test_settings_when_level_lowercase_then_normalised() -> None:
    settings = ObservabilitySettings(log_level="debug")

    assert settings.log_level == "DEBUG"
    assert settings.level_number() == logging.DEBUG


@pytest.mark.parametrize(
    "bad",
    [{"log_level": "LOUD"}, {"metrics_port": 70000}, {"otel_exporter": "jaeger"}, {"x": 1}],
)
def test_settings_when_invalid_value_then_validation_error(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ObservabilitySettings.model_validate(bad)


class _ServiceObservability(ObservabilitySettings):
    metrics_port: int = metrics_port_field(9199)


def test_metrics_port_field_when_subclassed_then_own_default_and_same_bounds() -> None:
    assert ObservabilitySettings().metrics_port == DEFAULT_METRICS_PORT == 9000
    assert _ServiceObservability().metrics_port == 9199
    assert _ServiceObservability(log_level="debug").metrics_port == 9199
    assert _ServiceObservability(metrics_port=0).metrics_port == 0
    with pytest.raises(ValidationError):
        _ServiceObservability(metrics_port=70000)

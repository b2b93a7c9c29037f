from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from alchemiser_common.observability import ObservabilitySettings


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

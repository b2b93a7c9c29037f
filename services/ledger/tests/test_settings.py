"""LedgerSettings from the environment: defaults, the notification channels, start-up refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alchemiser_common.errors import ConfigurationError
from alchemiser_common.runtime.service import run_service
from alchemiser_common.settings import load_settings
from alchemiser_ledger.service import SERVICE
from alchemiser_ledger.settings import METRICS_PORT, LedgerSettings

PASSWORD = "s3cret-smtp-password"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ALCHEMISER_* variable and no .env file from the developer's shell leaks in."""
    for name in list(os.environ):
        if name.startswith("ALCHEMISER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_load_when_no_environment_then_no_channel_and_own_port() -> None:
    settings = load_settings(LedgerSettings)

    assert settings.service_name == "ledger"
    assert settings.notify.channels() == []
    assert settings.observability.metrics_port == METRICS_PORT == 9104
    assert SERVICE.topics() == [
        "execution.order.settled.v1",
        "strategy.signal.generated.v1",
        "workflow.completed.v1",
        "workflow.failed.v1",
    ]
    assert len(SERVICE.background) == 1  # the notification sender


def test_load_when_smtp_and_webhook_then_both_channels_and_secrets_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_NOTIFY__SMTP__HOST", "smtp.example.com")
    monkeypatch.setenv("ALCHEMISER_NOTIFY__SMTP__SENDER", "bot@example.com")
    monkeypatch.setenv("ALCHEMISER_NOTIFY__SMTP__RECIPIENTS", '["ops@example.com"]')
    monkeypatch.setenv("ALCHEMISER_NOTIFY__SMTP__USERNAME", "bot")
    monkeypatch.setenv("ALCHEMISER_NOTIFY__SMTP__PASSWORD", PASSWORD)
    monkeypatch.setenv("ALCHEMISER_NOTIFY__WEBHOOK__URL", "https://hooks.example.com/T/abc")
    monkeypatch.setenv("ALCHEMISER_LEDGER__DATABASE_URL", "sqlite:///ledger.db")

    settings = load_settings(LedgerSettings)

    assert settings.notify.channels() == ["email", "webhook"]
    assert settings.notify.smtp is not None and settings.notify.smtp.port == 587
    assert settings.notify.smtp.starttls is True
    assert PASSWORD not in repr(settings) and "abc" not in repr(settings.notify.webhook)


def test_load_when_smtp_without_recipients_then_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_NOTIFY__SMTP__HOST", "smtp.example.com")
    monkeypatch.setenv("ALCHEMISER_NOTIFY__SMTP__SENDER", "bot@example.com")
    monkeypatch.setenv("ALCHEMISER_NOTIFY__SMTP__RECIPIENTS", "[]")

    with pytest.raises(ConfigurationError, match="ALCHEMISER_NOTIFY__SMTP__RECIPIENTS"):
        load_settings(LedgerSettings)


def test_run_service_when_alpaca_kind_without_credentials_then_exits_with_config_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "alpaca")

    code = run_service(SERVICE)

    assert code == 2
    assert "ALCHEMISER_ALPACA__API_KEY" in capsys.readouterr().out

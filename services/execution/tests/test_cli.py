"""``alchemiser execution attempts`` and ``reconcile`` through typer's CliRunner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.db import create_engine_from_url
from alchemiser_devtools.exchange import PaperExchange, adapter_settings
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.cli import EXIT_CONFIG, app
from alchemiser_execution.testing import buy, context, make_handler, planned, register_workflow


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("ALCHEMISER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("ALCHEMISER_DATABASE__URL", f"sqlite:///{tmp_path / 'svc.db'}")


def test_attempts_when_workflow_executed_then_lists_its_orders(
    paper_exchange: PaperExchange, tmp_path: Path
) -> None:
    paper_exchange.set_prices({"TQQQ": "50"})
    store = AttemptStore(create_engine_from_url(f"sqlite:///{tmp_path / 'svc.db'}"))
    store.migrate()
    broker = AlpacaBroker(adapter_settings(paper_exchange.url), sleep=lambda _s: None)
    plan = planned([buy("TQQQ", "1000")], account_id=paper_exchange.account)
    event = register_workflow(store, plan)
    make_handler(broker, store)(event, context())

    result = CliRunner().invoke(app, ["attempts", str(event.correlation_id)])

    assert result.exit_code == 0, result.output
    assert "TQQQ" in result.output and "FILLED" in result.output


def test_reconcile_when_broker_misconfigured_then_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALCHEMISER_BROKER__KIND", "alpaca")
    result = CliRunner().invoke(app, ["reconcile"])
    assert result.exit_code == EXIT_CONFIG
    assert "ALCHEMISER_ALPACA__API_KEY" in result.output

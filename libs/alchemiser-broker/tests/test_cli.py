"""``alchemiser account show`` against the paper exchange, through the ``alchemiser`` command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
import structlog
from typer.testing import CliRunner, Result

from alchemiser_broker import OrderRequest, OrderSide
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.cli import build_app
from alchemiser_devtools.embedded import free_port
from alchemiser_devtools.exchange import (
    API_KEY,
    SECRET_KEY,
    SESSION,
    PaperExchange,
    adapter_settings,
)


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """The command configures structlog for its process; give the next test the old one."""
    configured, saved = structlog.is_configured(), structlog.get_config()
    yield
    if configured:
        structlog.configure(**saved)
    else:
        structlog.reset_defaults()


def _show(url: str, *args: str, **env: str) -> Result:
    return CliRunner().invoke(
        build_app(),
        ["account", "show", *args],
        env={
            "ALCHEMISER_BROKER__KIND": "exchange",
            "ALCHEMISER_BROKER__EXCHANGE_URL": url,
            "ALCHEMISER_ALPACA__API_KEY": API_KEY,
            "ALCHEMISER_ALPACA__SECRET_KEY": SECRET_KEY,
            "COLUMNS": "80",
            **env,
        },
    )


def test_account_show_when_positions_and_orders_then_all_shown_with_client_order_ids(
    paper_exchange: PaperExchange,
) -> None:
    paper_exchange.exchange.set_cash(paper_exchange.account, Decimal("5000"))
    paper_exchange.set_prices({"QQQ": "400"})
    paper_exchange.exchange.set_position(paper_exchange.account, "QQQ", Decimal(3), Decimal(380))
    broker = AlpacaBroker(adapter_settings(paper_exchange.url))
    broker.submit_order(
        OrderRequest(
            client_order_id="alc-cli-test-0", symbol="SPY", side=OrderSide.BUY, qty=Decimal(2)
        )
    )

    result = _show(paper_exchange.url, "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["account_number"] == paper_exchange.account
    assert document["date"] == SESSION.isoformat()  # the account's session, not the wall clock
    assert Decimal(document["cash"]) == Decimal("4000")  # 5000 - 2 SPY at 500
    assert {p["symbol"]: Decimal(p["qty"]) for p in document["positions"]} == {
        "QQQ": Decimal(3),
        "SPY": Decimal(2),
    }
    (order,) = document["orders"]
    assert order["client_order_id"] == "alc-cli-test-0"
    assert (order["symbol"], order["side"], order["status"]) == ("SPY", "buy", "filled")
    assert Decimal(order["filled_avg_price"]) == Decimal(500)

    table = _show(paper_exchange.url)
    assert table.exit_code == 0, table.output
    assert f"account {paper_exchange.account}" in table.stdout
    assert "alc-cli-test-0" in table.stdout and "QQQ" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80


def test_account_show_when_exchange_unreachable_then_one_line_naming_it_and_exit_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = _show(url, "--json", ALCHEMISER_ALPACA__MAX_RETRIES="0")

    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: the paper exchange at {url} did not answer")
    assert line.endswith("check ALCHEMISER_BROKER__EXCHANGE_URL")


def test_account_show_when_settings_invalid_then_one_line_naming_the_variable() -> None:
    result = _show("not-a-url")

    assert result.exit_code == 2
    assert "ALCHEMISER_BROKER__EXCHANGE_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

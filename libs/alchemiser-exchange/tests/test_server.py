"""Running the exchange: ``build_exchange`` from settings, restarts over the same database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from alchemiser_common.errors import ConfigurationError
from alchemiser_exchange import (
    Exchange,
    ExchangeServer,
    ExchangeSettings,
    account_number_for,
    build_exchange,
)

KEY = "restart-key"
AUTH = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": "restart-secret"}
TIMEOUT_S = 5.0


def _settings(dataset_dir: Path | None, database: Path) -> ExchangeSettings:
    return ExchangeSettings(
        dataset_dir=dataset_dir, database_url=SecretStr(f"sqlite:///{database}")
    )


def _call(server: ExchangeServer, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(
        method, server.url + path, headers=AUTH, timeout=TIMEOUT_S, **kwargs
    )
    assert response.status_code in (200, 204), response.text
    return response.json() if response.content else None


# -- build_exchange ---------------------------------------------------------------------------


def test_build_exchange_when_dataset_dir_unset_then_configuration_error_names_it(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigurationError, match="ALCHEMISER_EXCHANGE__DATASET_DIR"):
        build_exchange(_settings(None, tmp_path / "x.db"))


def test_build_exchange_when_dataset_dir_missing_then_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match=r"ALCHEMISER_EXCHANGE__DATASET_DIR=.*nowhere: not a directory"
    ):
        build_exchange(_settings(tmp_path / "nowhere", tmp_path / "x.db"))
    assert not (tmp_path / "x.db").exists()  # refused before touching the database


def test_build_exchange_when_dataset_malformed_or_empty_then_configuration_error(
    write_bars: Callable[[str, str], Path], tmp_path: Path
) -> None:
    bad = write_bars("bad", "date,symbol,close\n2025-03-14,SPY,1\n")
    empty = tmp_path / "empty"
    empty.mkdir()

    with pytest.raises(ConfigurationError, match=r"DATASET_DIR=.*bars\.csv"):
        build_exchange(_settings(bad, tmp_path / "x.db"))
    with pytest.raises(ConfigurationError, match=r"DATASET_DIR=.*empty: no bar files"):
        build_exchange(_settings(empty, tmp_path / "x.db"))


def test_build_exchange_when_settings_valid_then_migrated_and_priced(
    bars_dir: Path, tmp_path: Path
) -> None:
    exchange = build_exchange(_settings(bars_dir, tmp_path / "state" / "x.db"))
    try:
        number = exchange.authenticate("k", "s").account_number
        assert (tmp_path / "state" / "x.db").exists()
        assert exchange.session_bar(number, "SPY") is not None
        assert exchange.trading.starting_cash == exchange.balances(number).cash
    finally:
        exchange.engine.dispose()


# -- restarts ---------------------------------------------------------------------------------


def test_restart_when_new_exchange_over_same_database_then_everything_survives(
    bars_dir: Path, tmp_path: Path, serve: Callable[..., ExchangeServer]
) -> None:
    settings = _settings(bars_dir, tmp_path / "exchange.db")
    first = build_exchange(settings)
    server = serve(first)
    _call(server, "PUT", "/exchange/v1/session", json={"session": "2025-03-06"})
    order = {"symbol": "SPY", "qty": "3", "side": "buy", "type": "market", "time_in_force": "day"}
    filled = _call(server, "POST", "/v2/orders", json={**order, "client_order_id": "b1"})
    resting = {**order, "type": "limit", "limit_price": "400", "time_in_force": "gtc"}
    working = _call(server, "POST", "/v2/orders", json={**resting, "client_order_id": "g1"})
    before = {
        path: _call(server, "GET", path)
        for path in ("/v2/account", "/v2/positions", "/v2/orders", "/exchange/v1/session")
    }
    server.stop()
    first.engine.dispose()

    second = build_exchange(settings)
    again = serve(second)

    after = {path: _call(again, "GET", path) for path in before}
    assert after == before
    assert after["/v2/account"]["account_number"] == account_number_for(KEY)
    assert after["/v2/account"]["cash"] == "98500"  # 100000 - 3 * 500.00 (Thursday)
    assert [o["id"] for o in after["/v2/orders"]] == [working["id"]]
    assert after["/exchange/v1/session"]["session"] == "2025-03-06"
    lookup = _call(again, "GET", "/v2/orders:by_client_order_id", params={"client_order_id": "b1"})
    assert lookup == filled
    duplicate = requests.post(
        again.url + "/v2/orders",
        json={**order, "client_order_id": "b1"},
        headers=AUTH,
        timeout=TIMEOUT_S,
    )
    assert duplicate.status_code == 422  # ids stay used across restarts
    second.engine.dispose()


def test_server_when_stopped_and_started_again_then_same_port_and_state(
    exchange: Exchange, serve: Callable[..., ExchangeServer]
) -> None:
    server = serve(exchange)
    url = server.url
    number = _call(server, "GET", "/v2/account")["account_number"]

    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/healthz", timeout=TIMEOUT_S)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    server.start()

    assert server.url == url
    assert server.stream_url == url.replace("http://", "ws://") + "/stream"
    assert _call(server, "GET", "/v2/account")["account_number"] == number


def test_server_when_used_as_context_manager_then_started_and_stopped(
    exchange: Exchange,
) -> None:
    with ExchangeServer(exchange) as server:
        url = server.url
        assert requests.get(url + "/healthz", timeout=TIMEOUT_S).status_code == 200

    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/healthz", timeout=TIMEOUT_S)

"""The exchange's HTTP API through the real server: plain ``requests`` and alpaca-py's clients.

The tests share one server (``module_server``: SQLite, the standard dataset of
``conftest.py``); each test has its own account (key ``creds``) in the Friday 2025-03-07
session, where SPY closes 510.25 (low 499, high 512). Tests of other rules start their own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import (
    StockLatestBarRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
)
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
)

from alchemiser_exchange import Exchange, ExchangeServer, account_number_for

FRIDAY = date(2025, 3, 7)
TIMEOUT_S = 5.0
NOT_FOUND = 40410000


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The HTTP layer is the same on every database: SQLite only here."""
    return sqlite_url


@pytest.fixture
def creds(new_key: Callable[[], str]) -> dict[str, str]:
    """The test's own API key headers."""
    key = new_key()
    return {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": f"secret-of-{key}"}


@pytest.fixture
def server(module_server: ExchangeServer) -> ExchangeServer:
    return module_server


@pytest.fixture
def account(server: ExchangeServer, creds: dict[str, str]) -> str:
    """The number of the test's account (opened under ``creds``), in the Friday session."""
    exchange = server.exchange
    key, secret = creds["APCA-API-KEY-ID"], creds["APCA-API-SECRET-KEY"]
    number = exchange.open_account(key, secret).account_number
    exchange.set_session(number, FRIDAY)
    return number


class Client:
    """``requests`` against the server with one account's headers."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(
            method, self.url + path, headers=headers, timeout=TIMEOUT_S, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, **kwargs)


@pytest.fixture
def client(server: ExchangeServer, account: str, creds: dict[str, str]) -> Client:
    return Client(server.url, creds)


def _stranger(url: str, key: str) -> Client:
    return Client(url, {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": "s"})


def _order(cid: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": "SPY",
        "qty": "10",
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
    }
    if cid is not None:
        body["client_order_id"] = cid
    body.update(fields)
    return body


def _error(response: requests.Response) -> tuple[int, int, str]:
    body = response.json()
    return response.status_code, body["code"], body["message"]


# -- authentication and rate limit ------------------------------------------------------------


def test_account_when_authorised_then_alpaca_shape_and_rate_limit_headers(
    client: Client, account: str
) -> None:
    response = client.get("/v2/account")

    assert response.status_code == 200
    body = response.json()
    assert body["account_number"] == account
    assert (body["cash"], body["buying_power"], body["equity"]) == ("100000", "100000", "100000")
    assert (body["status"], body["currency"], body["trading_blocked"]) == ("ACTIVE", "USD", False)
    assert response.headers["X-Ratelimit-Limit"] == "1000"
    assert int(response.headers["X-Ratelimit-Remaining"]) < 1000
    assert int(response.headers["X-Ratelimit-Reset"]) > 0


@pytest.mark.parametrize("case", ["none", "no-secret", "wrong-secret"])
def test_request_when_credentials_missing_or_wrong_then_401(
    server: ExchangeServer, account: str, creds: dict[str, str], case: str
) -> None:
    key = creds["APCA-API-KEY-ID"]
    headers = {
        "none": {},
        "no-secret": {"APCA-API-KEY-ID": key},
        "wrong-secret": {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": "wrong"},
    }[case]
    for method, path in [("GET", "/v2/account"), ("POST", "/v2/orders"), ("GET", "/v2/clock")]:
        response = Client(server.url, headers).call(method, path, json=_order("x"))
        assert _error(response) == (401, 40110000, "request is not authorized")


def test_request_when_key_already_served_and_secret_wrong_then_401_and_right_one_still_served(
    server: ExchangeServer, account: str, creds: dict[str, str]
) -> None:
    key = creds["APCA-API-KEY-ID"]
    assert Client(server.url, creds).get("/v2/account").status_code == 200  # remembered now

    wrong = Client(server.url, {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": "wrong"})
    for method, path in [("GET", "/v2/account"), ("POST", "/v2/orders"), ("GET", "/v2/clock")]:
        assert _error(wrong.call(method, path, json=_order("x"))) == (
            401,
            40110000,
            "request is not authorized",
        )
    again = Client(server.url, creds).get("/v2/account")
    assert again.status_code == 200
    assert again.json()["account_number"] == account


def test_request_when_auto_open_off_and_key_unknown_then_401(
    make_exchange: Callable[..., Exchange],
    serve: Callable[..., ExchangeServer],
    creds: dict[str, str],
) -> None:
    server = serve(make_exchange(auto_open=False))

    response = Client(server.url, creds).get("/v2/account")

    assert _error(response) == (401, 40110000, "request is not authorized")


def test_request_when_key_unknown_then_account_auto_opened(
    server: ExchangeServer, new_key: Callable[[], str]
) -> None:
    key = new_key()

    body = _stranger(server.url, key).get("/v2/account").json()

    assert body["account_number"] == account_number_for(key)
    assert body["cash"] == "100000"


def test_request_when_over_the_rate_limit_then_429_with_retry_after_per_key(
    make_exchange: Callable[..., Exchange],
    serve: Callable[..., ExchangeServer],
    creds: dict[str, str],
) -> None:
    server = serve(make_exchange(rate_limit_per_minute=3))
    client = Client(server.url, creds)

    answered = [client.get("/v2/clock") for _ in range(3)]
    limited = client.get("/v2/account")

    assert [r.status_code for r in answered] == [200, 200, 200]
    assert [r.headers["X-Ratelimit-Remaining"] for r in answered] == ["2", "1", "0"]
    assert _error(limited) == (429, 42910000, "rate limit exceeded")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-Ratelimit-Limit"] == "3"
    assert limited.headers["X-Ratelimit-Remaining"] == "0"
    reset = int(limited.headers["X-Ratelimit-Reset"])
    assert reset >= int(answered[0].headers["X-Ratelimit-Reset"])
    assert _stranger(server.url, "other").get("/v2/clock").status_code == 200  # per key


def test_healthz_when_up_then_ok_without_credentials(server: ExchangeServer) -> None:
    response = requests.get(server.url + "/healthz", timeout=TIMEOUT_S)

    assert (response.status_code, response.json()) == (200, {"status": "ok", "streams": 0})


# -- orders -----------------------------------------------------------------------------------


def test_submit_when_market_buy_then_filled_order_in_alpaca_shape(client: Client) -> None:
    response = client.post("/v2/orders", json=_order("b1"))

    assert response.status_code == 200
    order = response.json()
    assert order["client_order_id"] == "b1"
    assert (order["status"], order["side"], order["type"]) == ("filled", "buy", "market")
    assert (order["qty"], order["filled_qty"], order["filled_avg_price"]) == (
        "10",
        "10",
        "510.25",
    )
    assert order["submitted_at"] == "2025-03-07T20:50:00.000000Z"
    assert client.get(f"/v2/orders/{order['id']}").json() == order
    assert client.get("/v2/positions/SPY").json()["qty"] == "10"


def test_submit_when_client_order_id_reused_then_422_with_alpaca_message(client: Client) -> None:
    first = client.post("/v2/orders", json=_order("dup"))

    again = client.post("/v2/orders", json=_order("dup", qty="1"))

    assert first.status_code == 200
    assert again.status_code == 422
    assert again.json() == {"code": 40010001, "message": "client_order_id must be unique"}
    assert client.get("/v2/positions/SPY").json()["qty"] == "10"


def test_submit_when_buying_power_short_then_403(client: Client) -> None:
    response = client.post("/v2/orders", json=_order("big", qty="1000"))

    assert _error(response) == (403, 40310000, "insufficient buying power")
    by_id = client.get("/v2/orders:by_client_order_id", params={"client_order_id": "big"})
    assert by_id.status_code == 404


def test_submit_when_selling_more_than_held_then_403_insufficient_qty(client: Client) -> None:
    response = client.post("/v2/orders", json=_order("s1", side="sell", qty="1"))

    status, _code, message = _error(response)
    assert status == 403
    assert message.startswith("insufficient qty available for order")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"symbol": None}, "symbol is required"),
        ({"side": "short"}, "unsupported side/type"),
        ({"notional": "100"}, "not both"),
        ({"qty": "-1"}, "must be > 0"),
        ({"qty": "ten"}, "invalid qty"),
        ({"type": "limit"}, "limit_price"),
        ({"limit_price": "500"}, "market orders take no limit_price"),
        ({"client_order_id": "x" * 129}, "128 characters"),
        ({"symbol": "NOPE"}, 'asset "NOPE" not found'),
        ({"time_in_force": "ioc"}, "time_in_force"),
    ],
)
def test_submit_when_request_breaks_a_rule_then_422_naming_it(
    client: Client, fields: dict[str, Any], message: str
) -> None:
    body = {k: v for k, v in _order("bad", **fields).items() if v is not None}

    response = client.post("/v2/orders", json=body)

    status, code, text = _error(response)
    assert (status, code) == (422, 40010001)
    assert message in text


@pytest.mark.parametrize(
    "payload", [b"{not json", b"[1, 2]", b'"text"'], ids=["broken", "list", "string"]
)
def test_submit_when_body_malformed_then_400(client: Client, payload: bytes) -> None:
    response = client.post("/v2/orders", data=payload)

    assert _error(response) == (400, 40010000, "request body format is invalid")


def test_orders_by_client_order_id_when_known_then_the_order_else_404(client: Client) -> None:
    placed = client.post("/v2/orders", json=_order("c1")).json()

    found = client.get("/v2/orders:by_client_order_id", params={"client_order_id": "c1"})
    missing = client.get("/v2/orders:by_client_order_id", params={"client_order_id": "none"})

    assert found.json() == placed
    assert _error(missing) == (404, NOT_FOUND, "order not found")


def test_list_orders_when_status_given_then_open_closed_or_all(client: Client) -> None:
    filled = client.post("/v2/orders", json=_order("f1", qty="1")).json()
    resting = client.post(
        "/v2/orders", json=_order("r1", qty="1", type="limit", limit_price="400")
    ).json()

    def ids(**params: str) -> list[str]:
        response = client.get("/v2/orders", params=params)
        assert response.status_code == 200
        return [order["id"] for order in response.json()]

    assert ids() == [resting["id"]]  # Alpaca's default: open
    assert ids(status="open") == [resting["id"]]
    assert ids(status="closed") == [filled["id"]]
    assert set(ids(status="all")) == {filled["id"], resting["id"]}
    assert len(ids(status="all", limit="1")) == 1
    assert client.get("/v2/orders", params={"status": "sideways"}).status_code == 422


def test_replace_when_open_limit_order_patched_then_new_order_replaces_it(client: Client) -> None:
    old = client.post(
        "/v2/orders", json=_order("l1", type="limit", limit_price="498", time_in_force="gtc")
    ).json()
    assert old["status"] == "new"

    response = client.call("PATCH", f"/v2/orders/{old['id']}", json={"limit_price": "511"})

    assert response.status_code == 200
    new = response.json()
    assert (new["replaces"], new["status"], new["limit_price"]) == (old["id"], "filled", "511")
    assert (new["filled_avg_price"], new["time_in_force"]) == ("510.25", "gtc")
    previous = client.get(f"/v2/orders/{old['id']}").json()
    assert (previous["status"], previous["replaced_by"]) == ("replaced", new["id"])
    again = client.call("PATCH", f"/v2/orders/{old['id']}", json={"qty": "2"})
    assert _error(again)[:2] == (422, 42210000)
    assert client.call("PATCH", f"/v2/orders/{old['id']}", data=b"{").status_code == 400


def test_cancel_when_open_then_204_and_again_422(client: Client) -> None:
    order = client.post("/v2/orders", json=_order("l1", type="limit", limit_price="400")).json()

    first = client.call("DELETE", f"/v2/orders/{order['id']}")
    again = client.call("DELETE", f"/v2/orders/{order['id']}")

    assert (first.status_code, first.content) == (204, b"")
    assert first.headers["X-Ratelimit-Limit"] == "1000"  # every authorised answer has them
    assert client.get(f"/v2/orders/{order['id']}").json()["status"] == "canceled"
    assert _error(again) == (422, 42210000, 'order is already in "canceled" state')
    unknown = client.call("DELETE", "/v2/orders/00000000-0000-0000-0000-000000000000")
    assert _error(unknown) == (404, NOT_FOUND, "order not found")


def test_close_position_when_held_then_market_sell_and_then_404(client: Client) -> None:
    client.post("/v2/orders", json=_order("b1", qty="3"))

    response = client.call("DELETE", "/v2/positions/SPY")

    assert response.status_code == 200
    order = response.json()
    assert (order["side"], order["type"], order["status"], order["qty"]) == (
        "sell",
        "market",
        "filled",
        "3",
    )
    assert _error(client.get("/v2/positions/SPY")) == (404, NOT_FOUND, "position does not exist")
    assert client.call("DELETE", "/v2/positions/SPY").status_code == 404
    assert client.get("/v2/positions").json() == []


def test_reads_when_unknown_then_404(client: Client) -> None:
    missing = client.get("/v2/orders/no-such-order")
    assert _error(missing)[:2] == (404, NOT_FOUND)
    assert missing.headers["X-Ratelimit-Limit"] == "1000"
    assert _error(client.get("/v2/positions/SPY"))[:2] == (404, NOT_FOUND)
    assert _error(client.get("/v2/assets/NOPE")) == (404, NOT_FOUND, "asset not found")
    assert client.get("/v2/stocks/NOPE/trades/latest").status_code == 404


def test_assets_and_positions_when_held_then_alpaca_shapes(client: Client) -> None:
    client.post("/v2/orders", json=_order("b1", qty="2"))

    asset = client.get("/v2/assets/SPY").json()
    (position,) = client.get("/v2/positions").json()

    assert (asset["symbol"], asset["tradable"], asset["fractionable"]) == ("SPY", True, True)
    assert (position["symbol"], position["qty"], position["side"]) == ("SPY", "2", "long")
    assert (position["avg_entry_price"], position["market_value"]) == ("510.25", "1020.5")


# -- market data ------------------------------------------------------------------------------


def test_latest_when_symbols_listed_then_session_prices_and_unknown_left_out(
    client: Client,
) -> None:
    params = {"symbols": "SPY,QQQ,NOPE"}

    trades = client.get("/v2/stocks/trades/latest", params=params).json()["trades"]
    quotes = client.get("/v2/stocks/quotes/latest", params=params).json()["quotes"]
    bars = client.get("/v2/stocks/bars/latest", params=params).json()["bars"]

    assert set(trades) == set(quotes) == set(bars) == {"SPY", "QQQ"}
    assert (trades["SPY"]["p"], trades["SPY"]["t"]) == (510.25, "2025-03-07T20:50:00.000000Z")
    assert (quotes["SPY"]["bp"], quotes["SPY"]["ap"]) == (510.19, 510.31)
    assert (bars["SPY"]["o"], bars["SPY"]["h"], bars["SPY"]["l"], bars["SPY"]["c"]) == (
        500.0,
        512.0,
        499.0,
        510.25,
    )
    assert client.get("/v2/stocks/trades/latest").json() == {"trades": {}}


@pytest.mark.parametrize(("kind", "field"), [("trades", "p"), ("quotes", "bp"), ("bars", "c")])
def test_latest_when_one_symbol_then_symbol_and_singular_key(
    client: Client, kind: str, field: str
) -> None:
    body = client.get(f"/v2/stocks/SPY/{kind}/latest").json()

    assert body["symbol"] == "SPY"
    assert field in body[kind[:-1]]


# -- the session clock and accounts -----------------------------------------------------------


def test_session_when_put_then_clock_prices_and_get_follow(client: Client, account: str) -> None:
    before = client.get("/exchange/v1/session").json()

    moved = client.call("PUT", "/exchange/v1/session", json={"session": "2025-03-06"})

    assert before["session"] == "2025-03-07" and before["is_open"] is True
    assert before["account_number"] == account
    assert moved.status_code == 200
    assert moved.json()["session"] == "2025-03-06"
    assert moved.json()["timestamp"] == "2025-03-06T20:50:00.000000Z"
    assert client.get("/exchange/v1/session").json()["session"] == "2025-03-06"
    assert client.get("/v2/clock").json()["timestamp"] == "2025-03-06T20:50:00.000000Z"
    trade = client.get("/v2/stocks/SPY/trades/latest").json()["trade"]
    assert trade["p"] == 500.0
    weekend = client.call("PUT", "/exchange/v1/session", json={"session": "2025-03-08"}).json()
    assert weekend["is_open"] is False
    assert client.get("/v2/clock").json()["is_open"] is False


@pytest.mark.parametrize("body", [{"session": "soon"}, {}, {"session": "2025-02-30"}])
def test_session_when_not_a_date_then_422(client: Client, body: dict[str, Any]) -> None:
    response = client.call("PUT", "/exchange/v1/session", json=body)

    assert _error(response) == (422, 40010001, "session must be a date (YYYY-MM-DD)")


def test_session_when_unauthorised_then_401(server: ExchangeServer) -> None:
    response = Client(server.url, {}).call("PUT", "/exchange/v1/session", json={"session": "x"})

    assert response.status_code == 401


def test_open_account_when_no_admin_token_then_open_and_usable(
    server: ExchangeServer, new_key: Callable[[], str]
) -> None:
    key = new_key()
    body = {"api_key_id": key, "secret_key": "s2", "cash": "2500", "account_number": f"PA-{key}"}

    response = requests.post(server.url + "/exchange/v1/accounts", json=body, timeout=TIMEOUT_S)

    assert response.status_code == 200
    assert (response.json()["account_number"], response.json()["cash"]) == (f"PA-{key}", "2500")
    own = Client(server.url, {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": "s2"})
    assert own.get("/v2/account").json()["account_number"] == f"PA-{key}"
    missing = requests.post(server.url + "/exchange/v1/accounts", json={}, timeout=TIMEOUT_S)
    assert missing.status_code == 422


def test_open_account_when_admin_token_set_then_bearer_required(
    make_exchange: Callable[..., Exchange],
    serve: Callable[..., ExchangeServer],
    new_key: Callable[[], str],
) -> None:
    server = serve(make_exchange(), admin_token="tok")
    url = server.url + "/exchange/v1/accounts"
    key = new_key()
    body = {"api_key_id": key, "secret_key": "s3"}

    anonymous = requests.post(url, json=body, timeout=TIMEOUT_S)
    wrong = requests.post(url, json=body, headers={"Authorization": "Bearer no"}, timeout=5)
    right = requests.post(url, json=body, headers={"Authorization": "Bearer tok"}, timeout=5)

    assert _error(anonymous) == (401, 40110000, "admin token required")
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert right.json()["account_number"] == account_number_for(key)


# -- alpaca-py's own clients (their models validate every shape) -----------------------------


@pytest.fixture
def trading(server: ExchangeServer, account: str, creds: dict[str, str]) -> TradingClient:
    key, secret = creds["APCA-API-KEY-ID"], creds["APCA-API-SECRET-KEY"]
    return TradingClient(key, secret, paper=True, url_override=server.url)


def test_alpaca_py_trading_client_when_used_then_models_validate(
    trading: TradingClient, account: str
) -> None:
    assert trading.get_account().account_number == account  # type: ignore[union-attr]
    assert trading.get_clock().is_open is True  # type: ignore[union-attr]
    assert trading.get_asset("SPY").fractionable is True  # type: ignore[union-attr]

    order: Any = trading.submit_order(
        MarketOrderRequest(
            symbol="SPY",
            qty=2,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            client_order_id="py-1",
        )
    )

    assert order.status is OrderStatus.FILLED
    assert Decimal(order.filled_avg_price) == Decimal("510.25")
    assert trading.get_order_by_client_id("py-1").id == order.id  # type: ignore[union-attr]
    position: Any = trading.get_open_position("SPY")
    assert Decimal(position.qty) == 2
    assert len(trading.get_all_positions()) == 1


def test_alpaca_py_trading_client_when_replace_cancel_close_then_models_validate(
    trading: TradingClient,
) -> None:
    resting: Any = trading.submit_order(
        LimitOrderRequest(
            symbol="SPY",
            qty=3,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=400,
            client_order_id="py-2",
        )
    )
    assert resting.status is OrderStatus.NEW

    replaced: Any = trading.replace_order_by_id(resting.id, ReplaceOrderRequest(limit_price=511))
    listed: Any = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    closed: Any = trading.close_position("SPY")

    assert replaced.status is OrderStatus.FILLED and replaced.replaces == resting.id
    assert {o.id for o in listed} == {resting.id, replaced.id}
    assert closed.side is OrderSide.SELL
    working: Any = trading.submit_order(
        LimitOrderRequest(
            symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=400
        )
    )
    trading.cancel_order_by_id(working.id)
    assert trading.get_order_by_id(working.id).status is OrderStatus.CANCELED  # type: ignore[union-attr]


def test_alpaca_py_trading_client_when_refused_then_api_error_with_alpaca_status(
    trading: TradingClient,
) -> None:
    request = MarketOrderRequest(
        symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, client_order_id="d"
    )
    trading.submit_order(request)

    with pytest.raises(APIError) as duplicate:
        trading.submit_order(request)

    assert duplicate.value.status_code == 422
    assert duplicate.value.code == 40010001
    assert duplicate.value.message == "client_order_id must be unique"


def test_alpaca_py_data_client_when_latest_requested_then_models_validate(
    server: ExchangeServer, account: str, creds: dict[str, str]
) -> None:
    key, secret = creds["APCA-API-KEY-ID"], creds["APCA-API-SECRET-KEY"]
    data = StockHistoricalDataClient(key, secret, url_override=server.url)

    trades: Any = data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=["SPY"]))
    quotes: Any = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="SPY"))
    bars: Any = data.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols=["SPY", "QQQ"]))

    assert trades["SPY"].price == 510.25
    assert (quotes["SPY"].bid_price, quotes["SPY"].ask_price) == (510.19, 510.31)
    assert (bars["SPY"].low, bars["QQQ"].close) == (499.0, 400.1)

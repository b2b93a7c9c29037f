"""The trade-updates WebSocket, read by alpaca-py's own ``TradingStream`` (and by hand).

Each test runs its own server (the ``/healthz`` stream count tells when a client listens) on
SQLite over the standard dataset; accounts trade in the Friday 2025-03-07 session (SPY closes
510.25). A stream is stopped by stopping the server, which closes its connection: alpaca-py's
own ``stop()`` only takes effect at its next 5 s receive timeout.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import requests
from alpaca.trading.models import TradeUpdate as AlpacaTradeUpdate
from alpaca.trading.stream import TradingStream
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from alchemiser_broker.models import OrderSide, OrderType
from alchemiser_exchange import Exchange, ExchangeServer, OrderSpec
from alchemiser_exchange.errors import NotAuthorizedError
from alchemiser_exchange.schema import AccountRecord

FRIDAY = date(2025, 3, 7)
WAIT_S = 5.0


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The stream is the same on every database: SQLite only here."""
    return sqlite_url


class Listener:
    """alpaca-py's ``TradingStream`` in a thread, collecting what it is sent."""

    def __init__(self, server: ExchangeServer, key: str, secret: str) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stream = TradingStream(key, secret, raw_data=True, url_override=server.stream_url)

        async def collect(message: dict[str, Any]) -> None:
            self.messages.put(message)

        self.stream.subscribe_trade_updates(collect)
        self.thread = threading.Thread(target=self.stream.run, name="test-stream", daemon=True)
        self.thread.start()

    def next(self) -> dict[str, Any]:
        """The next message's ``data`` (an order event)."""
        message = self.messages.get(timeout=WAIT_S)
        assert message["stream"] == "trade_updates"
        data: dict[str, Any] = message["data"]
        return data

    def stop(self) -> None:
        if self.stream._loop is not None and self.stream._loop.is_running():
            self.stream.stop()


class Streams:
    """One server and the test's accounts and listeners on it."""

    def __init__(self, exchange: Exchange, server: ExchangeServer) -> None:
        self.exchange = exchange
        self.server = server
        self.listeners: list[Listener] = []

    def account(self, key: str) -> str:
        number = self.exchange.open_account(key, f"secret-{key}").account_number
        self.exchange.set_session(number, FRIDAY)
        return number

    def listen(self, key: str, secret: str | None = None) -> Listener:
        """A listening stream of ``key`` (returns once the server counts it)."""
        expected = self.connections() + 1
        listener = Listener(self.server, key, secret or f"secret-{key}")
        self.listeners.append(listener)
        deadline = time.monotonic() + WAIT_S
        while self.connections() < expected:
            assert time.monotonic() < deadline, "the stream never started listening"
            time.sleep(0.02)
        return listener

    def connections(self) -> int:
        health = requests.get(self.server.url + "/healthz", timeout=WAIT_S).json()
        count: int = health["streams"]
        return count

    def close(self) -> None:
        for listener in self.listeners:
            listener.stop()
        self.server.stop()  # closes the connections: the streams' threads end at once
        for listener in self.listeners:
            listener.thread.join(WAIT_S)


@pytest.fixture
def streams(exchange: Exchange, serve: Callable[..., ExchangeServer]) -> Iterator[Streams]:
    running = Streams(exchange, serve(exchange))
    try:
        yield running
    finally:
        running.close()
    assert not any(listener.thread.is_alive() for listener in running.listeners)


def _buy(cid: str, **fields: Any) -> OrderSpec:
    fields.setdefault("qty", Decimal(10))
    limit = "limit_price" in fields
    fields.setdefault("order_type", OrderType.LIMIT if limit else OrderType.MARKET)
    return OrderSpec(symbol="SPY", side=OrderSide.BUY, client_order_id=cid, **fields)


def test_stream_when_market_order_fills_then_new_then_fill_in_alpaca_shape(
    streams: Streams, new_key: Callable[[], str]
) -> None:
    key = new_key()
    account = streams.account(key)
    listener = streams.listen(key)

    order = streams.exchange.submit(account, _buy("m1"))

    new, fill = listener.next(), listener.next()
    assert (new["event"], new["order"]["id"], new["order"]["status"]) == (
        "new",
        order.broker_order_id,
        "new",
    )
    assert (fill["event"], fill["order"]["status"]) == ("fill", "filled")
    assert (fill["price"], fill["qty"], fill["position_qty"]) == ("510.25", "10", "10")
    assert fill["timestamp"] == "2025-03-07T20:50:00.000000Z"
    parsed = AlpacaTradeUpdate(**fill)  # alpaca-py's own model accepts it
    assert (parsed.event, parsed.order.client_order_id) == ("fill", "m1")
    assert parsed.price == 510.25 and parsed.position_qty == 10


def test_stream_when_order_canceled_then_canceled_event(
    streams: Streams, new_key: Callable[[], str]
) -> None:
    key = new_key()
    account = streams.account(key)
    listener = streams.listen(key)
    order = streams.exchange.submit(account, _buy("l1", limit_price=Decimal(400)))

    streams.exchange.cancel(account, order.broker_order_id)

    assert [listener.next()["event"], listener.next()["event"]] == ["new", "canceled"]


def test_stream_when_session_moves_then_day_order_expired_event(
    streams: Streams, new_key: Callable[[], str]
) -> None:
    key = new_key()
    account = streams.account(key)
    listener = streams.listen(key)
    streams.exchange.submit(account, _buy("d1", limit_price=Decimal(400)))

    response = requests.put(
        streams.server.url + "/exchange/v1/session",
        json={"session": "2025-03-10"},
        headers={"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": f"secret-{key}"},
        timeout=WAIT_S,
    )

    assert response.status_code == 200
    assert listener.next()["event"] == "new"
    expired = listener.next()
    assert (expired["event"], expired["order"]["status"]) == ("expired", "expired")


def test_stream_when_two_accounts_listen_then_each_gets_only_its_own_updates(
    streams: Streams, new_key: Callable[[], str]
) -> None:
    mine_key, theirs_key = new_key(), new_key()
    mine, theirs = streams.account(mine_key), streams.account(theirs_key)
    my_stream, their_stream = streams.listen(mine_key), streams.listen(theirs_key)

    my_order = streams.exchange.submit(mine, _buy("same-id"))
    assert [my_stream.next()["event"], my_stream.next()["event"]] == ["new", "fill"]
    their_order = streams.exchange.submit(theirs, _buy("same-id", qty=Decimal(1)))

    # their first message is their own order's: mine was never queued for them
    first = their_stream.next()
    assert (first["event"], first["order"]["id"]) == ("new", their_order.broker_order_id)
    assert their_stream.next()["order"]["id"] == their_order.broker_order_id
    assert my_stream.messages.empty()
    assert my_order.broker_order_id != their_order.broker_order_id


def test_trading_stream_when_secret_wrong_then_refused_and_never_listening(
    streams: Streams, new_key: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key()
    account = streams.account(key)
    refused: list[str] = []
    authenticate = streams.exchange.authenticate

    def recording(api_key_id: str, secret_key: str) -> AccountRecord:
        try:
            return authenticate(api_key_id, secret_key)
        except NotAuthorizedError:
            refused.append(api_key_id)
            raise

    monkeypatch.setattr(streams.exchange, "authenticate", recording)
    listener = Listener(streams.server, key, "wrong-secret")
    streams.listeners.append(listener)

    deadline = time.monotonic() + WAIT_S
    while key not in refused:
        assert time.monotonic() < deadline, "the stream never tried to authenticate"
        time.sleep(0.02)
    streams.exchange.submit(account, _buy("x1", qty=Decimal(1)))

    assert streams.connections() == 0
    assert listener.messages.empty()


def test_stream_when_credentials_wrong_then_unauthorized_and_closed(
    streams: Streams, new_key: Callable[[], str]
) -> None:
    key = new_key()
    streams.account(key)

    with connect(streams.server.stream_url, open_timeout=WAIT_S) as websocket:
        websocket.send(
            json.dumps({"action": "authenticate", "data": {"key_id": key, "secret_key": "wrong"}})
        )
        answer = json.loads(websocket.recv(timeout=WAIT_S))
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=WAIT_S)

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008  # policy violation

    assert answer == {
        "stream": "authorization",
        "data": {"status": "unauthorized", "action": "authenticate"},
    }
    assert streams.connections() == 0


def test_stream_when_authorised_by_hand_then_listening_acknowledged(
    streams: Streams, new_key: Callable[[], str]
) -> None:
    key = new_key()
    account = streams.account(key)

    with connect(streams.server.stream_url, open_timeout=WAIT_S) as websocket:
        auth = {"action": "auth", "key": key, "secret": f"secret-{key}"}  # the older form
        websocket.send(json.dumps(auth))
        authorised = json.loads(websocket.recv(timeout=WAIT_S))
        websocket.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        listening = json.loads(websocket.recv(timeout=WAIT_S))
        streams.exchange.submit(account, _buy("h1", qty=Decimal(1)))
        update = json.loads(websocket.recv(timeout=WAIT_S))

    assert authorised["data"]["status"] == "authorized"
    assert listening == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
    assert (update["stream"], update["data"]["event"]) == ("trade_updates", "new")

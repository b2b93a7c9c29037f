"""TradeUpdatesFeed against a minimal trade-updates websocket server (Alpaca's protocol)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs
from websockets.asyncio.server import Server, ServerConnection, serve

from alchemiser_broker import OrderStatus
from alchemiser_broker.stream import NoOrderUpdates, OrderUpdates, TradeUpdatesFeed
from alchemiser_common.errors import ConfigurationError

KEY = "test-key-id"
SECRET = "test-secret-do-not-log"
THREAD_NAME = "alpaca-trade-updates"


class TradeStreamServer:
    """Alpaca's trade-updates protocol: authenticate, listen, then pushed updates."""

    def __init__(self, key: str = KEY, secret: str = SECRET) -> None:
        self.key, self.secret = key, secret
        self.port = 0
        self.auth_attempts = 0
        self._server: Server | None = None
        self._listeners: set[ServerConnection] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=5)

    def start(self) -> None:
        """Listen (again on the same port once it has one)."""

        async def start() -> None:
            self._server = await serve(self._handle, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

        self._call(start())

    def stop(self) -> None:
        """Stop listening and close every connection."""

        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None

        self._call(stop())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def push(self, message: Any, *, binary: bool = False) -> None:
        """Send ``message`` (JSON, or raw text when a str) to every listening client."""
        text = message if isinstance(message, str) else json.dumps(message)
        frame: str | bytes = text.encode() if binary else text

        async def push() -> None:
            for connection in list(self._listeners):
                await connection.send(frame)

        self._call(push())

    async def _handle(self, connection: ServerConnection) -> None:
        auth = json.loads(await connection.recv())
        self.auth_attempts += 1
        ok = auth.get("action") == "authenticate" and auth.get("data") == {
            "key_id": self.key,
            "secret_key": self.secret,
        }
        status = "authorized" if ok else "unauthorized"
        await connection.send(
            json.dumps(
                {"stream": "authorization", "data": {"status": status, "action": "authenticate"}}
            )
        )
        if not ok:
            await connection.close()
            return
        listen = json.loads(await connection.recv())
        assert listen == {"action": "listen", "data": {"streams": ["trade_updates"]}}
        ack = {"stream": "listening", "data": {"streams": ["trade_updates"]}}
        await connection.send(json.dumps(ack).encode())  # Alpaca sends binary frames
        self._listeners.add(connection)
        try:
            await connection.wait_closed()
        finally:
            self._listeners.discard(connection)


def order_json(
    cid: str = "cid-1",
    *,
    status: str = "new",
    filled_qty: str = "0",
    updated_at: str = "2024-05-01T14:00:00.000000Z",
) -> dict[str, Any]:
    return {
        "id": f"broker-{cid}",
        "client_order_id": cid,
        "symbol": "SPY",
        "side": "buy",
        "type": "market",
        "order_type": "market",
        "status": status,
        "qty": "10",
        "notional": None,
        "limit_price": None,
        "filled_qty": filled_qty,
        "filled_avg_price": "500.25" if filled_qty != "0" else None,
        "submitted_at": "2024-05-01T14:00:00Z",
        "filled_at": updated_at if status == "filled" else None,
        "updated_at": updated_at,
    }


def update(event: str, order: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"event": event, "timestamp": order["updated_at"], "order": order}
    if event in ("fill", "partial_fill"):
        data.update(price="500.25", qty=order["filled_qty"], position_qty=order["filled_qty"])
    return {"stream": "trade_updates", "data": data}


def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def server() -> Iterator[TradeStreamServer]:
    fake = TradeStreamServer()
    fake.start()
    yield fake
    fake.close()


@pytest.fixture
def feed(server: TradeStreamServer) -> Iterator[TradeUpdatesFeed]:
    with TradeUpdatesFeed(KEY, SECRET, url=server.url) as started:
        assert eventually(lambda: started.live), "the feed never went live"
        yield started


def test_feed_when_connected_and_listening_then_live_and_one_gap(feed: TradeUpdatesFeed) -> None:
    assert isinstance(feed, OrderUpdates)
    assert feed.live
    assert feed.take_gap() is True
    assert feed.take_gap() is False
    assert feed.latest("cid-1") is None


def test_feed_when_update_pushed_then_latest_and_wait_wakes_at_once(
    server: TradeStreamServer, feed: TradeUpdatesFeed
) -> None:
    feed.wait(0)  # consume the connection event
    timer = threading.Timer(
        0.2, server.push, args=(update("fill", order_json(status="filled", filled_qty="10")),)
    )
    started = time.monotonic()
    timer.start()
    feed.wait(5.0)
    woke_after = time.monotonic() - started
    timer.join()

    assert woke_after < 2.0
    order = feed.latest("cid-1")
    assert order is not None
    assert (order.status, order.filled_qty, order.filled_avg_price) == (
        OrderStatus.FILLED,
        Decimal(10),
        Decimal("500.25"),
    )
    assert feed.updates_received == 1


def test_feed_when_update_is_older_than_stored_then_ignored(
    server: TradeStreamServer, feed: TradeUpdatesFeed
) -> None:
    newer = order_json(status="partially_filled", filled_qty="4", updated_at="2024-05-01T14:00:02Z")
    older = order_json(status="new", updated_at="2024-05-01T14:00:01Z")
    server.push(update("partial_fill", newer), binary=True)
    server.push(update("new", older))
    assert eventually(lambda: feed.updates_received == 2)

    latest = feed.latest("cid-1")
    assert latest is not None
    assert (latest.status, latest.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal(4))


def test_feed_when_message_malformed_then_skipped_and_stream_goes_on(
    server: TradeStreamServer, feed: TradeUpdatesFeed
) -> None:
    server.push("{not json")
    server.push({"stream": "trade_updates", "data": {"event": "fill"}})  # no order
    server.push(update("fill", {**order_json("cid-bad"), "side": "sideways"}))
    server.push(update("new", order_json("cid-2")))

    assert eventually(lambda: feed.latest("cid-2") is not None)
    assert feed.latest("cid-bad") is None
    assert feed.updates_malformed == 2
    assert feed.updates_received == 1
    assert feed.live


def test_feed_when_keys_are_wrong_then_never_live(server: TradeStreamServer) -> None:
    with TradeUpdatesFeed(KEY, "wrong-secret", url=server.url) as feed:
        assert eventually(lambda: server.auth_attempts >= 1)
        time.sleep(0.5)
        assert not feed.live
        assert feed.take_gap() is False


def test_feed_when_server_restarts_then_down_then_live_again_with_one_gap(
    server: TradeStreamServer, feed: TradeUpdatesFeed
) -> None:
    assert feed.take_gap() is True  # the first connection

    server.stop()
    assert eventually(lambda: not feed.live, 3.0)
    assert feed.take_gap() is False
    time.sleep(0.3)
    server.start()

    assert eventually(lambda: feed.live, 8.0)
    assert feed.take_gap() is True
    assert feed.take_gap() is False
    server.push(update("new", order_json("cid-3")))
    assert eventually(lambda: feed.latest("cid-3") is not None)


def test_feed_when_stopped_then_thread_ends_and_not_live(server: TradeStreamServer) -> None:
    feed = TradeUpdatesFeed(KEY, SECRET, url=server.url)
    feed.start()
    feed.start()  # idempotent
    assert eventually(lambda: feed.live)
    assert sum(t.name == THREAD_NAME for t in threading.enumerate()) == 1

    started = time.monotonic()
    feed.stop()
    feed.stop()  # idempotent

    assert time.monotonic() - started < 3.0
    assert not feed.live
    assert not any(t.name == THREAD_NAME for t in threading.enumerate())


def test_feed_when_running_then_secrets_never_logged(server: TradeStreamServer) -> None:
    with capture_logs() as logs, TradeUpdatesFeed(KEY, SECRET, url=server.url) as feed:
        assert eventually(lambda: feed.live)
        server.push("garbage")
        server.push(update("fill", {**order_json(), "status": "???"}))
        assert eventually(lambda: feed.updates_malformed == 1)
        assert SECRET not in repr(feed)
    assert logs
    assert all(SECRET not in repr(entry) for entry in logs)


def test_no_order_updates_when_used_then_never_live_and_wait_sleeps() -> None:
    sleeps: list[float] = []
    updates = NoOrderUpdates(sleeps.append)
    updates.wait(0.5)
    assert isinstance(updates, OrderUpdates)
    assert (updates.live, updates.latest("x"), updates.take_gap(), sleeps) == (
        False,
        None,
        False,
        [0.5],
    )


def test_feed_when_alpaca_py_lacks_a_hook_then_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alpaca.trading.stream import TradingStream

    monkeypatch.delattr(TradingStream, "_start_ws")
    with pytest.raises(ConfigurationError, match=r"alpaca-py \S+ TradingStream has no _start_ws"):
        TradeUpdatesFeed(KEY, SECRET, url="ws://127.0.0.1:9/unused")


def test_feed_when_keys_missing_then_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        TradeUpdatesFeed("", SECRET)

"""Order updates pushed by the broker: Alpaca's trade-updates websocket stream.

:class:`OrderUpdates` is what a consumer (execution's phase runner) reads: whether the stream
is live, the newest state it delivered per ``client_order_id``, a wait that ends early when
anything happens, and a *gap* flag raised after every (re)connection, because updates sent
while the stream was down are lost and open orders must be re-read over REST once.

:class:`TradeUpdatesFeed` runs alpaca-py's ``TradingStream`` (raw messages) in a daemon
thread. Liveness is not public in alpaca-py, so a subclass overrides three private hooks:
``_start_ws`` (a connection is authorised and ``listen`` was sent), ``_dispatch`` (sees the
server's ``listening`` acknowledgement: only then is the feed live) and ``close`` (not live).
The hooks are checked when the feed is built; a missing one stops start-up with a
:class:`~alchemiser_common.errors.ConfigurationError` naming the alpaca-py version, as
:func:`alchemiser_broker.alpaca_http.configure_client` does for the REST clients.

alpaca-py reconnects by itself (exponential backoff, reduced here to 0.5-5 s); while it is
down the consumer falls back to REST polling. Neither the keys nor the stream object are ever
logged. alpaca-py is imported only when a feed is built, so importing this module (for the
protocol or :class:`NoOrderUpdates`) loads neither alpaca-py nor websockets.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from importlib import metadata
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from alchemiser_broker.exceptions import MalformedResponseError
from alchemiser_broker.models import BrokerOrder
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.observability.logging import get_logger

if TYPE_CHECKING:
    from alpaca.trading.stream import TradingStream

__all__ = ["NoOrderUpdates", "OrderUpdates", "TradeUpdatesFeed"]

_log = get_logger(__name__)

RECONNECT_MIN_BACKOFF_S = 0.5
RECONNECT_MAX_BACKOFF_S = 5.0
STOP_TIMEOUT_S = 5.0
MAX_ORDERS_KEPT = 10_000
"""Orders remembered (the oldest first forgotten); far more than a trading day places."""

# websockets' keep-alive: a silent (half-open) connection is dropped after about 30 s, not
# alpaca-py's default 180 s, so the consumer falls back to polling soon.
_WEBSOCKET_PARAMS: dict[str, Any] = {"ping_interval": 10, "ping_timeout": 20, "max_queue": 1024}
# What the feed uses of alpaca-py's TradingStream beyond its public API (checked at build).
_REQUIRED_METHODS = ("_start_ws", "_dispatch", "close", "stop_ws", "run")
_REQUIRED_ATTRIBUTES = ("_ws", "_loop")


@runtime_checkable
class OrderUpdates(Protocol):
    """Order states pushed by the broker, newest per ``client_order_id``."""

    @property
    def live(self) -> bool:
        """Whether the stream is connected, authorised and listening."""
        ...

    def latest(self, client_order_id: str) -> BrokerOrder | None:
        """The newest state the stream delivered for ``client_order_id`` (None: none)."""
        ...

    def wait(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s``; return early when an update arrives or liveness changes."""
        ...

    def take_gap(self) -> bool:
        """True once after each (re)connection: updates may have been missed, re-read over
        REST what is open. False until the next reconnection."""
        ...


class NoOrderUpdates:
    """No stream: never live, nothing delivered; :meth:`wait` just sleeps."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep

    @property
    def live(self) -> bool:
        """Never live."""
        return False

    def latest(self, client_order_id: str) -> BrokerOrder | None:
        """Nothing is ever delivered."""
        return None

    def wait(self, timeout_s: float) -> None:
        """Sleep ``timeout_s`` (nothing can end the wait early)."""
        self._sleep(timeout_s)

    def take_gap(self) -> bool:
        """Never a gap (never connected)."""
        return False


def _alpaca_version() -> str:
    try:
        return metadata.version("alpaca-py")
    except metadata.PackageNotFoundError:  # pragma: no cover - alpaca-py is a dependency
        return "unknown"


class TradeUpdatesFeed:
    """Alpaca's ``trade_updates`` stream in a daemon thread, as :class:`OrderUpdates`.

    ``with TradeUpdatesFeed(key, secret) as feed:`` starts and stops it; :meth:`start` and
    :meth:`stop` are idempotent (a stopped feed can be started again).
    """

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        paper: bool = True,
        url: str | None = None,
    ) -> None:
        if not api_key or not secret_key:
            raise ConfigurationError("the trade updates feed needs an Alpaca API key and secret")
        self._api_key = api_key
        self._secret_key = secret_key
        self._paper = paper
        self._url = url
        self._cond = threading.Condition()
        self._orders: OrderedDict[str, BrokerOrder] = OrderedDict()
        self._live = False
        self._gap = False
        self._events = 0  # bumped on every update or liveness change
        self._events_seen = 0  # what the last wait() saw
        self._updates_received = 0
        self._updates_malformed = 0
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()
        self._stream = self._new_stream()  # checks alpaca-py's hooks now, not in the thread

    def __repr__(self) -> str:
        return f"TradeUpdatesFeed(paper={self._paper}, url={self._url!r}, live={self.live})"

    # ------------------------------------------------------------ OrderUpdates

    @property
    def live(self) -> bool:
        """Whether the stream is connected, authorised and listening to ``trade_updates``."""
        with self._cond:
            return self._live

    def latest(self, client_order_id: str) -> BrokerOrder | None:
        """The newest state delivered for ``client_order_id``."""
        with self._cond:
            return self._orders.get(client_order_id)

    def wait(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s``; return at once if anything happened since the last wait
        returned (an update, a connection or a disconnection), else when it happens."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            while self._events == self._events_seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            self._events_seen = self._events

    def take_gap(self) -> bool:
        """True once after each (re)connection, then False until the next one."""
        with self._cond:
            gap, self._gap = self._gap, False
            return gap

    @property
    def updates_received(self) -> int:
        """Trade updates read successfully (older ones ignored included)."""
        with self._cond:
            return self._updates_received

    @property
    def updates_malformed(self) -> int:
        """Trade updates skipped because their order could not be read."""
        with self._cond:
            return self._updates_malformed

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the stream's thread (no-op while it runs)."""
        with self._lifecycle:
            if self._thread is not None and self._thread.is_alive():
                return
            if self._thread is not None:  # stopped before: alpaca-py's stream is single-use
                self._stream = self._new_stream()
            # alpaca-py logs a stack trace per failed reconnection; the feed itself says when
            # the stream goes down and comes back, in one line each
            logging.getLogger("alpaca.trading.stream").setLevel(logging.CRITICAL)
            self._thread = threading.Thread(
                target=self._run, name="alpaca-trade-updates", daemon=True
            )
            self._thread.start()
            _log.info("trade updates stream started", paper=self._paper, url=self._url)

    def stop(self) -> None:
        """Stop the stream and join its thread (bounded by a few seconds); idempotent."""
        with self._lifecycle:
            thread = self._thread
            if thread is None or not thread.is_alive():
                self._set_live(False)
                return
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while thread.is_alive() and time.monotonic() < deadline:
                loop = self._stream._loop
                if loop is not None and loop.is_running():
                    future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
                    try:
                        future.result(timeout=max(0.1, deadline - time.monotonic()))
                    except Exception as err:
                        _log.warning("trade updates stream did not close cleanly", error=str(err))
                    break
                time.sleep(0.01)  # the thread has not started its event loop yet
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                _log.warning("trade updates thread still running after stop (daemon, left)")
            self._set_live(False)
            _log.info("trade updates stream stopped")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ internals

    def _run(self) -> None:
        try:
            self._stream.run()
        except Exception as err:
            _log.error("trade updates stream ended with an error", error=str(err))
        finally:
            self._set_live(False)

    async def _shutdown(self) -> None:
        """On the stream's loop: ask alpaca-py to stop, then close the socket so the pending
        receive ends now rather than at its 5 s timeout."""
        stream = self._stream
        await stream.stop_ws()
        ws = stream._ws
        if ws is None:
            return
        try:
            await asyncio.wait_for(ws.close(), timeout=1.0)
        except TimeoutError:  # the server does not answer the close: drop the connection
            transport = getattr(ws, "transport", None)
            if transport is not None:
                transport.abort()

    def _set_live(self, live: bool) -> None:
        with self._cond:
            if live == self._live:
                return
            self._live = live
            if live:
                self._gap = True
            self._events += 1
            self._cond.notify_all()
        if live:
            _log.info("trade updates stream live")
        else:
            _log.info("trade updates stream down")

    def _on_listening(self, msg: Mapping[str, Any]) -> None:
        data = msg.get("data")
        streams = data.get("streams") if isinstance(data, Mapping) else None
        if isinstance(streams, list) and "trade_updates" in streams:
            self._set_live(True)

    async def _on_trade_update(self, msg: Any) -> None:
        """alpaca-py's handler (raw data: the whole message)."""
        self._accept(msg)

    def _accept(self, msg: Any) -> None:
        from alchemiser_broker.alpaca_mapping import order_from_json

        try:
            data = msg["data"]
            order = order_from_json(data["order"])
        except (MalformedResponseError, KeyError, TypeError, ValueError, AttributeError) as err:
            with self._cond:
                self._updates_malformed += 1
            _log.warning("malformed trade update skipped", error=str(err)[:300])
            return
        event = data.get("event") if isinstance(data, Mapping) else None
        cid = order.client_order_id
        with self._cond:
            self._updates_received += 1
            stored = self._orders.get(cid)
            if (
                stored is not None
                and stored.updated_at is not None
                and order.updated_at is not None
                and order.updated_at < stored.updated_at
            ):
                stale = True
            else:
                stale = False
                self._orders[cid] = order
                self._orders.move_to_end(cid)
                while len(self._orders) > MAX_ORDERS_KEPT:
                    self._orders.popitem(last=False)
                self._events += 1
                self._cond.notify_all()
        _log.debug(
            "trade update",
            trade_event=str(event),
            client_order_id=cid,
            status=order.status.value,
            filled_qty=str(order.filled_qty),
            ignored_as_older=stale,
        )

    def _new_stream(self) -> TradingStream:
        return _make_stream(self, self._api_key, self._secret_key, self._paper, self._url)


def _make_stream(
    feed: TradeUpdatesFeed, api_key: str, secret_key: str, paper: bool, url: str | None
) -> TradingStream:
    """alpaca-py's ``TradingStream`` with liveness hooks into ``feed``, checked and subscribed."""
    from alpaca.trading.stream import TradingStream

    for hook in _REQUIRED_METHODS:
        if not callable(getattr(TradingStream, hook, None)):
            raise ConfigurationError(
                f"alpaca-py {_alpaca_version()} TradingStream has no {hook}(); this alpaca-py "
                "version is not supported by the trade updates feed"
            )

    class _FeedStream(TradingStream):
        async def _start_ws(self) -> None:
            await super()._start_ws()  # type: ignore[no-untyped-call]
            _log.info("trade updates connection authorised; listening requested")

        async def _dispatch(self, msg: dict[str, Any]) -> None:
            if isinstance(msg, dict) and msg.get("stream") == "listening":
                feed._on_listening(msg)
            await super()._dispatch(msg)

        async def close(self) -> None:
            feed._set_live(False)
            await super().close()

    stream = _FeedStream(
        api_key,
        secret_key,
        paper=paper,
        raw_data=True,
        url_override=url,  # type: ignore[arg-type]
        websocket_params=dict(_WEBSOCKET_PARAMS),
    )
    for attribute in _REQUIRED_ATTRIBUTES:
        if not hasattr(stream, attribute):
            raise ConfigurationError(
                f"alpaca-py {_alpaca_version()} TradingStream has no {attribute}; this "
                "alpaca-py version is not supported by the trade updates feed"
            )
    if hasattr(stream, "_reconnect_min_backoff") and hasattr(stream, "_reconnect_max_backoff"):
        stream._reconnect_min_backoff = RECONNECT_MIN_BACKOFF_S
        stream._reconnect_max_backoff = RECONNECT_MAX_BACKOFF_S
    stream.subscribe_trade_updates(feed._on_trade_update)
    return stream

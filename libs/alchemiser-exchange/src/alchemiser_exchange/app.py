"""The exchange's HTTP and WebSocket API: Alpaca's trading and market-data routes, its stream.

Routes (every one but ``/healthz`` and the admin route authenticates with Alpaca's headers
``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``; the key selects the account):

* trading: ``GET /v2/account``, ``GET /v2/account/portfolio/history`` (daily points only),
  ``GET /v2/clock``, ``GET /v2/assets/{symbol}``,
  ``GET /v2/positions[/{symbol}]``, ``DELETE /v2/positions/{symbol}``, ``POST|GET /v2/orders``,
  ``GET /v2/orders:by_client_order_id``, ``GET|PATCH|DELETE /v2/orders/{id}``;
* market data (the same base URL): ``GET /v2/stocks/{trades,quotes,bars}/latest?symbols=``
  and ``GET /v2/stocks/{symbol}/{trades,quotes,bars}/latest``;
* the trade-updates stream: WebSocket ``/stream`` (authenticate, listen, then one message per
  order event), what alpaca-py's ``TradingStream`` reads;
* the exchange's own: ``GET|PUT /exchange/v1/session`` (the account's session clock) and
  ``POST /exchange/v1/accounts`` (open an account; needs ``admin_token`` when one is set).

Errors are Alpaca's: ``{"code": ..., "message": ...}`` with its status (401, 403, 404, 422,
429 with ``Retry-After``, 503 when the database is down). Every authenticated answer carries
``X-Ratelimit-Limit``/``-Remaining``/``-Reset``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from alchemiser_broker.models import OrderSide, OrderType
from alchemiser_common.observability.logging import get_logger
from alchemiser_exchange import history, shapes
from alchemiser_exchange.book import Exchange, OrderSpec
from alchemiser_exchange.errors import (
    ExchangeError,
    InvalidOrderError,
    NotAuthorizedError,
    NotFoundError,
)
from alchemiser_exchange.orders import TradeUpdate

__all__ = ["Account", "Caller", "RateLimiter", "StreamHub", "authorised", "create_app"]

_log = get_logger(__name__)
_MAX_CLIENT_ORDER_ID = 128
_BAD_BODY = 40010000
_RATE_LIMITED = 42910000
_WINDOW_S = 60.0


class RateLimitedError(ExchangeError):
    """Too many requests from one key in the last minute (429)."""

    status = 429
    code = _RATE_LIMITED

    def __init__(self, retry_after_s: int, headers: dict[str, str]) -> None:
        super().__init__("rate limit exceeded")
        self.retry_after_s = retry_after_s
        self.headers = headers


class RateLimiter:
    """At most ``per_minute`` requests per API key in any 60 s window (0: no limit).

    ``per_minute`` may be a callable, read on every request (the exchange's current rules).
    """

    def __init__(self, per_minute: int | Callable[[], int], *, now: Any = time.time) -> None:
        self._limit: Callable[[], int] = (
            per_minute if callable(per_minute) else (lambda: per_minute)
        )
        self._now = now
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @property
    def per_minute(self) -> int:
        """The current limit."""
        return self._limit()

    def admit(self, key: str) -> dict[str, str]:
        """Count one request of ``key``; its rate-limit headers, or ``RateLimitedError``."""
        per_minute = self.per_minute
        if per_minute <= 0:
            return {}
        now = self._now()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - _WINDOW_S:
                seen.popleft()
            reset = math.ceil((seen[0] if seen else now) + _WINDOW_S)
            headers = {"X-Ratelimit-Limit": str(per_minute), "X-Ratelimit-Reset": str(reset)}
            if len(seen) >= per_minute:
                headers["X-Ratelimit-Remaining"] = "0"
                retry = max(1, math.ceil(seen[0] + _WINDOW_S - now))
                raise RateLimitedError(retry, {**headers, "Retry-After": str(retry)})
            seen.append(now)
            headers["X-Ratelimit-Remaining"] = str(per_minute - len(seen))
            return headers


class StreamHub:
    """Fans the exchange's trade updates out to the stream connections of each account."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]]] = {}

    def attach(self, account_number: str) -> asyncio.Queue[str]:
        """A queue receiving the account's updates (call on the connection's event loop)."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        with self._lock:
            self._queues.setdefault(account_number, set()).add((asyncio.get_running_loop(), queue))
        return queue

    def detach(self, account_number: str, queue: asyncio.Queue[str]) -> None:
        """Stop feeding ``queue``."""
        with self._lock:
            entries = self._queues.get(account_number, set())
            for entry in [entry for entry in entries if entry[1] is queue]:
                entries.discard(entry)

    def publish(self, account_number: str, update: TradeUpdate) -> None:
        """Queue ``update`` for every connection of the account (from any thread)."""
        message = json.dumps(shapes.trade_update_json(update))
        with self._lock:
            targets = list(self._queues.get(account_number, ()))
        for loop, queue in targets:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(queue.put_nowait, message)

    @property
    def connections(self) -> int:
        """How many stream connections are listening."""
        with self._lock:
            return sum(len(entries) for entries in self._queues.values())


def _decimal(body: dict[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise InvalidOrderError(f"invalid {name} {value!r}") from None
    if not result.is_finite():
        raise InvalidOrderError(f"invalid {name} {value!r}")
    return result


def _order_spec(body: dict[str, Any]) -> OrderSpec:
    missing = [name for name in ("symbol", "side", "type", "time_in_force") if not body.get(name)]
    if missing:
        raise InvalidOrderError(f"{missing[0]} is required")
    try:
        side, order_type = OrderSide(body["side"]), OrderType(body["type"])
    except ValueError:
        raise InvalidOrderError(f"unsupported side/type {body['side']}/{body['type']}") from None
    qty, notional = _decimal(body, "qty"), _decimal(body, "notional")
    limit_price = _decimal(body, "limit_price")
    if (qty is None) == (notional is None):
        raise InvalidOrderError("qty or notional is required, not both")
    if (qty or notional or Decimal(0)) <= 0:
        raise InvalidOrderError("qty/notional must be > 0")
    if order_type is OrderType.LIMIT and (limit_price is None or notional is not None):
        raise InvalidOrderError("limit orders need limit_price and qty")
    if order_type is OrderType.MARKET and limit_price is not None:
        raise InvalidOrderError("market orders take no limit_price")
    cid = body.get("client_order_id")
    if cid is not None and (not isinstance(cid, str) or len(cid) > _MAX_CLIENT_ORDER_ID):
        raise InvalidOrderError("client_order_id must be no more than 128 characters")
    return OrderSpec(
        symbol=str(body["symbol"]),
        side=side,
        order_type=order_type,
        time_in_force=str(body["time_in_force"]),
        qty=qty,
        notional=notional,
        limit_price=limit_price,
        client_order_id=cid or None,
    )


def _symbols(text: str | None) -> list[str]:
    return [symbol for symbol in (text or "").split(",") if symbol]


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _BadBodyError("request body format is invalid")
    return body


class _BadBodyError(ExchangeError):
    status = 400
    code = _BAD_BODY


_KEY_ID_HEADER = "APCA-API-KEY-ID"
_SECRET_KEY_HEADER = "APCA-API-SECRET-KEY"  # noqa: S105 - a header name


@dataclass(frozen=True, slots=True)
class Caller:
    """Whose request it is: the account its keys open (routes read the account's state
    themselves, inside their own transaction)."""

    account_number: str


async def authorised(request: Request) -> Caller:
    """The account of the request's Alpaca key headers, counted by the rate limiter.

    The rate-limit headers are kept in ``request.state``; a middleware adds them to whatever
    answer the request gets (a 204, an error), not only to a route's JSON. A key pair the
    exchange already knows is answered on the event loop; only a new one is looked up in the
    database, in the thread pool (a synchronous dependency would cost every request a
    thread hand-off of its own, before the route's). The two headers are read from the
    request, not declared as ``Header`` parameters: FastAPI validates declared parameters on
    every request, which cost more than the rest of this function (~0.2 ms a request here).
    """
    key = request.headers.get(_KEY_ID_HEADER)
    secret = request.headers.get(_SECRET_KEY_HEADER)
    if not key or not secret:
        raise NotAuthorizedError("request is not authorized")
    exchange: Exchange = request.app.state.exchange
    number = exchange.remembered_account_number(key, secret)
    if number is None:
        number = await run_in_threadpool(exchange.account_number_of, key, secret)
    limiter: RateLimiter = request.app.state.limiter
    request.state.rate_limit_headers = limiter.admit(key)
    return Caller(number)


Account = Annotated[Caller, Depends(authorised)]
"""A route parameter: the authenticated account."""


class _RateLimitHeaders:
    """Adds the rate-limit headers :func:`authorised` kept in the request's state to the
    answer's headers, whatever the answer (a route's JSON, a 204, an error).

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` (``@app.middleware``) runs
    each request in an extra task with a streamed copy of the response, which costs more
    than most of the exchange's routes themselves.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get("rate_limit_headers")
                if extra:
                    headers = MutableHeaders(scope=message)
                    for name, value in extra.items():
                        headers.setdefault(name, value)
            await send(message)

        await self._app(scope, receive, sending)


def create_app(
    exchange: Exchange, *, admin_token: str | None = None, hub: StreamHub | None = None
) -> FastAPI:
    """The FastAPI application serving ``exchange``."""
    app = FastAPI(title="Alchemiser paper exchange", docs_url=None, redoc_url=None)
    streams = hub or StreamHub()
    app.state.unsubscribe = exchange.subscribe(streams.publish)
    app.state.exchange = exchange
    app.state.limiter = RateLimiter(lambda: exchange.trading.rate_limit_per_minute)
    app.state.hub = streams

    @app.exception_handler(ExchangeError)
    async def _refused(_request: Request, err: ExchangeError) -> JSONResponse:
        headers = err.headers if isinstance(err, RateLimitedError) else None
        return JSONResponse(
            {"code": err.code, "message": err.message}, status_code=err.status, headers=headers
        )

    app.add_middleware(_RateLimitHeaders)

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"status": "ok", "streams": streams.connections}

    _trading_routes(app, exchange)
    _market_data_routes(app, exchange)
    _exchange_routes(app, exchange, admin_token)

    @app.websocket("/stream")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await _serve_stream(websocket, exchange, streams)
        except WebSocketDisconnect:
            return

    return app


def _trading_routes(app: FastAPI, exchange: Exchange) -> None:

    @app.get("/v2/account")
    def account(acct: Account) -> dict[str, Any]:
        return shapes.account_json(exchange.balances(acct.account_number))

    @app.get("/v2/account/portfolio/history")
    def portfolio_history(
        acct: Account,
        *,
        period: str | None = None,
        timeframe: str | None = None,
        start: str | None = None,
        end: str | None = None,
        date_end: str | None = None,
        intraday_reporting: str | None = None,
        pnl_reset: str | None = None,
    ) -> Response:
        first, last = history.resolve_window(
            current=exchange.session_of(exchange.account(acct.account_number)),
            period=period,
            timeframe=timeframe,
            start=start,
            end=end,
            date_end=date_end,
            intraday_reporting=intraday_reporting,
            pnl_reset=pnl_reset,
        )
        points = exchange.equity_history(acct.account_number, first, last)
        return Response(shapes.portfolio_history_text(points), media_type="application/json")

    @app.get("/v2/clock")
    def clock(acct: Account) -> dict[str, Any]:
        return shapes.clock_json(exchange.clock(acct.account_number))

    @app.get("/v2/assets/{symbol}")
    def asset(symbol: str, acct: Account) -> dict[str, Any]:
        if not exchange.is_known(symbol):
            raise NotFoundError("asset not found")
        return shapes.asset_json(
            symbol, fractionable=exchange.is_fractionable(symbol), tradable=True
        )

    @app.get("/v2/positions")
    def positions(acct: Account) -> list[dict[str, Any]]:
        return [shapes.position_json(p) for p in exchange.positions(acct.account_number)]

    @app.get("/v2/positions/{symbol}")
    def position(symbol: str, acct: Account) -> dict[str, Any]:
        return shapes.position_json(exchange.position(acct.account_number, symbol))

    @app.delete("/v2/positions/{symbol}")
    def close_position(symbol: str, acct: Account) -> dict[str, Any]:
        return shapes.order_json(exchange.close_position(acct.account_number, symbol))

    @app.post("/v2/orders")
    async def submit(request: Request, acct: Account) -> dict[str, Any]:
        spec = _order_spec(await _json_body(request))
        order = await run_in_threadpool(exchange.submit, acct.account_number, spec)
        return shapes.order_json(order)

    @app.get("/v2/orders")
    def list_orders(acct: Account, status: str = "open", limit: int = 50) -> list[dict[str, Any]]:
        found = exchange.orders(acct.account_number, status=status, limit=min(max(limit, 1), 500))
        return [shapes.order_json(order) for order in found]

    @app.get("/v2/orders:by_client_order_id")
    def by_client_order_id(client_order_id: str, acct: Account) -> dict[str, Any]:
        return shapes.order_json(exchange.order_by_client_id(acct.account_number, client_order_id))

    @app.get("/v2/orders/{order_id}")
    def get_order(order_id: str, acct: Account) -> dict[str, Any]:
        return shapes.order_json(exchange.order(acct.account_number, order_id))

    @app.delete("/v2/orders/{order_id}", status_code=204)
    def cancel(order_id: str, acct: Account) -> Response:
        exchange.cancel(acct.account_number, order_id)
        return Response(status_code=204)

    @app.patch("/v2/orders/{order_id}")
    async def replace(order_id: str, request: Request, acct: Account) -> dict[str, Any]:
        body = await _json_body(request)
        tif = body.get("time_in_force")
        order = await run_in_threadpool(
            lambda: exchange.replace(
                acct.account_number,
                order_id,
                qty=_decimal(body, "qty"),
                limit_price=_decimal(body, "limit_price"),
                time_in_force=str(tif) if tif else None,
            )
        )
        return shapes.order_json(order)


def _market_data_routes(app: FastAPI, exchange: Exchange) -> None:

    def _latest(kind: str, acct: Caller, symbols: list[str]) -> dict[str, Any]:
        session = exchange.session_of(exchange.account(acct.account_number))
        at = exchange.session_time(session)
        found: dict[str, Any] = {}
        if kind == "quotes":
            for symbol in symbols:
                quote = exchange.quote(acct.account_number, symbol)
                if quote is not None:
                    found[symbol] = shapes.quote_json(quote)
            return {kind: found}
        for symbol, bar in exchange.session_bars(acct.account_number, symbols).items():
            found[symbol] = (
                shapes.trade_json(bar.close, at) if kind == "trades" else shapes.bar_json(bar, at)
            )
        return {kind: found}

    for kind in ("trades", "quotes", "bars"):
        _add_latest_routes(app, kind, _latest)


def _exchange_routes(app: FastAPI, exchange: Exchange, admin_token: str | None) -> None:

    @app.get("/exchange/v1/session")
    def get_session(acct: Account) -> dict[str, Any]:
        session = exchange.session_of(exchange.account(acct.account_number))
        return _session_json(acct, session, exchange)

    @app.put("/exchange/v1/session")
    async def put_session(request: Request, acct: Account) -> dict[str, Any]:
        body = await _json_body(request)
        try:
            session = date.fromisoformat(str(body.get("session")))
        except ValueError:
            raise InvalidOrderError("session must be a date (YYYY-MM-DD)") from None
        await run_in_threadpool(exchange.set_session, acct.account_number, session)
        return _session_json(acct, session, exchange)

    @app.post("/exchange/v1/accounts")
    async def open_account(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        if admin_token and authorization != f"Bearer {admin_token}":
            raise NotAuthorizedError("admin token required")
        body = await _json_body(request)
        cash = _decimal(body, "cash")
        record = await run_in_threadpool(
            lambda: exchange.open_account(
                str(body.get("api_key_id") or ""),
                str(body.get("secret_key") or ""),
                account_number=body.get("account_number") or None,
                cash=cash,
            )
        )
        return shapes.account_json(exchange.balances(record.account_number))


def _session_json(acct: Caller, session: date, exchange: Exchange) -> dict[str, Any]:
    clock = exchange.clock(acct.account_number)
    return {"account_number": acct.account_number, "session": session.isoformat()} | (
        shapes.clock_json(clock)
    )


def _add_latest_routes(app: FastAPI, kind: str, latest: Any) -> None:
    def many(acct: Account, symbols: str = "") -> dict[str, Any]:
        return latest(kind, acct, _symbols(symbols))  # type: ignore[no-any-return]

    def one(symbol: str, acct: Account) -> dict[str, Any]:
        found = latest(kind, acct, [symbol])[kind]
        if symbol not in found:
            raise NotFoundError(f"no {kind[:-1]} found for {symbol}")
        return {"symbol": symbol, kind[:-1]: found[symbol]}

    app.add_api_route(f"/v2/stocks/{kind}/latest", many, methods=["GET"])
    app.add_api_route(f"/v2/stocks/{{symbol}}/{kind}/latest", one, methods=["GET"])


async def _receive_json(websocket: WebSocket) -> dict[str, Any]:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    raw = message.get("text") or message.get("bytes") or b""
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {}


async def _serve_stream(websocket: WebSocket, exchange: Exchange, hub: StreamHub) -> None:
    """Alpaca's protocol: authenticate, then listen to ``trade_updates``, then updates."""
    hello = await _receive_json(websocket)
    raw_data = hello.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    key = str(data.get("key_id") or hello.get("key") or "")
    secret = str(data.get("secret_key") or hello.get("secret") or "")
    try:
        if hello.get("action") not in ("authenticate", "auth"):
            raise NotAuthorizedError("authenticate first")
        account = await run_in_threadpool(exchange.authenticate, key, secret)
    except ExchangeError:
        await websocket.send_text(
            json.dumps(
                {
                    "stream": "authorization",
                    "data": {"status": "unauthorized", "action": "authenticate"},
                }
            )
        )
        await websocket.close(code=1008)
        return
    await websocket.send_text(
        json.dumps(
            {"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}}
        )
    )
    queue: asyncio.Queue[str] | None = None
    try:
        while queue is None:
            request = await _receive_json(websocket)
            streams = (request.get("data") or {}).get("streams") or []
            if request.get("action") == "listen":
                listening = [name for name in streams if name == "trade_updates"]
                if listening:
                    queue = hub.attach(account.account_number)
                await websocket.send_text(
                    json.dumps({"stream": "listening", "data": {"streams": listening}})
                )
        _log.info("trade updates stream listening", account_number=account.account_number)
        await _pump(websocket, queue)
    finally:
        if queue is not None:
            hub.detach(account.account_number, queue)


async def _pump(websocket: WebSocket, queue: asyncio.Queue[str]) -> None:
    """Send queued updates until the client goes away (its messages are read and ignored)."""

    async def read_until_closed() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return

    reader = asyncio.create_task(read_until_closed())
    try:
        while not reader.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await websocket.send_text(getter.result())
            else:
                getter.cancel()
    finally:
        reader.cancel()

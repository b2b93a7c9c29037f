"""The broker port served by an :class:`~alchemiser_exchange.book.Exchange` in this process.

:class:`ExchangeBroker` is what the HTTP API and the Alpaca adapter do together, minus the
wire: each call runs the exchange method the route runs, shapes the answer with the route's
:mod:`.shapes` function and reads it with the Alpaca adapter's own mapping
(:mod:`alchemiser_broker.alpaca_mapping`). A backtest run in one process (``alchemiser
backtest --mode inprocess``) therefore sees the same values, to the last digit, as the
services see over HTTP, from the same matching core.

Errors are classified as the Alpaca adapter classifies the HTTP answers: 404 ->
``OrderNotFoundError``, a refusal -> ``OrderRejectedError``, a reused ``client_order_id`` ->
the existing order, the database unavailable -> ``BrokerUnavailableError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import TypeVar

from alchemiser_broker import alpaca_mapping as mapping
from alchemiser_broker.conventions import check_replace, close_by_order
from alchemiser_broker.exceptions import (
    BrokerAuthError,
    BrokerError,
    BrokerUnavailableError,
    OrderNotFoundError,
    OrderRejectedError,
)
from alchemiser_broker.models import (
    AccountState,
    AssetInfo,
    BrokerOrder,
    BrokerPosition,
    MarketClock,
    OrderRequest,
    OrderStatus,
    Quote,
)
from alchemiser_exchange import shapes
from alchemiser_exchange.book import Exchange, ExchangeUnavailableError, OrderSpec
from alchemiser_exchange.errors import (
    DuplicateOrderError,
    ExchangeError,
    NotAuthorizedError,
    NotFoundError,
)
from alchemiser_exchange.schema import OrderRecord

__all__ = ["ExchangeBroker"]

T = TypeVar("T")


def _call(what: str, call: Callable[[], T]) -> T:
    """``call()`` with the exchange's refusals as the broker errors the adapter raises."""
    try:
        return call()
    except ExchangeUnavailableError as err:
        raise BrokerUnavailableError(f"{what}: {err.message}") from err
    except NotFoundError as err:
        raise OrderNotFoundError(f"{what}: {err.message}") from err
    except NotAuthorizedError as err:
        raise BrokerAuthError(f"{what}: {err.message}") from err
    except ExchangeError as err:
        raise OrderRejectedError(f"{what}: {err.message}") from err


class ExchangeBroker:
    """:class:`~alchemiser_broker.BrokerPort` of one account of ``exchange`` (see the module)."""

    def __init__(self, exchange: Exchange, account_number: str) -> None:
        self._exchange = exchange
        self.account_number = account_number

    def __repr__(self) -> str:
        return f"ExchangeBroker(account={self.account_number})"

    def use_session(self, session: date) -> None:
        """Move the account's clock to ``session`` (``PUT /exchange/v1/session``)."""
        _call(
            f"use session {session}",
            lambda: self._exchange.set_session(self.account_number, session),
        )

    # ------------------------------------------------------------------ reads

    def get_account(self) -> AccountState:
        """``GET /v2/account``."""
        view = _call("get account", lambda: self._exchange.balances(self.account_number))
        return mapping.account_from_json(shapes.account_json(view))

    def get_positions(self) -> list[BrokerPosition]:
        """``GET /v2/positions``."""
        held = _call("get positions", lambda: self._exchange.positions(self.account_number))
        return [mapping.position_from_json(shapes.position_json(item)) for item in held]

    def get_position(self, symbol: str) -> BrokerPosition | None:
        """``GET /v2/positions/{symbol}``; ``None`` for the 404."""
        try:
            found = _call(
                f"get position {symbol}",
                lambda: self._exchange.position(self.account_number, symbol),
            )
        except OrderNotFoundError:
            return None
        return mapping.position_from_json(shapes.position_json(found))

    def get_latest_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        """``GET /v2/stocks/trades/latest``: the session's close per known symbol."""
        wanted = sorted(set(symbols))
        if not wanted:
            return {}

        def latest() -> dict[str, Decimal]:
            # every read inside _call: a database failure is BrokerUnavailableError, as the
            # route's 503 is for the adapter
            exchange = self._exchange
            session = exchange.session_of(exchange.account(self.account_number))
            at = exchange.session_time(session)
            bars = exchange.session_bars(self.account_number, wanted)
            return {
                symbol: mapping.trade_price_from_json(shapes.trade_json(bar.close, at), symbol)
                for symbol, bar in bars.items()
            }

        return _call("latest trades", latest)

    def get_quote(self, symbol: str) -> Quote | None:
        """``GET /v2/stocks/quotes/latest``: the session's quote, or ``None``."""
        quote = _call(
            f"latest quote {symbol}", lambda: self._exchange.quote(self.account_number, symbol)
        )
        return None if quote is None else mapping.quote_from_json(shapes.quote_json(quote), symbol)

    def get_clock(self) -> MarketClock:
        """``GET /v2/clock``: the account's session clock."""
        clock = _call("get clock", lambda: self._exchange.clock(self.account_number))
        return mapping.clock_from_json(shapes.clock_json(clock))

    def get_asset(self, symbol: str) -> AssetInfo:
        """``GET /v2/assets/{symbol}``; ``OrderNotFoundError`` for a symbol it does not list."""
        if not self._exchange.is_known(symbol):
            raise OrderNotFoundError(f"get asset {symbol}: asset not found")
        raw = shapes.asset_json(
            symbol, fractionable=self._exchange.is_fractionable(symbol), tradable=True
        )
        return mapping.asset_from_json(raw)

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """``GET /v2/orders:by_client_order_id``; ``None`` for the 404."""
        try:
            record = _call(
                f"look up order {client_order_id}",
                lambda: self._exchange.order_by_client_id(self.account_number, client_order_id),
            )
        except OrderNotFoundError:
            return None
        return mapping.order_from_json(shapes.order_json(record))

    def get_order(self, broker_order_id: str) -> BrokerOrder:
        """``GET /v2/orders/{id}``."""
        record = _call(
            f"get order {broker_order_id}",
            lambda: self._exchange.order(self.account_number, broker_order_id),
        )
        return mapping.order_from_json(shapes.order_json(record))

    def get_open_orders(self) -> list[BrokerOrder]:
        """``GET /v2/orders?status=open`` (newest first, up to 500)."""
        found = _call(
            "list open orders",
            lambda: self._exchange.orders(self.account_number, status="open", limit=500),
        )
        return [mapping.order_from_json(shapes.order_json(record)) for record in found]

    # ----------------------------------------------------------------- writes

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """``POST /v2/orders``; a reused ``client_order_id`` returns the existing order."""
        mapping.order_request_to_alpaca(request)  # the adapter's own checks, same refusals
        spec = OrderSpec(
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            time_in_force=request.time_in_force.value,
            qty=request.qty,
            notional=request.notional,
            limit_price=request.limit_price,
            client_order_id=request.client_order_id,
        )
        cid = request.client_order_id
        try:
            record = _call(f"submit order {cid}", lambda: self._submit(spec))
        except _DuplicateError:
            existing = self.get_order_by_client_id(cid)
            if existing is None:
                raise BrokerError(f"submit order {cid}: duplicate but not found") from None
            return existing
        return mapping.order_from_json(shapes.order_json(record))

    def cancel_order(self, broker_order_id: str) -> None:
        """``DELETE /v2/orders/{id}``; an order already canceled is fine."""
        try:
            _call(
                f"cancel order {broker_order_id}",
                lambda: self._exchange.cancel(self.account_number, broker_order_id),
            )
        except OrderRejectedError:
            if self.get_order(broker_order_id).status is not OrderStatus.CANCELED:
                raise

    def replace_order(
        self,
        broker_order_id: str,
        *,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
    ) -> BrokerOrder:
        """``PATCH /v2/orders/{id}`` (whole-share quantities, as the Alpaca adapter)."""
        check_replace(qty, limit_price)
        record = _call(
            f"replace order {broker_order_id}",
            lambda: self._exchange.replace(
                self.account_number, broker_order_id, qty=qty, limit_price=limit_price
            ),
        )
        return mapping.order_from_json(shapes.order_json(record))

    def close_position(self, symbol: str, client_order_id: str | None = None) -> BrokerOrder:
        """Liquidate ``symbol``; with ``client_order_id`` an idempotent market order."""
        if client_order_id is None:
            record = _call(
                f"close position {symbol}",
                lambda: self._exchange.close_position(self.account_number, symbol),
            )
            return mapping.order_from_json(shapes.order_json(record))
        return close_by_order(self, symbol, client_order_id)

    # -------------------------------------------------------------- internals

    def _submit(self, spec: OrderSpec) -> OrderRecord:
        try:
            return self._exchange.submit(self.account_number, spec)
        except DuplicateOrderError:
            raise _DuplicateError from None


class _DuplicateError(Exception):
    """Internal: the exchange refused a reused ``client_order_id``."""

"""The Alpaca adapter: :class:`AlpacaBroker` implements the broker port over alpaca-py.

HTTP policy (alpaca-py's own retries are off, every request has a timeout):

* **Reads** (and cancel, which is idempotent) retry transient failures — 5xx, HTML 502
  pages, timeouts, connection resets — up to ``max_retries`` times with a linear backoff; a
  429 waits for ``Retry-After`` / ``X-Ratelimit-Reset`` (capped) before retrying. Then
  :class:`BrokerUnavailableError`.
* **Submit** is idempotent only through ``client_order_id``. A 429 or a connect timeout
  means the order was not accepted: retry with the same id. A 5xx, a read timeout or a
  reset leaves the outcome *ambiguous*: the order is looked up by ``client_order_id`` before
  anything is re-sent; found means adopted, a 404 means the re-send is safe (and if the first
  one did land after all, Alpaca answers 422 "client_order_id must be unique", which is
  adopted too). When the attempts run out, or the look-up itself fails, the caller gets
  :class:`AmbiguousOrderOutcomeError` and resolves it later with
  :meth:`AlpacaBroker.get_order_by_client_id`.
* **Replace** creates a new order at Alpaca, so only a 429 is retried; other transient
  failures raise :class:`BrokerUnavailableError` (re-read the order before trying again).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockLatestQuoteRequest, StockLatestTradeRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest, ReplaceOrderRequest

from alchemiser_broker import alpaca_mapping as mapping
from alchemiser_broker.alpaca_http import (
    TimeoutSession,
    classify_failure,
    configure_client,
    describe_api_error,
    rate_limit_wait_s,
)
from alchemiser_broker.alpaca_settings import AlpacaSettings
from alchemiser_broker.conventions import check_replace, close_by_order
from alchemiser_broker.exceptions import (
    AmbiguousOrderOutcomeError,
    BrokerUnavailableError,
    DuplicateClientOrderIdError,
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
from alchemiser_common.observability.logging import get_logger

__all__ = ["AlpacaBroker"]

_log = get_logger(__name__)
_MAX_ORDERS_PAGE = 500  # Alpaca's maximum page size for GET /v2/orders


class _TransientFailureError(Exception):
    """Internal: one attempt failed transiently; ``ambiguous`` if a submit may have landed."""

    def __init__(self, description: str, *, ambiguous: bool, wait_s: float | None = None):
        super().__init__(description)
        self.ambiguous = ambiguous
        self.wait_s = wait_s


class AlpacaBroker:
    """:class:`~alchemiser_broker.port.BrokerPort` over Alpaca's REST API.

    ``trading_client`` and ``data_client`` may be injected (built with ``raw_data=True``);
    either way they get the timeout session and lose alpaca-py's retries. ``sleep`` and
    ``now`` are injectable so tests do not wait.
    """

    def __init__(
        self,
        settings: AlpacaSettings,
        *,
        trading_client: TradingClient | None = None,
        data_client: StockHistoricalDataClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        settings.require_trading_mode_allowed()
        self._settings = settings
        self._sleep = sleep
        self._now = now
        key = settings.api_key.get_secret_value()
        secret = settings.secret_key.get_secret_value()
        self._trading = trading_client or TradingClient(
            api_key=key,
            secret_key=secret,
            paper=settings.paper,
            raw_data=True,
            url_override=settings.url_override,
        )
        self._data = data_client or StockHistoricalDataClient(
            api_key=key, secret_key=secret, raw_data=True, url_override=settings.data_url_override
        )
        configure_client(self._trading, settings.request_timeout_s)
        configure_client(self._data, settings.request_timeout_s)
        self._session_http = TimeoutSession(settings.request_timeout_s)
        self._session_http.headers.update({"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret})
        _log.info(
            "alpaca broker ready",
            paper=settings.paper,
            trading_url=settings.url_override or ("paper" if settings.paper else "live"),
            request_timeout_s=settings.request_timeout_s,
            max_retries=settings.max_retries,
        )

    def __repr__(self) -> str:
        return f"AlpacaBroker(paper={self._settings.paper})"

    # ---------------------------------------------------------------- session

    def use_session(self, session: date) -> None:
        """Move the paper exchange's account clock to ``session``; Alpaca: nothing to do.

        Idempotent (setting the current session changes nothing), so it is retried like a
        read. Without ``session_url`` (Alpaca itself) the market's own clock rules.
        """
        url = self._settings.session_url
        if url is None:
            return
        self._read(f"use session {session}", self._put_session, url, session, write=True)

    def _put_session(self, url: str, session: date) -> Any:
        """One ``PUT`` of the session; HTTP errors surface as alpaca-py's ``APIError``."""
        response = self._session_http.put(url, json={"session": session.isoformat()})
        try:
            response.raise_for_status()
        except requests.exceptions.HTTPError as err:
            raise APIError(response.text, err) from None  # type: ignore[no-untyped-call]
        return response.json()

    # ------------------------------------------------------------------ reads

    def get_account(self) -> AccountState:
        """The account's cash, buying power and equity."""
        return mapping.account_from_json(self._read("get account", self._trading.get_account))

    def get_positions(self) -> list[BrokerPosition]:
        """All open positions."""
        raw = self._read("get positions", self._trading.get_all_positions)
        return [mapping.position_from_json(item) for item in mapping.as_list(raw, "positions")]

    def get_position(self, symbol: str) -> BrokerPosition | None:
        """The open position in ``symbol``, or ``None`` (Alpaca answers 404)."""
        try:
            raw = self._read(f"get position {symbol}", self._trading.get_open_position, symbol)
        except OrderNotFoundError:
            return None
        return mapping.position_from_json(raw)

    def get_latest_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        """Latest trade prices from the market-data API; unknown symbols are left out."""
        wanted = sorted(set(symbols))
        if not wanted:
            return {}
        request = StockLatestTradeRequest(symbol_or_symbols=wanted, feed=self._settings.data_feed)
        raw = mapping.as_mapping(
            self._read("latest trades", self._data.get_stock_latest_trade, request), "latest trades"
        )
        return {
            symbol: mapping.trade_price_from_json(raw[symbol], symbol)
            for symbol in wanted
            if raw.get(symbol)
        }

    def get_quote(self, symbol: str) -> Quote | None:
        """The latest bid/ask of ``symbol`` from the market-data API, or ``None``."""
        request = StockLatestQuoteRequest(symbol_or_symbols=[symbol], feed=self._settings.data_feed)
        try:
            raw = self._read(f"latest quote {symbol}", self._data.get_stock_latest_quote, request)
        except OrderNotFoundError:
            return None
        entry = mapping.as_mapping(raw, "latest quotes").get(symbol)
        return mapping.quote_from_json(entry, symbol) if entry else None

    def get_clock(self) -> MarketClock:
        """Whether the market is open, and its next open and close."""
        return mapping.clock_from_json(self._read("get clock", self._trading.get_clock))

    def get_asset(self, symbol: str) -> AssetInfo:
        """Tradability of ``symbol``; ``OrderNotFoundError`` when Alpaca does not know it."""
        return mapping.asset_from_json(
            self._read(f"get asset {symbol}", self._trading.get_asset, symbol)
        )

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """The order placed under ``client_order_id``, or ``None`` (Alpaca answers 404)."""
        try:
            raw = self._read(
                f"look up order {client_order_id}",
                self._trading.get_order_by_client_id,
                client_order_id,
            )
        except OrderNotFoundError:
            return None
        return mapping.order_from_json(raw)

    def get_order(self, broker_order_id: str) -> BrokerOrder:
        """The order with Alpaca's id ``broker_order_id`` (not part of the port)."""
        return mapping.order_from_json(
            self._read(
                f"get order {broker_order_id}", self._trading.get_order_by_id, broker_order_id
            )
        )

    def get_open_orders(self) -> list[BrokerOrder]:
        """Every open order, newest first (up to Alpaca's 500; for start-up reconciliation)."""
        request = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=_MAX_ORDERS_PAGE)
        raw = self._read("list open orders", self._trading.get_orders, request)
        return [mapping.order_from_json(item) for item in mapping.as_list(raw, "orders")]

    def get_orders_since(self, after: datetime) -> list[BrokerOrder]:
        """Every order submitted after ``after``, open or not, newest first (up to 500; for
        the operator's ``account show``). The filter is applied again here, for an endpoint
        that ignores ``after``."""
        request = GetOrdersRequest(status=QueryOrderStatus.ALL, after=after, limit=_MAX_ORDERS_PAGE)
        raw = self._read("list recent orders", self._trading.get_orders, request)
        orders = [mapping.order_from_json(item) for item in mapping.as_list(raw, "orders")]
        return [o for o in orders if o.submitted_at is None or o.submitted_at > after]

    # ----------------------------------------------------------------- writes

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Place ``request`` at most once per ``client_order_id`` (see the module docstring)."""
        alpaca_request = mapping.order_request_to_alpaca(request)
        cid = request.client_order_id
        ambiguous = False
        last = "no attempt made"
        for attempt in range(self._settings.max_retries + 1):
            if ambiguous:
                existing = self._lookup_after_ambiguity(cid, last)
                if existing is not None:
                    _log.info("order adopted after ambiguous submit", client_order_id=cid)
                    return existing
            try:
                raw = self._once(
                    f"submit order {cid}", self._trading.submit_order, alpaca_request, submit=True
                )
                return mapping.order_from_json(raw)
            except DuplicateClientOrderIdError:
                return self._adopt_duplicate(cid)
            except _TransientFailureError as err:
                ambiguous = ambiguous or err.ambiguous
                last = str(err)
                _log.warning(
                    "order submit failed transiently; looking the order up before any re-send"
                    if err.ambiguous
                    else "order submit not accepted; retrying with the same client_order_id",
                    client_order_id=cid,
                    attempt=attempt + 1,
                    error=last,
                )
                self._sleep(err.wait_s if err.wait_s is not None else self._backoff(attempt))
        if ambiguous:
            existing = self._lookup_after_ambiguity(cid, last)
            if existing is not None:
                return existing
            raise AmbiguousOrderOutcomeError(
                cid, f"submit of {cid} unresolved after {self._attempts} attempts: {last}"
            )
        raise BrokerUnavailableError(f"submit of {cid} not accepted after retries: {last}")

    def cancel_order(self, broker_order_id: str) -> None:
        """Request cancellation; already canceled is fine, otherwise final raises.

        Retried like a read: if a lost reply hid a successful cancel, the retry's 422 "already
        canceled" is recognised by re-reading the order.
        """
        try:
            self._read(
                f"cancel order {broker_order_id}",
                self._trading.cancel_order_by_id,
                broker_order_id,
                write=True,
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
        """Replace qty (whole shares only: alpaca-py's field is an int) and/or limit price."""
        check_replace(qty, limit_price)
        replace = ReplaceOrderRequest(
            qty=int(qty) if qty is not None else None,
            limit_price=(
                mapping.exact_float(limit_price, "limit_price") if limit_price is not None else None
            ),
        )
        what = f"replace order {broker_order_id}"
        for _attempt in range(self._attempts):
            try:
                raw = self._once(
                    what, self._trading.replace_order_by_id, broker_order_id, replace, write=True
                )
                return mapping.order_from_json(raw)
            except _TransientFailureError as err:
                if err.wait_s is None:  # not a 429: the replace may have happened
                    raise BrokerUnavailableError(
                        f"{what}: {err}; re-read the order before trying again"
                    ) from None
                self._sleep(err.wait_s)
                _log.warning("replace rate-limited; retrying", order_id=broker_order_id)
        raise BrokerUnavailableError(f"{what}: still rate-limited after {self._attempts} attempts")

    def close_position(self, symbol: str, client_order_id: str | None = None) -> BrokerOrder:
        """Liquidate ``symbol``; idempotent when ``client_order_id`` is given.

        Alpaca's ``DELETE /v2/positions/{symbol}`` takes no client_order_id, so with one the
        position is closed by an ordinary market order for the whole quantity (looked up
        first, so a re-run after a crash adopts the earlier order). Without one, the
        close-position endpoint is used and a transient failure is not retried.
        """
        if client_order_id is None:
            raw = self._once(f"close position {symbol}", self._trading.close_position, symbol)
            return mapping.order_from_json(raw)
        return close_by_order(self, symbol, client_order_id)

    # -------------------------------------------------------------- internals

    @property
    def _attempts(self) -> int:
        return self._settings.max_retries + 1

    def _backoff(self, attempt: int) -> float:
        return self._settings.retry_backoff_s * (attempt + 1)

    def _read(self, what: str, call: Callable[..., Any], *args: Any, write: bool = False) -> Any:
        """Run an idempotent call, retrying transient failures (bounded)."""
        last = ""
        for attempt in range(self._attempts):
            try:
                return self._once(what, call, *args, write=write)
            except _TransientFailureError as err:
                last = str(err)
                _log.warning(
                    "broker call failed; retrying", call=what, attempt=attempt + 1, error=last
                )
                if attempt + 1 < self._attempts:
                    self._sleep(err.wait_s if err.wait_s is not None else self._backoff(attempt))
        raise BrokerUnavailableError(f"{what}: unavailable after {self._attempts} attempts: {last}")

    def _once(
        self,
        what: str,
        call: Callable[..., Any],
        *args: Any,
        write: bool = False,
        submit: bool = False,
    ) -> Any:
        """One HTTP call; failures become broker errors or :class:`_TransientFailureError`."""
        try:
            return call(*args)
        except APIError as err:
            failure = describe_api_error(err)
        except requests.exceptions.ConnectTimeout as err:
            # No connection was made, so nothing was sent.
            raise _TransientFailureError(
                f"connect timeout: {type(err).__name__}", ambiguous=False
            ) from None
        except requests.exceptions.RequestException as err:
            # Read timeout, reset, broken body: the request may have been processed.
            raise _TransientFailureError(f"{type(err).__name__}", ambiguous=True) from None
        if failure.status == 429:
            wait = rate_limit_wait_s(
                failure,
                self._now(),
                self._settings.retry_backoff_s,
                self._settings.max_rate_limit_wait_s,
            )
            raise _TransientFailureError(str(failure), ambiguous=False, wait_s=wait)
        if failure.is_server_error:  # 5xx incl. HTML gateway pages: maybe processed
            raise _TransientFailureError(str(failure), ambiguous=True)
        raise classify_failure(what, failure, write=write or submit, submit=submit)

    def _adopt_duplicate(self, cid: str) -> BrokerOrder:
        existing = self.get_order_by_client_id(cid)
        if existing is None:
            raise AmbiguousOrderOutcomeError(
                cid, f"Alpaca reports {cid} as a duplicate but the look-up found no order"
            )
        _log.info("duplicate client_order_id adopted", client_order_id=cid)
        return existing

    def _lookup_after_ambiguity(self, cid: str, last: str) -> BrokerOrder | None:
        try:
            return self.get_order_by_client_id(cid)
        except BrokerUnavailableError as err:
            raise AmbiguousOrderOutcomeError(
                cid, f"submit of {cid} ambiguous ({last}) and the look-up failed: {err}"
            ) from err

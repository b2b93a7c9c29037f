"""The simulated broker: the embedded default broker and the execution service's test double.

:class:`SimulatedBroker` implements :class:`~alchemiser_broker.port.BrokerPort` with its
state (account, positions, orders) in a database through SQLAlchemy Core — SQLite embedded,
PostgreSQL in production — and prices from a :class:`PriceSource` for one simulated date.

Behaviour follows Alpaca where the port's callers can observe it:

* Market orders fill at once at the simulated date's close (wholly, or by
  ``partial_fill_ratio`` leaving the order ``partially_filled``); limit orders fill there when
  marketable (buy limit >= price, sell limit <= price) and otherwise stay ``new``.
* Buys need buying power (cash less what open buy orders hold), sells need the position less
  what open sell orders offer: no shorting. A refusal raises :class:`OrderRejectedError` and
  stores nothing (Alpaca answers 403/422 and creates no order).
* Fractional quantities and notional amounts only for market DAY orders on fractionable
  assets; limit prices in penny increments (sub-penny below $1).
* ``client_order_id`` is unique per account by a database constraint. A second submit with a
  used id is detected by that constraint and, like :class:`AlpacaBroker`, adopted: the
  existing order is returned (whatever the second request said) and nothing else changes.
* ``replace_order`` creates a new order (new broker id, generated ``client_order_id``) and
  marks the old one ``replaced``, as Alpaca does.
* Orders are accepted and filled whatever :meth:`SimulatedBroker.get_clock` reports; the clock
  only informs the caller (``ignore_market_hours`` makes it report the market open).

Every call's state changes commit in one database transaction. Transient database failures
raise :class:`BrokerUnavailableError` (a submit's: :class:`AmbiguousOrderOutcomeError`).
Quantisation of money and quantities: see :mod:`alchemiser_broker.simulated_rules`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from alchemiser_broker import simulated_rules as rules
from alchemiser_broker import simulated_store as store
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
    OrderSide,
    OrderStatus,
    OrderType,
    Quote,
)
from alchemiser_broker.simulated_orders import NewOrder, place_order
from alchemiser_broker.simulated_schema import (
    SIMULATED_BROKER_VERSION_TABLE,
    metadata,
    order_from_row,
    order_table,
)
from alchemiser_broker.simulated_settings import (
    DatedPriceSource,
    PriceSource,
    SimulatedBrokerSettings,
)
from alchemiser_common.db import (
    is_transient_database_error,
    sqlite_engine_is_configured,
    upgrade_to_head,
)
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.observability.logging import get_logger

__all__ = ["SimulatedBroker"]

_MIGRATIONS = Path(__file__).parent / "sim_migrations"
_log = get_logger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SimulatedBroker:
    """:class:`~alchemiser_broker.port.BrokerPort` over a database and a price source.

    ``engine`` must come from :func:`alchemiser_common.db.create_engine_from_url` (SQLite
    needs its ``BEGIN IMMEDIATE``); call :meth:`migrate` once before use. ``clock`` stamps
    orders and the market clock (inject a fixed one in tests).
    """

    def __init__(
        self,
        engine: Engine,
        prices: PriceSource,
        settings: SimulatedBrokerSettings,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if engine.dialect.name == "sqlite" and not sqlite_engine_is_configured(engine):
            raise ConfigurationError(
                "SimulatedBroker needs an engine from alchemiser_common.db."
                "create_engine_from_url (transactions must start with BEGIN IMMEDIATE)"
            )
        if engine.dialect.name not in {"sqlite", "postgresql"}:
            raise ConfigurationError(f"unsupported database dialect {engine.dialect.name!r}")
        self._engine = engine
        self._prices = prices
        self._settings = settings
        self._clock = clock
        self._latest_day: date | None = None

    def __repr__(self) -> str:
        return (
            f"SimulatedBroker(account_id={self._settings.account_id!r}, "
            f"simulated_date={self._settings.simulated_date})"
        )

    @property
    def settings(self) -> SimulatedBrokerSettings:
        """The settings the broker runs with."""
        return self._settings

    def migrate(self) -> None:
        """Create or upgrade the simulated broker's tables (Alembic ``upgrade head``)."""
        with self._translated("migrating the simulated broker tables"):
            upgrade_to_head(
                self._engine,
                script_location=_MIGRATIONS,
                version_table=SIMULATED_BROKER_VERSION_TABLE,
                target_metadata=metadata,
            )

    @property
    def trading_date(self) -> date:
        """The date whose closes are used: the setting, else the dataset's latest date.

        A source that cannot list its dates is asked for the last close up to today (UTC).
        """
        if self._settings.simulated_date is not None:
            return self._settings.simulated_date
        if self._latest_day is None and isinstance(self._prices, DatedPriceSource):
            days = self._prices.trading_days()
            self._latest_day = days[-1] if days else None
        return self._latest_day or self._clock().astimezone(UTC).date()

    # ------------------------------------------------------------------ reads

    def get_account(self) -> AccountState:
        """Cash, buying power (cash less open buy orders' holds) and equity."""
        account_id = self._settings.account_id
        with self._transaction("get account", write=False) as connection:
            cash = store.read_cash(connection, account_id, self._settings.starting_cash)
            reserved = store.reserved_cash(connection, account_id)
            positions = store.read_positions(connection, account_id)
        value = sum((self._position(item).market_value for item in positions), Decimal(0))
        return AccountState(
            account_id=account_id,
            cash=rules.cents(cash),
            buying_power=rules.cents(cash - reserved),
            equity=rules.cents(cash + value),
        )

    def get_positions(self) -> list[BrokerPosition]:
        """All open positions, by symbol, valued at the simulated date's close."""
        with self._transaction("get positions", write=False) as connection:
            positions = store.read_positions(connection, self._settings.account_id)
        return [self._position(item) for item in positions]

    def get_position(self, symbol: str) -> BrokerPosition | None:
        """The open position in ``symbol``, or ``None``."""
        return next((item for item in self.get_positions() if item.symbol == symbol), None)

    def get_latest_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        """The fill price of each symbol on the simulated date; unknown symbols left out."""
        prices = {symbol: self._price(symbol) for symbol in sorted(set(symbols))}
        return {symbol: price for symbol, price in prices.items() if price is not None}

    def get_quote(self, symbol: str) -> Quote | None:
        """A quote ``spread_bps`` wide around the price, or ``None`` for an unknown symbol."""
        price = self._price(symbol)
        if price is None:
            return None
        return rules.quote_for(
            symbol,
            price,
            spread_bps=self._settings.spread_bps,
            size=self._settings.quote_size,
            timestamp=self._clock(),
        )

    def get_clock(self) -> MarketClock:
        """Open when ``ignore_market_hours``, else as ``market_open`` says."""
        is_open = self._settings.ignore_market_hours or self._settings.market_open
        return rules.market_clock(self._clock(), is_open=is_open)

    def get_asset(self, symbol: str) -> AssetInfo:
        """Tradable when priced on the simulated date; ``OrderNotFoundError`` otherwise."""
        if self._price(symbol) is None:
            raise OrderNotFoundError(f"asset not found: {symbol}")
        return AssetInfo(symbol=symbol, fractionable=self._fractionable(symbol), tradable=True)

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """The order placed under ``client_order_id``, or ``None``."""
        query = sa.select(order_table).where(
            order_table.c.account_id == self._settings.account_id,
            order_table.c.client_order_id == client_order_id,
        )
        with self._transaction("look up order", write=False) as connection:
            row = connection.execute(query).mappings().one_or_none()
        return None if row is None else order_from_row(row)

    def get_order(self, broker_order_id: str) -> BrokerOrder:
        """The order with ``broker_order_id`` (not part of the port; ``OrderNotFoundError``)."""
        with self._transaction("get order", write=False) as connection:
            row = self._order_row(connection, broker_order_id)
        return order_from_row(row)

    def get_open_orders(self) -> list[BrokerOrder]:
        """Every working order, oldest first (not part of the port; for reconciliation)."""
        with self._transaction("list open orders", write=False) as connection:
            rows = store.open_orders(connection, self._settings.account_id)
        return [order_from_row(row) for row in rows]

    # ----------------------------------------------------------------- writes

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Place ``request``; a used ``client_order_id`` returns the existing order."""
        cid = request.client_order_id
        try:
            return self._place(request)
        except DuplicateClientOrderIdError:
            existing = self.get_order_by_client_id(cid)
            if existing is None:  # only if the order vanished between the two transactions
                raise AmbiguousOrderOutcomeError(
                    cid, f"{cid} reported as a duplicate but the look-up found no order"
                ) from None
            _log.info("duplicate client_order_id adopted", client_order_id=cid)
            return existing

    def cancel_order(self, broker_order_id: str) -> None:
        """Cancel an open order; already canceled is a no-op, other final states raise."""
        now = self._clock()
        with self._transaction(f"cancel order {broker_order_id}", write=True) as connection:
            self._lock(connection, now)
            row = self._order_row(connection, broker_order_id)
            status = OrderStatus(row["status"])
            if status is OrderStatus.CANCELED:
                return
            if status not in rules.OPEN_STATUSES:
                raise OrderRejectedError(f"order {broker_order_id} is {status} and not cancelable")
            connection.execute(
                sa.update(order_table)
                .where(order_table.c.broker_order_id == broker_order_id)
                .values(status=OrderStatus.CANCELED.value, updated_at=now)
            )

    def replace_order(
        self,
        broker_order_id: str,
        *,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
    ) -> BrokerOrder:
        """Replace an open order: the old becomes ``replaced``, the new one may fill at once.

        Without ``qty`` the new order takes the old one's unfilled quantity.
        """
        if qty is None and limit_price is None:
            raise ValueError("replace_order needs qty or limit_price")
        now = self._clock()
        with self._transaction(f"replace order {broker_order_id}", write=True) as connection:
            cash = self._lock(connection, now)
            old = self._order_row(connection, broker_order_id)
            status = OrderStatus(old["status"])
            if status not in rules.OPEN_STATUSES:
                raise OrderRejectedError(f"order {broker_order_id} is {status}; cannot replace")
            order_type = OrderType(old["order_type"])
            if limit_price is not None and order_type is not OrderType.LIMIT:
                raise OrderRejectedError("limit_price can only be replaced on a limit order")
            new_qty = qty if qty is not None else old["target_qty"] - old["filled_qty"]
            new_id = str(uuid.uuid4())
            connection.execute(
                sa.update(order_table)
                .where(order_table.c.broker_order_id == broker_order_id)
                .values(status=OrderStatus.REPLACED.value, replaced_by=new_id, updated_at=now)
            )
            new_order = NewOrder(
                broker_order_id=new_id,
                client_order_id=str(uuid.uuid4()),
                symbol=old["symbol"],
                side=OrderSide(old["side"]),
                order_type=order_type,
                qty=new_qty,
                notional=None,
                limit_price=limit_price if limit_price is not None else old["limit_price"],
                replaces=broker_order_id,
            )
            return self._place_in(connection, new_order, cash=cash, now=now)

    def close_position(self, symbol: str, client_order_id: str | None = None) -> BrokerOrder:
        """Sell the whole position with a market order (idempotent with ``client_order_id``)."""
        if client_order_id is not None:
            existing = self.get_order_by_client_id(client_order_id)
            if existing is not None:
                return existing
        position = self.get_position(symbol)
        if position is None:
            raise OrderNotFoundError(f"position does not exist: {symbol}")
        request = OrderRequest(
            client_order_id=client_order_id or str(uuid.uuid4()),
            symbol=symbol,
            side=OrderSide.SELL,
            qty=position.qty,
        )
        return self.submit_order(request)

    # -------------------------------------------------------------- internals

    def _place(self, request: OrderRequest) -> BrokerOrder:
        """Insert and execute one order; raises ``DuplicateClientOrderIdError`` on a reused id."""
        now = self._clock()
        with self._transaction(
            f"submit order {request.client_order_id}",
            write=True,
            client_order_id=request.client_order_id,
        ) as connection:
            cash = self._lock(connection, now)
            order = NewOrder(
                broker_order_id=str(uuid.uuid4()),
                client_order_id=request.client_order_id,
                symbol=request.symbol,
                side=request.side,
                order_type=request.order_type,
                qty=request.qty,
                notional=request.notional,
                limit_price=request.limit_price,
            )
            return self._place_in(connection, order, cash=cash, now=now)

    def _place_in(
        self, connection: Connection, order: NewOrder, *, cash: Decimal, now: datetime
    ) -> BrokerOrder:
        return place_order(
            connection,
            order,
            settings=self._settings,
            price=self._price(order.symbol),
            cash=cash,
            now=now,
        )

    def _lock(self, connection: Connection, now: datetime) -> Decimal:
        return store.lock_account(
            connection, self._settings.account_id, self._settings.starting_cash, now
        )

    def _order_row(self, connection: Connection, broker_order_id: str) -> Any:
        query = sa.select(order_table).where(
            order_table.c.account_id == self._settings.account_id,
            order_table.c.broker_order_id == broker_order_id,
        )
        row = connection.execute(query).mappings().one_or_none()
        if row is None:
            raise OrderNotFoundError(f"order not found: {broker_order_id}")
        return row

    def _price(self, symbol: str) -> Decimal | None:
        close = self._prices.close_on(symbol, self.trading_date)
        return None if close is None else rules.fill_price(close)

    def _fractionable(self, symbol: str) -> bool:
        return symbol not in self._settings.non_fractionable

    def _position(self, position: store.Position) -> BrokerPosition:
        price = self._price(position.symbol) or position.avg_entry_price
        return BrokerPosition(
            symbol=position.symbol,
            qty=position.qty,
            avg_entry_price=position.avg_entry_price,
            market_value=rules.cents(position.qty * price),
            current_price=price,
        )

    @contextmanager
    def _translated(self, what: str, client_order_id: str | None = None) -> Iterator[None]:
        """Transient database failures become broker errors the caller knows to retry."""
        try:
            yield
        except sa_exc.SQLAlchemyError as err:
            if not is_transient_database_error(err):
                raise
            if client_order_id is not None:
                raise AmbiguousOrderOutcomeError(
                    client_order_id, f"{what}: database unavailable, outcome unknown: {err}"
                ) from err
            raise BrokerUnavailableError(f"{what}: database unavailable: {err}") from err

    @contextmanager
    def _transaction(
        self, what: str, *, write: bool, client_order_id: str | None = None
    ) -> Iterator[Connection]:
        """One database transaction.

        Writes serialise on the account row (see :mod:`simulated_store`). Reads see one
        snapshot (PostgreSQL ``REPEATABLE READ``; SQLite WAL) and never queue behind writers.
        """
        options: dict[str, Any] = {"sqlite_begin": "IMMEDIATE" if write else "DEFERRED"}
        if not write and self._engine.dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        with (
            self._translated(what, client_order_id),
            self._engine.connect().execution_options(**options) as connection,
            connection.begin(),
        ):
            yield connection

"""The exchange's core: accounts keyed by API key, a session clock per account, the order book.

:class:`Exchange` keeps its state in a database through SQLAlchemy Core (SQLite or
PostgreSQL, tables in :mod:`.schema`) and prices each account's *session* from a
:class:`~alchemiser_marketdata.DatasetMarketData`. The HTTP layer (:mod:`.app`) speaks
Alpaca's API over it; tests drive it directly.

* **Accounts.** One per API key. :meth:`Exchange.open_account` opens one (with a chosen
  account number and cash); an unknown key on its first request opens one with
  ``starting_cash`` when ``auto_open`` is on, numbered ``PA`` + ten characters derived from
  the key (stable, and not the key). The secret is stored only as its SHA-256.
* **Session clock.** Each account trades in one session, a date of the dataset: its clock
  reads that date (open when the dataset has bars for it), its quotes and fills use that
  day's bars. A new account starts in the dataset's last session; :meth:`Exchange.set_session`
  moves it (the workflow's session, set by the services through ``PUT /exchange/v1/session``).
  Moving expires the ``day`` orders of the session left and checks ``gtc`` ones against the
  new session.
* **Trading rules**: :mod:`.rules` (fills, quantities, prices, costs) and :mod:`.orders`
  (checks in order: duplicate id, asset, trading block, shape, funds).
* **Costs**: fills are slipped and charged commissions as the ``TradingRules`` say (zero by
  default: frictionless); :meth:`Exchange.fees` sums an account's commissions.
* **History**: every fill and operator journal is recorded in the account's ledger;
  :meth:`Exchange.equity_history` replays it into the equity at each session's close (see
  :mod:`.history`), from the account's first session (the earliest its clock was set to or
  it placed an order or had an activity in) through its current one.

Every call's changes commit in one transaction under the account's row lock; the
trade updates it caused are then handed to the listeners (:meth:`Exchange.subscribe`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from alchemiser_broker.models import MarketClock, OrderSide, OrderStatus, OrderType, Quote
from alchemiser_common.db import (
    fixed_values,
    is_transient_database_error,
    sqlite_engine_is_configured,
    upgrade_to_head,
)
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.observability.logging import get_logger
from alchemiser_exchange import history, rules, store
from alchemiser_exchange import orders as book_orders
from alchemiser_exchange.errors import (
    ExchangeError,
    InvalidOrderError,
    NotAuthorizedError,
    NotFoundError,
    OrderNotCancelableError,
)
from alchemiser_exchange.history import EquityPoint
from alchemiser_exchange.orders import NewOrder, TradeUpdate
from alchemiser_exchange.schema import (
    EXCHANGE_VERSION_TABLE,
    AccountRecord,
    ActivityType,
    OrderRecord,
    account_table,
    metadata,
    order_table,
    position_table,
)
from alchemiser_exchange.settings import TradingRules
from alchemiser_marketdata import DatasetMarketData

__all__ = [
    "AccountView",
    "Exchange",
    "ExchangeUnavailableError",
    "OrderSpec",
    "PositionView",
    "account_number_for",
]

_MIGRATIONS = Path(__file__).parent / "migrations"
_log = get_logger(__name__)

Listener = Callable[[str, TradeUpdate], None]


class ExchangeUnavailableError(ExchangeError):
    """The exchange's database is unreachable for now (HTTP 503; retry)."""

    status = 503
    code = 50310000


def account_number_for(api_key_id: str) -> str:
    """The number of the account an API key opens on first use: stable, not the key."""
    digest = hashlib.sha256(api_key_id.encode()).digest()
    return "PA" + base64.b32encode(digest).decode()[:10]


def _secret_hash(secret_key: str) -> str:
    return hashlib.sha256(secret_key.encode()).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """An order as a client submits it (the body of ``POST /v2/orders``)."""

    symbol: str
    side: OrderSide
    order_type: OrderType
    time_in_force: str = "day"
    qty: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class PositionView:
    """A position valued at its session's close."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    current_price: Decimal
    market_value: Decimal
    cost_basis: Decimal


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account's balances in its session."""

    record: AccountRecord
    session: date
    cash: Decimal
    buying_power: Decimal
    long_market_value: Decimal
    equity: Decimal


# The statements of the frequent reads, built once with placeholders (see :mod:`.store`).
_ACCOUNT = sa.select(account_table).where(account_table.c.account_number == sa.bindparam("account"))
_ACCOUNT_OF_KEY = sa.select(account_table).where(account_table.c.api_key_id == sa.bindparam("key"))
_ORDER_OF_CLIENT_ID = sa.select(order_table).where(
    order_table.c.account_number == sa.bindparam("account"),
    order_table.c.client_order_id == sa.bindparam("client_id"),
)


def _orders_query(status: str, *, of_session: bool) -> sa.Select[Any]:
    """``Exchange.orders``: the account's orders of a ``status``, newest first, at most
    ``limit`` (of the ``session`` only, when ``of_session``)."""
    query = sa.select(order_table).where(order_table.c.account_number == sa.bindparam("account"))
    if of_session:
        query = query.where(order_table.c.session_date == sa.bindparam("session"))
    open_values = fixed_values(item.value for item in rules.OPEN_STATUSES)
    if status == "open":
        query = query.where(order_table.c.status.in_(open_values))
    elif status == "closed":
        query = query.where(order_table.c.status.not_in(open_values))
    return query.order_by(order_table.c.sequence.desc()).limit(
        sa.bindparam("limit", type_=sa.Integer())
    )


_STATUSES = ("open", "closed", "all")
# The open orders of every session are ``store.open_orders`` (their own index), not a query here.
_ORDERS = {
    (status, of_session): _orders_query(status, of_session=of_session)
    for status in _STATUSES
    for of_session in (False, True)
    if of_session or status != "open"
}


class Exchange:
    """The paper exchange's state and rules (see the module docstring).

    ``engine`` must come from :func:`alchemiser_common.db.create_engine_from_url` (SQLite
    needs its ``BEGIN IMMEDIATE``); call :meth:`migrate` once before use. ``clock`` is the
    wall clock, used only for account creation times.
    """

    def __init__(
        self,
        engine: Engine,
        dataset: DatasetMarketData,
        trading: TradingRules,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if engine.dialect.name == "sqlite" and not sqlite_engine_is_configured(engine):
            raise ConfigurationError(
                "the exchange needs an engine from alchemiser_common.db.create_engine_from_url "
                "(transactions must start with BEGIN IMMEDIATE)"
            )
        if engine.dialect.name not in {"sqlite", "postgresql"}:
            raise ConfigurationError(f"unsupported database dialect {engine.dialect.name!r}")
        self._engine = engine
        self._dataset = dataset
        self.trading = trading
        self._clock = clock
        self._days = frozenset(dataset.trading_days())
        self._sessions = tuple(sorted(self._days))
        self._last_day = max(self._days) if self._days else None
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        # api key id -> (its secret's hash, its account number): both fixed once the account
        # is open (accounts are never re-keyed nor removed), so a request's key is checked
        # against the database once per process
        self._known_keys: dict[str, tuple[str, str]] = {}
        self.hold_fills = False
        """Accept orders as ``new`` without filling them (tests; see :meth:`fill_order`)."""

    def __repr__(self) -> str:
        return f"Exchange(dataset={self._dataset.directory}, sessions={len(self._days)})"

    @property
    def engine(self) -> Engine:
        """The engine the exchange's tables live in."""
        return self._engine

    def use_dataset(self, dataset: DatasetMarketData) -> None:
        """Price from ``dataset`` from now on (a dataset refreshed with new sessions)."""
        days = frozenset(dataset.trading_days())
        self._dataset, self._days, self._sessions = dataset, days, tuple(sorted(days))
        self._last_day = max(days) if days else None

    def migrate(self) -> None:
        """Create or upgrade the exchange's tables (Alembic ``upgrade head``)."""
        with self._translated("migrating the exchange tables"):
            upgrade_to_head(
                self._engine,
                script_location=_MIGRATIONS,
                version_table=EXCHANGE_VERSION_TABLE,
                target_metadata=metadata,
            )

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(account_number, update)`` after each committed change; unsubscribe."""
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    # -------------------------------------------------------------- accounts

    def open_account(
        self,
        api_key_id: str,
        secret_key: str,
        *,
        account_number: str | None = None,
        cash: Decimal | None = None,
    ) -> AccountRecord:
        """Open the account of ``api_key_id`` (idempotent for the same key and secret)."""
        if not api_key_id or not secret_key:
            raise InvalidOrderError("an account needs an API key id and a secret key")
        number = account_number or account_number_for(api_key_id)
        starting = self.trading.starting_cash if cash is None else cash
        now = self._clock()
        row = {
            "account_number": number,
            "api_key_id": api_key_id,
            "secret_sha256": _secret_hash(secret_key),
            "cash": starting,
            "starting_cash": starting,
            "currency": "USD",
            "trading_blocked": False,
            "session_date": None,
            "created_at": now,
            "updated_at": now,
            "first_session_date": None,
        }
        try:
            with self._transaction("open account", write=True) as connection:
                existing = self._row_by_key(connection, api_key_id)
                if existing is None:
                    existing = self._number_holder(connection, number, api_key_id)
                if existing is None:
                    connection.execute(sa.insert(account_table).values(row))
                    _log.info("exchange account opened", account_number=number, cash=str(starting))
                    return AccountRecord.from_row(row)
        except sa_exc.IntegrityError:
            # PostgreSQL: a concurrent first request of the same key inserted the account
            # between our read and our insert (SQLite's BEGIN IMMEDIATE serialises the two).
            with self._transaction("open account", write=False) as connection:
                existing = self._row_by_key(connection, api_key_id)
            if existing is None:
                raise InvalidOrderError(f"account {number} exists with another API key") from None
        if not hmac.compare_digest(existing["secret_sha256"], _secret_hash(secret_key)):
            raise NotAuthorizedError("request is not authorized")
        return AccountRecord.from_row(existing)

    def authenticate(self, api_key_id: str, secret_key: str) -> AccountRecord:
        """The account of a key pair; opened on first use when ``auto_open`` is on."""
        if not api_key_id or not secret_key:
            raise NotAuthorizedError("request is not authorized")
        with self._transaction("authenticate", write=False) as connection:
            row = self._row_by_key(connection, api_key_id)
        if row is None:
            if not self.trading.auto_open:
                raise NotAuthorizedError("request is not authorized")
            return self.open_account(api_key_id, secret_key)
        if not hmac.compare_digest(row["secret_sha256"], _secret_hash(secret_key)):
            raise NotAuthorizedError("request is not authorized")
        return AccountRecord.from_row(row)

    def account_number_of(self, api_key_id: str, secret_key: str) -> str:
        """The number of the account of a key pair: :meth:`authenticate`, remembered."""
        remembered = self.remembered_account_number(api_key_id, secret_key)
        if remembered is not None:
            return remembered
        number = self.authenticate(api_key_id, secret_key).account_number
        self._known_keys[api_key_id] = (_secret_hash(secret_key), number)
        return number

    def remembered_account_number(self, api_key_id: str, secret_key: str) -> str | None:
        """The account number of a key pair :meth:`account_number_of` already authenticated,
        without reading the database (the server's event loop asks this first); else ``None``."""
        known = self._known_keys.get(api_key_id)
        if known is not None and hmac.compare_digest(known[0], _secret_hash(secret_key)):
            return known[1]
        return None

    def accounts(self) -> list[AccountRecord]:
        """Every account, by number."""
        with self._transaction("list accounts", write=False) as connection:
            rows = connection.execute(
                sa.select(account_table).order_by(account_table.c.account_number)
            ).mappings()
            return [AccountRecord.from_row(row) for row in rows]

    def account(self, account_number: str) -> AccountRecord:
        """One account (``NotFoundError`` when there is none)."""
        with self._transaction("get account", write=False) as connection:
            return self._account(connection, account_number)

    # --------------------------------------------------------------- session

    def session_of(self, account: AccountRecord) -> date:
        """The account's session: as set, else the dataset's last trading day."""
        if account.session_date is not None:
            return account.session_date
        if self._last_day is None:
            return self._clock().astimezone(UTC).date()
        return self._last_day

    def clock(self, account_number: str) -> MarketClock:
        """The account's market clock (see :func:`~alchemiser_exchange.rules.session_clock`)."""
        return self._clock_for(self.session_of(self.account(account_number)))

    def set_session(self, account_number: str, session: date) -> MarketClock:
        """Move the account's clock to ``session``; returns the new clock.

        Open ``day`` orders of other sessions expire; open ``gtc`` orders meet the new
        session's bars (and may fill). Setting the current session changes nothing.
        """
        updates: list[TradeUpdate] = []
        with self._transaction(f"set session {session}", write=True) as connection:
            account = store.lock_account(connection, account_number)
            if self.session_of(account) != session or account.session_date is None:
                store.update_account(
                    connection, account_number, session_date=session, updated_at=self._clock()
                )
                updates = self._roll_orders(connection, account_number, session)
                store.note_session(connection, account_number, session, account.first_session_date)
        self._publish(account_number, updates)
        _log.info("session set", account_number=account_number, session=session.isoformat())
        return self._clock_for(session)

    # ----------------------------------------------------------------- reads

    def balances(self, account_number: str) -> AccountView:
        """Cash, buying power (cash less open buys' holds) and equity at the session's close."""
        with self._transaction("get account", write=False) as connection:
            account = self._account(connection, account_number)
            reserved = store.reserved_cash(connection, account_number, self.trading.costs)
            held = store.read_positions(connection, account_number)
        session = self.session_of(account)
        value = sum((self._position_view(item, session).market_value for item in held), Decimal(0))
        return AccountView(
            record=account,
            session=session,
            cash=rules.cents(account.cash),
            buying_power=rules.cents(account.cash - reserved),
            long_market_value=rules.cents(value),
            equity=rules.cents(account.cash + value),
        )

    def positions(self, account_number: str) -> list[PositionView]:
        """Every open position, by symbol, valued at the session's close."""
        with self._transaction("get positions", write=False) as connection:
            account = self._account(connection, account_number)
            held = store.read_positions(connection, account_number)
        session = self.session_of(account)
        return [self._position_view(item, session) for item in held]

    def position(self, account_number: str, symbol: str) -> PositionView:
        """The open position in ``symbol`` (``NotFoundError`` when there is none)."""
        found = [item for item in self.positions(account_number) if item.symbol == symbol]
        if not found:
            raise NotFoundError("position does not exist")
        return found[0]

    def fees(self, account_number: str) -> Decimal:
        """The commissions charged on all the account's orders (``NotFoundError``)."""
        with self._transaction("get fees", write=False) as connection:
            self._account(connection, account_number)
            return store.fees_paid(connection, account_number)

    def equity_history(
        self, account_number: str, start: date | None = None, end: date | None = None
    ) -> list[EquityPoint]:
        """The account at the close of each trading session from ``start`` through ``end``.

        Both inclusive and bounded by the account's first session (the earliest its clock was
        set to or it placed an order or had an activity in; its current session when none is
        recorded) and its current session, which are the defaults. Replayed from the
        account's ledger (:func:`~alchemiser_exchange.history.replay`): the first point's
        profit or loss is against the starting cash, or against the previous session's close
        when ``start`` is later than the first session. ``NotFoundError`` for no account.
        """
        with self._transaction("get portfolio history", write=False) as connection:
            account = self._account(connection, account_number)
            current = self.session_of(account)
            last = current if end is None else min(end, current)
            activities = store.read_activities(connection, account_number, through=last)
        first = account.first_session_date or current
        sessions = [day for day in self._sessions if first <= day <= last]
        points = history.replay(account.starting_cash, activities, sessions, self._close)
        return [point for point in points if start is None or point.session >= start]

    def is_known(self, symbol: str) -> bool:
        """Whether the dataset has any bar of ``symbol`` (an asset the exchange lists)."""
        return self._dataset.history(symbol) is not None

    def is_fractionable(self, symbol: str) -> bool:
        """Whether ``symbol`` trades in fractions."""
        return symbol not in self.trading.non_fractionable

    def session_bar(self, account_number: str, symbol: str) -> rules.SessionBar | None:
        """``symbol``'s bar in the account's session (the last one before it if none that day)."""
        return self._bar(symbol, self.session_of(self.account(account_number)))

    def session_bars(
        self, account_number: str, symbols: Iterable[str]
    ) -> dict[str, rules.SessionBar]:
        """:meth:`session_bar` of each of ``symbols`` that has one (the account read once)."""
        session = self.session_of(self.account(account_number))
        bars = ((symbol, self._bar(symbol, session)) for symbol in symbols)
        return {symbol: bar for symbol, bar in bars if bar is not None}

    def quote(self, account_number: str, symbol: str) -> Quote | None:
        """A quote ``spread_bps`` wide around the session's close, or ``None``."""
        account = self.account(account_number)
        session = self.session_of(account)
        bar = self._bar(symbol, session)
        if bar is None:
            return None
        return rules.quote_for(
            symbol,
            bar.close,
            spread_bps=self.trading.spread_bps,
            size=self.trading.quote_size,
            timestamp=self.session_time(session),
        )

    def session_time(self, session: date) -> datetime:
        """The moment an account's clock reads during ``session``."""
        return rules.session_moment(session, self.trading.session_time)

    def orders(
        self,
        account_number: str,
        *,
        status: str = "open",
        limit: int = 50,
        session: date | None = None,
    ) -> list[OrderRecord]:
        """The account's orders, newest first: ``open``, ``closed`` or ``all`` (of ``session``
        only, when given)."""
        if status not in _STATUSES:
            raise InvalidOrderError(f"invalid status {status}")
        with self._transaction("list orders", write=False) as connection:
            if status == "open" and session is None:
                working = store.open_orders(connection, account_number)[::-1][: max(limit, 0)]
                return [OrderRecord.from_row(row) for row in working]
            params: dict[str, Any] = {"account": account_number, "limit": limit}
            if session is not None:
                params["session"] = session
            rows = connection.execute(_ORDERS[(status, session is not None)], params).mappings()
            return [OrderRecord.from_row(row) for row in rows]

    def order(self, account_number: str, broker_order_id: str) -> OrderRecord:
        """One order by the exchange's id (``NotFoundError``)."""
        with self._transaction("get order", write=False) as connection:
            return book_orders.order_record(connection, account_number, broker_order_id)

    def order_by_client_id(self, account_number: str, client_order_id: str) -> OrderRecord:
        """One order by its ``client_order_id`` (``NotFoundError``)."""
        params = {"account": account_number, "client_id": client_order_id}
        with self._transaction("look up order", write=False) as connection:
            row = connection.execute(_ORDER_OF_CLIENT_ID, params).mappings().one_or_none()
        if row is None:
            raise NotFoundError("order not found")
        return OrderRecord.from_row(row)

    # ---------------------------------------------------------------- writes

    def submit(self, account_number: str, spec: OrderSpec) -> OrderRecord:
        """Place an order; a used ``client_order_id`` raises ``DuplicateOrderError``."""
        order = NewOrder(
            broker_order_id=str(uuid.uuid4()),
            client_order_id=spec.client_order_id or str(uuid.uuid4()),
            symbol=spec.symbol,
            side=spec.side,
            order_type=spec.order_type,
            time_in_force=spec.time_in_force,
            qty=spec.qty,
            notional=spec.notional,
            limit_price=spec.limit_price,
        )
        return self._place(account_number, order, f"submit order {order.client_order_id}")

    def cancel(self, account_number: str, broker_order_id: str) -> None:
        """Cancel an open order; a final one raises ``OrderNotCancelableError``."""
        with self._transaction(f"cancel order {broker_order_id}", write=True) as connection:
            account = store.lock_account(connection, account_number)
            record = book_orders.order_record(connection, account_number, broker_order_id)
            if record.status not in rules.OPEN_STATUSES:
                raise OrderNotCancelableError(f'order is already in "{record.status}" state')
            now = self.session_time(self.session_of(account))
            update = book_orders.set_status(connection, record, OrderStatus.CANCELED, now=now)
        self._publish(account_number, [update])

    def replace(
        self,
        account_number: str,
        broker_order_id: str,
        *,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
        time_in_force: str | None = None,
    ) -> OrderRecord:
        """Replace an open order: the old becomes ``replaced``, the new one may fill at once.

        Without ``qty`` the new order takes the old one's unfilled quantity.
        """
        if qty is None and limit_price is None and time_in_force is None:
            raise InvalidOrderError("qty, limit_price or time_in_force is required")
        updates: list[TradeUpdate] = []
        with self._transaction(f"replace order {broker_order_id}", write=True) as connection:
            account = store.lock_account(connection, account_number)
            old = book_orders.order_record(connection, account_number, broker_order_id)
            if old.status not in rules.OPEN_STATUSES:
                raise OrderNotCancelableError(f'order is already in "{old.status}" state')
            if limit_price is not None and old.order_type is not OrderType.LIMIT:
                raise InvalidOrderError("limit_price can only be replaced on a limit order")
            session = self.session_of(account)
            now = self.session_time(session)
            new_id = str(uuid.uuid4())
            updates.append(
                book_orders.set_status(
                    connection, old, OrderStatus.REPLACED, now=now, replaced_by=new_id
                )
            )
            # the old order's hold is released before the new one is checked
            account = store.lock_account(connection, account_number)
            order = NewOrder(
                broker_order_id=new_id,
                client_order_id=str(uuid.uuid4()),
                symbol=old.symbol,
                side=old.side,
                order_type=old.order_type,
                time_in_force=time_in_force or old.time_in_force,
                qty=qty if qty is not None else old.target_qty - old.filled_qty,
                notional=None,
                limit_price=limit_price if limit_price is not None else old.limit_price,
                replaces=broker_order_id,
            )
            updates.extend(self._place_in(connection, order, account, session, now))
        self._publish(account_number, updates)
        return updates[-1].order  # the new order as placed (and filled if it crossed)

    def close_position(self, account_number: str, symbol: str) -> OrderRecord:
        """Sell the whole position with a market order (``NotFoundError`` without one)."""
        position = self.position(account_number, symbol)
        spec = OrderSpec(
            symbol=symbol, side=OrderSide.SELL, order_type=OrderType.MARKET, qty=position.qty
        )
        return self.submit(account_number, spec)

    # ------------------------------------------------ operator and test controls

    def set_cash(self, account_number: str, cash: Decimal) -> None:
        """Set the account's cash (funding a paper account): a cash journal in its ledger."""
        with self._transaction("set cash", write=True) as connection:
            account = store.lock_account(connection, account_number)
            store.update_account(connection, account_number, cash=cash, updated_at=self._clock())
            if cash != account.cash:
                session = self.session_of(account)
                store.record_activity(
                    connection,
                    account_number=account_number,
                    activity_type=ActivityType.JNLC,
                    session=session,
                    now=self.session_time(session),
                    cash_change=cash - account.cash,
                    first_session=account.first_session_date,
                )

    def set_trading_blocked(self, account_number: str, blocked: bool) -> None:
        """Block or allow the account's trading."""
        with self._transaction("block trading", write=True) as connection:
            store.lock_account(connection, account_number)
            store.update_account(
                connection, account_number, trading_blocked=blocked, updated_at=self._clock()
            )

    def set_position(
        self, account_number: str, symbol: str, qty: Decimal, avg_entry_price: Decimal
    ) -> None:
        """Set a position directly, cash untouched (an account moved in from elsewhere): a
        stock journal in the account's ledger when the quantity changes."""
        with self._transaction("set position", write=True) as connection:
            account = store.lock_account(connection, account_number)
            key = (position_table.c.account_number == account_number) & (
                position_table.c.symbol == symbol
            )
            held: Decimal = connection.execute(
                sa.select(position_table.c.qty).where(key)
            ).scalar_one_or_none() or Decimal(0)
            if qty != held:
                session = self.session_of(account)
                store.record_activity(
                    connection,
                    account_number=account_number,
                    activity_type=ActivityType.JNLS,
                    session=session,
                    now=self.session_time(session),
                    symbol=symbol,
                    position_change=qty - held,
                    price=avg_entry_price if qty else None,
                    first_session=account.first_session_date,
                )
            connection.execute(sa.delete(position_table).where(key))
            if qty != 0:
                connection.execute(
                    sa.insert(position_table).values(
                        account_number=account_number,
                        symbol=symbol,
                        qty=qty,
                        avg_entry_price=avg_entry_price,
                        updated_at=self._clock(),
                    )
                )

    def fill_order(
        self,
        account_number: str,
        broker_order_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> OrderRecord:
        """Fill an open order now: ``qty`` (default the rest) at ``price``.

        ``price`` defaults to the session's close slipped against the order (``slippage_bps``);
        an explicit ``price`` is used as given. The fill pays its commission either way.
        """
        with self._transaction(f"fill order {broker_order_id}", write=True) as connection:
            account = store.lock_account(connection, account_number)
            record = book_orders.order_record(connection, account_number, broker_order_id)
            if record.status not in rules.OPEN_STATUSES:
                raise OrderNotCancelableError(f'order is already in "{record.status}" state')
            session = self.session_of(account)
            bar = self._bar(record.symbol, session)
            if bar is None:
                raise NotFoundError(f"no price for {record.symbol}")
            updates = book_orders.fill(
                connection,
                record,
                bar=bar,
                trading=self.trading,
                session=session,
                now=self.session_time(session),
                price=price
                if price is not None
                else self.trading.costs.slipped(record.side, bar.close),
                qty=qty,
            )
        self._publish(account_number, updates)
        return updates[-1].order if updates else record

    # ------------------------------------------------------------- internals

    def _place(self, account_number: str, order: NewOrder, what: str) -> OrderRecord:
        with self._transaction(what, write=True) as connection:
            account = store.lock_account(connection, account_number)
            session = self.session_of(account)
            updates = self._place_in(
                connection, order, account, session, self.session_time(session)
            )
        self._publish(account_number, updates)
        return updates[-1].order

    def _place_in(
        self,
        connection: Connection,
        order: NewOrder,
        account: AccountRecord,
        session: date,
        now: datetime,
    ) -> list[TradeUpdate]:
        return book_orders.place_order(
            connection,
            order,
            account=account,
            session=session,
            bar=self._bar(order.symbol, session),
            trading=self.trading,
            # the market is closed: the order waits for the account's next trading session
            hold=self.hold_fills or session not in self._days,
            now=now,
        )

    def _roll_orders(
        self, connection: Connection, account_number: str, session: date
    ) -> list[TradeUpdate]:
        """Expire the open day orders of other trading sessions; let open gtc orders, and day
        orders queued while the market was closed, meet ``session`` if it is a trading day (a
        queued day order then belongs to ``session`` and expires when it ends)."""
        now = self.session_time(session)
        trading = session in self._days
        updates: list[TradeUpdate] = []
        for row in store.open_orders(connection, account_number):
            record = OrderRecord.from_row(row)
            if record.session_date == session:
                continue
            queued = record.session_date not in self._days
            if record.time_in_force == "day" and not queued:
                updates.append(
                    book_orders.set_status(connection, record, OrderStatus.EXPIRED, now=now)
                )
                continue
            if not trading:
                continue
            if queued and record.time_in_force == "day":
                record = book_orders.move_to_session(connection, record, session)
            bar = self._bar(record.symbol, session)
            if bar is not None and not self.hold_fills:
                updates.extend(
                    book_orders.fill(
                        connection,
                        record,
                        bar=bar,
                        trading=self.trading,
                        session=session,
                        now=now,
                    )
                )
        return updates

    def _clock_for(self, session: date) -> MarketClock:
        return rules.session_clock(
            session, trading_days=self._days, last_day=self._last_day, at=self.trading.session_time
        )

    def _bar(self, symbol: str, session: date) -> rules.SessionBar | None:
        history = self._dataset.history(symbol)
        bar = None if history is None else history.bar_on_or_before(session)
        if bar is None:
            return None
        if bar.date != session:  # no trading that day: the last close, flat
            close = rules.fill_price(bar.close)
            return rules.SessionBar(close, close, close, close)
        return rules.SessionBar(
            open=rules.fill_price(bar.open),
            high=rules.fill_price(bar.high),
            low=rules.fill_price(bar.low),
            close=rules.fill_price(bar.close),
        )

    def _close(self, symbol: str, session: date) -> Decimal | None:
        """``symbol``'s close in ``session`` (the last one before it), ``None`` if unknown."""
        bar = self._bar(symbol, session)
        return None if bar is None else bar.close

    def _position_view(self, position: store.Position, session: date) -> PositionView:
        bar = self._bar(position.symbol, session)
        price = bar.close if bar is not None else position.avg_entry_price
        return PositionView(
            symbol=position.symbol,
            qty=position.qty,
            avg_entry_price=position.avg_entry_price,
            current_price=price,
            market_value=rules.cents(position.qty * price),
            cost_basis=rules.cents(position.qty * position.avg_entry_price),
        )

    def _account(self, connection: Connection, account_number: str) -> AccountRecord:
        row = connection.execute(_ACCOUNT, {"account": account_number}).mappings().one_or_none()
        if row is None:
            raise NotFoundError(f"account {account_number} not found")
        return AccountRecord.from_row(row)

    def _number_holder(self, connection: Connection, number: str, api_key_id: str) -> Any:
        """``None`` when ``number`` is free; the key's row when it holds it (opened meanwhile)."""
        taken = connection.execute(
            sa.select(account_table.c.api_key_id).where(account_table.c.account_number == number)
        ).scalar_one_or_none()
        if taken is None:
            return None
        if taken != api_key_id:
            raise InvalidOrderError(f"account {number} exists with another API key")
        return self._row_by_key(connection, api_key_id)

    @staticmethod
    def _row_by_key(connection: Connection, api_key_id: str) -> Any:
        return connection.execute(_ACCOUNT_OF_KEY, {"key": api_key_id}).mappings().one_or_none()

    def _publish(self, account_number: str, updates: list[TradeUpdate]) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for update in updates:
            for listener in listeners:
                try:
                    listener(account_number, update)
                except Exception:  # a listener never breaks the exchange
                    _log.exception("trade update listener failed")

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Transient database failures become 503s the client retries."""
        try:
            yield
        except sa_exc.SQLAlchemyError as err:
            if not is_transient_database_error(err):
                raise
            raise ExchangeUnavailableError(f"{what}: database unavailable") from err

    @contextmanager
    def _transaction(self, what: str, *, write: bool) -> Iterator[Connection]:
        """One database transaction; writes serialise on the account row (see :mod:`.store`)."""
        options: dict[str, Any] = {"sqlite_begin": "IMMEDIATE" if write else "DEFERRED"}
        if not write and self._engine.dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        with (
            self._translated(what),
            self._engine.connect().execution_options(**options) as connection,
            connection.begin(),
        ):
            yield connection

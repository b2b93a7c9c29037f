"""The simulated broker's contract, run against SQLite and (integration) PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url

from alchemiser_broker import (
    AmbiguousOrderOutcomeError,
    BrokerPort,
    OrderNotFoundError,
    OrderRejectedError,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
)
from alchemiser_broker.simulated import SimulatedBroker
from alchemiser_broker.simulated_schema import metadata, order_table
from alchemiser_broker.simulated_settings import SimulatedBrokerSettings
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import ConfigurationError, TransientError
from alchemiser_marketdata import DatasetMarketData

# Friday 2025-03-07 10:00 New York (EST, UTC-5); DST starts on Sunday 2025-03-09.
NOW = datetime(2025, 3, 7, 15, 0, tzinfo=UTC)
FRIDAY = date(2025, 3, 7)
THURSDAY = date(2025, 3, 6)
SATURDAY = date(2025, 3, 8)
BARS = """date,symbol,open,high,low,close,volume
2025-03-06,SPY,499,501,498,500.00,1000
2025-03-07,SPY,500,512,499,510.25,1000
2025-03-10,SPY,510,511,504,505.00,1000
2025-03-07,QQQ,400,401,399,400.10,1000
2025-03-06,BRK,249,251,248,249.00,1000
2025-03-07,BRK,249,251,248,250.00,1000
"""
WAIT_S = 10.0

BrokerFactory = Callable[..., SimulatedBroker]


def _buy(cid: str, symbol: str = "SPY", **kwargs: Any) -> OrderRequest:
    if "qty" not in kwargs and "notional" not in kwargs:
        kwargs["qty"] = Decimal(10)
    return OrderRequest(client_order_id=cid, symbol=symbol, side=OrderSide.BUY, **kwargs)


def _sell(cid: str, symbol: str = "SPY", **kwargs: Any) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=symbol, side=OrderSide.SELL, **kwargs)


@pytest.fixture
def dataset(tmp_path: Path) -> DatasetMarketData:
    directory = tmp_path / "bars"
    directory.mkdir()
    (directory / "bars.csv").write_text(BARS, encoding="utf-8")
    return DatasetMarketData(directory)


class SimulatedBrokerContract:
    """Behaviour of :class:`SimulatedBroker` on any supported database (not collected)."""

    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def engine(self, database_url: str) -> Iterator[Engine]:
        engine = create_engine_from_url(database_url)
        yield engine
        engine.dispose()

    @pytest.fixture
    def account_id(self) -> str:
        """Unique per test: the PostgreSQL database is shared by the module's tests."""
        return f"acct-{uuid.uuid4().hex[:12]}"

    @pytest.fixture
    def make_broker(
        self, engine: Engine, dataset: DatasetMarketData, account_id: str
    ) -> BrokerFactory:
        def make(**overrides: Any) -> SimulatedBroker:
            values: dict[str, Any] = {
                "account_id": account_id,
                "simulated_date": FRIDAY,
                "non_fractionable": frozenset({"BRK"}),
            }
            values.update(overrides)
            broker = SimulatedBroker(
                engine, dataset, SimulatedBrokerSettings(**values), clock=lambda: NOW
            )
            broker.migrate()
            return broker

        return make

    @pytest.fixture
    def broker(self, make_broker: BrokerFactory) -> SimulatedBroker:
        return make_broker()

    # -- set-up and schema -----------------------------------------------------------------
    def test_simulated_broker_when_constructed_then_implements_port(
        self, broker: SimulatedBroker
    ) -> None:
        assert isinstance(broker, BrokerPort)

    def test_migrate_when_done_then_database_matches_table_metadata(
        self, broker: SimulatedBroker, engine: Engine
    ) -> None:
        broker.migrate()  # a second run is a no-op
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_name": lambda name, type_, _parent: (
                        type_ != "table" or name in metadata.tables
                    ),
                },
            )
            differences = compare_metadata(context, metadata)
        assert differences == []

    # -- account and prices ----------------------------------------------------------------
    def test_get_account_when_new_then_starting_cash_everywhere(
        self, make_broker: BrokerFactory
    ) -> None:
        account = make_broker(starting_cash=Decimal("2500.50")).get_account()
        assert (account.cash, account.buying_power, account.equity) == (
            Decimal("2500.50"),
            Decimal("2500.50"),
            Decimal("2500.50"),
        )

    def test_prices_when_simulated_date_is_saturday_then_friday_close(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker(simulated_date=SATURDAY)
        assert broker.get_latest_prices(["SPY", "QQQ", "NOPE"]) == {
            "SPY": Decimal("510.25"),
            "QQQ": Decimal("400.10"),
        }

    def test_prices_when_no_simulated_date_then_latest_dataset_date(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker(simulated_date=None)
        assert broker.trading_date == date(2025, 3, 10)
        assert broker.get_latest_prices(["SPY", "QQQ"]) == {
            "SPY": Decimal("505.00"),
            "QQQ": Decimal("400.10"),  # its last bar before the latest date
        }

    def test_get_quote_when_known_then_spread_around_price(self, broker: SimulatedBroker) -> None:
        quote = broker.get_quote("SPY")
        assert quote is not None
        # 2 bps of 510.25 is 0.10205: bid 510.198975 floors, ask 510.301025 ceils to the cent.
        assert (quote.bid, quote.ask) == (Decimal("510.19"), Decimal("510.31"))
        assert quote.timestamp == NOW
        assert broker.get_quote("NOPE") is None

    def test_get_asset_when_listed_non_fractionable_then_reported(
        self, broker: SimulatedBroker
    ) -> None:
        assert broker.get_asset("SPY").fractionable is True
        assert broker.get_asset("BRK").fractionable is False
        with pytest.raises(OrderNotFoundError):
            broker.get_asset("NOPE")

    # -- clock -----------------------------------------------------------------------------
    def test_get_clock_when_market_closed_and_hours_respected_then_closed(
        self, make_broker: BrokerFactory
    ) -> None:
        clock = make_broker(market_open=False).get_clock()
        assert clock.is_open is False
        assert clock.timestamp == NOW
        assert clock.next_close == datetime(2025, 3, 7, 21, 0, tzinfo=UTC)  # 16:00 EST
        assert clock.next_open == datetime(2025, 3, 10, 13, 30, tzinfo=UTC)  # 9:30 EDT

    def test_get_clock_when_hours_ignored_then_open(self, make_broker: BrokerFactory) -> None:
        assert make_broker(market_open=False, ignore_market_hours=True).get_clock().is_open

    # -- market orders ---------------------------------------------------------------------
    def test_submit_when_market_buy_then_filled_and_cash_exact(
        self, broker: SimulatedBroker
    ) -> None:
        order = broker.submit_order(_buy("b1"))
        assert order.status is OrderStatus.FILLED
        assert (order.filled_qty, order.filled_avg_price) == (Decimal(10), Decimal("510.25"))
        assert order.submitted_at == NOW
        account = broker.get_account()
        assert account.cash == Decimal("94897.50")
        assert account.buying_power == Decimal("94897.50")
        assert account.equity == Decimal("100000.00")
        position = broker.get_position("SPY")
        assert position is not None
        assert (position.qty, position.avg_entry_price) == (Decimal(10), Decimal("510.25"))
        assert position.market_value == Decimal("5102.50")

    def test_submit_when_buys_at_two_prices_then_average_entry_weighted(
        self, make_broker: BrokerFactory
    ) -> None:
        make_broker(simulated_date=THURSDAY).submit_order(_buy("b1", qty=Decimal(30)))
        friday = make_broker()
        friday.submit_order(_buy("b2", qty=Decimal(10)))
        position = friday.get_position("SPY")
        assert position is not None
        # (30 * 500.00 + 10 * 510.25) / 40
        assert (position.qty, position.avg_entry_price) == (Decimal(40), Decimal("502.5625"))
        assert position.current_price == Decimal("510.25")
        assert friday.get_account().cash == Decimal("79897.50")  # 100000 - 15000 - 5102.50

    def test_submit_when_market_sell_then_cash_credited_and_position_reduced(
        self, broker: SimulatedBroker
    ) -> None:
        broker.submit_order(_buy("b1"))
        order = broker.submit_order(_sell("s1", qty=Decimal(4)))
        assert order.status is OrderStatus.FILLED
        assert broker.get_account().cash == Decimal("96938.50")  # 94897.50 + 4 * 510.25
        position = broker.get_position("SPY")
        assert position is not None
        assert (position.qty, position.avg_entry_price) == (Decimal(6), Decimal("510.25"))

    def test_submit_when_unknown_symbol_then_rejected(self, broker: SimulatedBroker) -> None:
        with pytest.raises(OrderRejectedError, match="asset not found"):
            broker.submit_order(_buy("b1", symbol="NOPE"))
        assert broker.get_order_by_client_id("b1") is None

    # -- fractional and notional -----------------------------------------------------------
    def test_submit_when_notional_buy_on_fractionable_then_fractional_qty(
        self, broker: SimulatedBroker
    ) -> None:
        order = broker.submit_order(_buy("n1", notional=Decimal(1000)))
        assert order.status is OrderStatus.FILLED
        assert (order.qty, order.notional) == (None, Decimal(1000))
        assert order.filled_qty == Decimal("1.959823615")  # 1000 / 510.25 rounded down
        # 1.959823615 * 510.25 = 999.99999955375 -> 1000.00
        assert broker.get_account().cash == Decimal("99000.00")

    def test_submit_when_notional_or_fraction_on_non_fractionable_then_rejected(
        self, broker: SimulatedBroker
    ) -> None:
        with pytest.raises(OrderRejectedError, match="not fractionable"):
            broker.submit_order(_buy("n1", symbol="BRK", notional=Decimal(1000)))
        with pytest.raises(OrderRejectedError, match="not fractionable"):
            broker.submit_order(_buy("n2", symbol="BRK", qty=Decimal("1.5")))
        assert broker.get_positions() == []
        whole = broker.submit_order(_buy("n3", symbol="BRK", qty=Decimal(3)))
        assert whole.filled_qty == Decimal(3)

    def test_submit_when_fractional_limit_order_then_rejected(
        self, broker: SimulatedBroker
    ) -> None:
        request = _buy(
            "l1", qty=Decimal("1.5"), order_type=OrderType.LIMIT, limit_price=Decimal(520)
        )
        with pytest.raises(OrderRejectedError, match="market orders"):
            broker.submit_order(request)

    def test_submit_when_sub_penny_limit_then_rejected(self, broker: SimulatedBroker) -> None:
        request = _buy("l1", order_type=OrderType.LIMIT, limit_price=Decimal("510.255"))
        with pytest.raises(OrderRejectedError, match="sub-penny"):
            broker.submit_order(request)

    # -- limit orders, replace and cancel --------------------------------------------------
    def test_submit_when_buy_limit_marketable_then_filled_at_price(
        self, broker: SimulatedBroker
    ) -> None:
        order = broker.submit_order(
            _buy("l1", order_type=OrderType.LIMIT, limit_price=Decimal("511.00"))
        )
        assert order.status is OrderStatus.FILLED
        assert order.filled_avg_price == Decimal("510.25")
        assert broker.get_account().cash == Decimal("94897.50")

    def test_submit_when_buy_limit_not_marketable_then_new_and_holds_buying_power(
        self, broker: SimulatedBroker
    ) -> None:
        order = broker.submit_order(
            _buy("l1", order_type=OrderType.LIMIT, limit_price=Decimal("500.00"))
        )
        assert (order.status, order.filled_qty) == (OrderStatus.NEW, Decimal(0))
        account = broker.get_account()
        assert account.cash == Decimal(100000)
        assert account.buying_power == Decimal("95000.00")
        assert broker.get_position("SPY") is None
        assert [open_order.broker_order_id for open_order in broker.get_open_orders()] == [
            order.broker_order_id
        ]

    def test_replace_when_limit_becomes_marketable_then_new_order_fills(
        self, broker: SimulatedBroker
    ) -> None:
        original = broker.submit_order(
            _buy("l1", order_type=OrderType.LIMIT, limit_price=Decimal("500.00"))
        )
        replacement = broker.replace_order(original.broker_order_id, limit_price=Decimal("511"))
        assert replacement.broker_order_id != original.broker_order_id
        assert replacement.status is OrderStatus.FILLED
        assert (replacement.filled_qty, replacement.limit_price) == (Decimal(10), Decimal(511))
        old = broker.get_order_by_client_id("l1")
        assert old is not None
        assert old.status is OrderStatus.REPLACED
        assert broker.get_order_by_client_id(replacement.client_order_id) == replacement
        account = broker.get_account()
        assert (account.cash, account.buying_power) == (Decimal("94897.50"), Decimal("94897.50"))

    def test_replace_when_order_final_then_rejected(self, broker: SimulatedBroker) -> None:
        filled = broker.submit_order(_buy("b1"))
        with pytest.raises(OrderRejectedError):
            broker.replace_order(filled.broker_order_id, qty=Decimal(5))
        with pytest.raises(OrderNotFoundError):
            broker.replace_order("no-such-order", qty=Decimal(5))

    def test_cancel_when_open_then_canceled_and_buying_power_released(
        self, broker: SimulatedBroker
    ) -> None:
        order = broker.submit_order(
            _buy("l1", order_type=OrderType.LIMIT, limit_price=Decimal("500.00"))
        )
        broker.cancel_order(order.broker_order_id)
        broker.cancel_order(order.broker_order_id)  # already canceled: no-op
        assert broker.get_order(order.broker_order_id).status is OrderStatus.CANCELED
        assert broker.get_account().buying_power == Decimal(100000)
        assert broker.get_open_orders() == []

    def test_cancel_when_filled_or_unknown_then_error(self, broker: SimulatedBroker) -> None:
        filled = broker.submit_order(_buy("b1"))
        with pytest.raises(OrderRejectedError):
            broker.cancel_order(filled.broker_order_id)
        with pytest.raises(OrderNotFoundError):
            broker.cancel_order("no-such-order")

    # -- partial fills ---------------------------------------------------------------------
    def test_submit_when_partial_fill_ratio_then_partially_filled(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker(partial_fill_ratio=Decimal("0.5"))
        order = broker.submit_order(_buy("p1"))
        assert (order.status, order.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal(5))
        account = broker.get_account()
        assert account.cash == Decimal("97448.75")  # 100000 - 5 * 510.25
        assert account.buying_power == Decimal("94897.50")  # the other 5 are held
        position = broker.get_position("SPY")
        assert position is not None
        assert position.qty == Decimal(5)
        broker.cancel_order(order.broker_order_id)
        canceled = broker.get_order(order.broker_order_id)
        assert (canceled.status, canceled.filled_qty) == (OrderStatus.CANCELED, Decimal(5))
        assert broker.get_account().buying_power == Decimal("97448.75")

    def test_submit_when_partial_fill_of_non_fractionable_then_whole_shares(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = make_broker(partial_fill_ratio=Decimal("0.5"))
        order = broker.submit_order(_buy("p1", symbol="BRK", qty=Decimal(3)))
        assert (order.status, order.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal(1))

    # -- refusals ----------------------------------------------------------------------------
    def test_submit_when_insufficient_buying_power_then_rejected_and_nothing_stored(
        self, broker: SimulatedBroker
    ) -> None:
        with pytest.raises(OrderRejectedError, match="insufficient buying power"):
            broker.submit_order(_buy("big", qty=Decimal(196)))  # 100009.00 > 100000
        assert broker.get_order_by_client_id("big") is None
        assert broker.get_account().cash == Decimal(100000)
        # The refused id was never stored, so it can be used again.
        assert broker.submit_order(_buy("big", qty=Decimal(195))).status is OrderStatus.FILLED

    def test_submit_when_selling_without_position_then_rejected(
        self, broker: SimulatedBroker
    ) -> None:
        with pytest.raises(OrderRejectedError, match="insufficient qty"):
            broker.submit_order(_sell("s1", qty=Decimal(1)))
        assert broker.get_positions() == []

    def test_submit_when_selling_more_than_held_or_offered_then_rejected(
        self, broker: SimulatedBroker
    ) -> None:
        broker.submit_order(_buy("b1"))
        with pytest.raises(OrderRejectedError, match="requested: 11, available: 10"):
            broker.submit_order(_sell("s1", qty=Decimal(11)))
        broker.submit_order(
            _sell("s2", qty=Decimal(6), order_type=OrderType.LIMIT, limit_price=Decimal(600))
        )
        with pytest.raises(OrderRejectedError, match="available: 4"):
            broker.submit_order(_sell("s3", qty=Decimal(5)))
        position = broker.get_position("SPY")
        assert position is not None
        assert position.qty == Decimal(10)

    # -- idempotency -----------------------------------------------------------------------
    def test_submit_when_client_order_id_reused_then_existing_order_returned(
        self, broker: SimulatedBroker
    ) -> None:
        first = broker.submit_order(_buy("dup", qty=Decimal(190)))
        # The repeat would now lack buying power: the constraint answers before any check.
        again = broker.submit_order(_buy("dup", qty=Decimal(190)))
        assert again == first
        assert broker.get_account().cash == Decimal("3052.50")  # 100000 - 190 * 510.25

    def test_submit_when_reused_from_another_instance_then_one_order(
        self, make_broker: BrokerFactory
    ) -> None:
        first = make_broker().submit_order(_buy("dup"))
        other = make_broker()
        assert other.submit_order(_buy("dup", qty=Decimal(3))) == first
        position = other.get_position("SPY")
        assert position is not None
        assert position.qty == Decimal(10)

    def test_submit_when_concurrent_from_many_instances_then_one_fill(
        self, make_broker: BrokerFactory
    ) -> None:
        brokers = [make_broker() for _ in range(4)]
        barrier = threading.Barrier(len(brokers), timeout=WAIT_S)

        def submit(broker: SimulatedBroker) -> str:
            barrier.wait()
            return broker.submit_order(_buy("race")).broker_order_id

        with ThreadPoolExecutor(max_workers=len(brokers)) as pool:
            ids = set(pool.map(submit, brokers))
        assert len(ids) == 1
        position = brokers[0].get_position("SPY")
        assert position is not None
        assert position.qty == Decimal(10)
        assert brokers[0].get_account().cash == Decimal("94897.50")

    def test_insert_when_client_order_id_reused_then_constraint_refuses(
        self, broker: SimulatedBroker, engine: Engine, account_id: str
    ) -> None:
        order = broker.submit_order(_buy("dup"))
        with engine.connect() as connection:
            row = connection.execute(
                sa.select(order_table).where(order_table.c.client_order_id == "dup")
            ).mappings()
            copy = {**next(iter(row)), "broker_order_id": "another-id"}
        with pytest.raises(sa_exc.IntegrityError), engine.begin() as connection:
            connection.execute(sa.insert(order_table).values(copy))
        assert broker.get_order_by_client_id("dup") == order

    # -- close position and persistence ----------------------------------------------------
    def test_close_position_when_held_then_sold_whole_and_idempotent(
        self, broker: SimulatedBroker
    ) -> None:
        broker.submit_order(_buy("b1", notional=Decimal(1000)))
        order = broker.close_position("SPY", client_order_id="close-1")
        assert (order.side, order.status) == (OrderSide.SELL, OrderStatus.FILLED)
        assert order.filled_qty == Decimal("1.959823615")
        assert broker.get_position("SPY") is None
        assert broker.get_account().cash == Decimal(100000)
        assert broker.close_position("SPY", client_order_id="close-1") == order
        with pytest.raises(OrderNotFoundError):
            broker.close_position("SPY")

    def test_new_instance_when_same_database_then_state_survives(
        self, make_broker: BrokerFactory, engine: Engine, dataset: DatasetMarketData
    ) -> None:
        first = make_broker()
        order = first.submit_order(_buy("b1"))
        again = make_broker()
        assert again.get_account() == first.get_account()
        assert again.get_positions() == first.get_positions()
        assert again.get_order_by_client_id("b1") == order
        stranger = SimulatedBroker(
            engine, dataset, SimulatedBrokerSettings(account_id=f"other-{uuid.uuid4().hex}")
        )
        assert stranger.get_account().cash == Decimal(100000)
        assert stranger.get_order_by_client_id("b1") is None


class TestSqliteSimulatedBroker(SimulatedBrokerContract):
    """The contract on SQLite (the embedded default)."""

    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url

    def test_simulated_broker_when_engine_not_from_helper_then_configuration_error(
        self, sqlite_url: str, dataset: DatasetMarketData
    ) -> None:
        plain = sa.create_engine(sqlite_url.replace("/db/", "/"))
        with pytest.raises(ConfigurationError):
            SimulatedBroker(plain, dataset, SimulatedBrokerSettings())

    def test_submit_when_database_locked_then_ambiguous_outcome(
        self, broker: SimulatedBroker, sqlite_url: str, dataset: DatasetMarketData
    ) -> None:
        impatient_engine = create_engine_from_url(sqlite_url, sqlite_busy_timeout_seconds=0.2)
        impatient = SimulatedBroker(impatient_engine, dataset, broker.settings)
        holder = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(AmbiguousOrderOutcomeError) as caught:
                impatient.submit_order(_buy("locked"))
            assert caught.value.client_order_id == "locked"
            assert isinstance(caught.value, TransientError)
        finally:
            holder.rollback()
            holder.close()
            impatient_engine.dispose()
        assert broker.get_order_by_client_id("locked") is None


@pytest.mark.integration
class TestPostgresSimulatedBroker(SimulatedBrokerContract):
    """The contract on PostgreSQL (psycopg 3)."""

    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url

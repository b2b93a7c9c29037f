"""The exchange's cost model: slippage, commissions, the ``fees`` column and its migration.

Prices come from the standard dataset of ``conftest.py``: SPY on Friday 2025-03-07 opens 500,
high 512, low 499, closes 510.25. Every expectation is computed by hand in the test's comments
(slippage of ``b`` bps: a buy at ``close * (1 + b / 10000)``, a sell at ``close * (1 - b /
10000)``, rounded half-even to 4 places; commission ``max(min, qty * per_share + notional *
bps / 10000)`` rounded half-even to the cent). Tests taking ``make_exchange`` run on SQLite
and (integration) PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alpaca.trading.models import TradeUpdate as AlpacaTradeUpdate
from pydantic import ValidationError

import alchemiser_exchange
from alchemiser_broker.models import OrderSide, OrderStatus, OrderType
from alchemiser_common.db import create_engine_from_url, upgrade_to
from alchemiser_exchange import Exchange, OrderSpec, TradingRules
from alchemiser_exchange.errors import InsufficientFundsError
from alchemiser_exchange.orders import TradeUpdate
from alchemiser_exchange.rules import FRICTIONLESS, Costs
from alchemiser_exchange.schema import (
    EXCHANGE_VERSION_TABLE,
    account_table,
    metadata,
    order_table,
)
from alchemiser_exchange.settings import ExchangeProcessSettings
from alchemiser_exchange.shapes import trade_update_json
from alchemiser_marketdata import DatasetMarketData

FRIDAY = date(2025, 3, 7)
_MIGRATIONS = Path(alchemiser_exchange.__file__).parent / "migrations"

ExchangeFactory = Callable[..., Exchange]


def _open(exchange: Exchange, new_key: Callable[[], str], cash: Decimal | None = None) -> str:
    """A fresh account (default $100,000) in the Friday session."""
    number = exchange.open_account(new_key(), "secret", cash=cash).account_number
    exchange.set_session(number, FRIDAY)
    return number


def _buy(qty: Decimal | None = Decimal(10), **fields: Any) -> OrderSpec:
    limit = "limit_price" in fields
    fields.setdefault("order_type", OrderType.LIMIT if limit else OrderType.MARKET)
    if "notional" not in fields:
        fields["qty"] = qty
    return OrderSpec(symbol="SPY", side=OrderSide.BUY, **fields)


def _sell(qty: Decimal = Decimal(10), **fields: Any) -> OrderSpec:
    limit = "limit_price" in fields
    fields.setdefault("order_type", OrderType.LIMIT if limit else OrderType.MARKET)
    return OrderSpec(symbol="SPY", side=OrderSide.SELL, qty=qty, **fields)


# -- the pure rules ---------------------------------------------------------------------------


def test_commission_when_per_share_and_bps_then_minimum_applies_below_it() -> None:
    costs = Costs(
        commission_per_share=Decimal("0.005"),
        commission_bps=Decimal(1),
        commission_min=Decimal(1),
    )

    # 10 * 0.005 + 5102.50 * 0.0001 = 0.05 + 0.51025 = 0.56025 < 1: the minimum
    assert costs.commission(Decimal(10), Decimal("510.25")) == Decimal("1.00")
    # 1000 * 0.005 + 510250 * 0.0001 = 5 + 51.025 = 56.025: half-even to the cent
    assert costs.commission(Decimal(1000), Decimal("510.25")) == Decimal("56.02")


def test_commission_when_only_minimum_set_then_nothing_charged() -> None:
    costs = Costs(commission_min=Decimal(1))

    assert costs.commission(Decimal(10), Decimal("510.25")) == 0
    assert FRICTIONLESS.commission(Decimal(10), Decimal("510.25")) == 0


def test_slipped_when_buy_and_sell_then_against_the_order_rounded_to_4_places() -> None:
    costs = Costs(slippage_bps=Decimal(5))

    assert costs.slipped(OrderSide.BUY, Decimal("510.25")) == Decimal("510.5051")  # 510.505125
    assert costs.slipped(OrderSide.SELL, Decimal("510.25")) == Decimal("509.9949")  # 509.994875
    assert FRICTIONLESS.slipped(OrderSide.BUY, Decimal("510.25")) == Decimal("510.25")


def test_trading_rules_when_defaults_then_frictionless() -> None:
    rules = TradingRules()

    assert (
        rules.slippage_bps,
        rules.commission_per_share,
        rules.commission_bps,
        rules.commission_min,
    ) == (0, 0, 0, 0)
    assert rules.costs == FRICTIONLESS


@pytest.mark.parametrize(
    "field",
    [
        {"slippage_bps": Decimal(-1)},
        {"slippage_bps": Decimal(1001)},
        {"commission_per_share": Decimal("-0.01")},
        {"commission_bps": Decimal(-1)},
        {"commission_min": Decimal(-1)},
    ],
)
def test_trading_rules_when_cost_out_of_range_then_refused(field: dict[str, Decimal]) -> None:
    with pytest.raises(ValidationError):
        TradingRules(**field)


def test_process_settings_when_cost_env_vars_set_then_exchange_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_EXCHANGE__SLIPPAGE_BPS", "5")
    monkeypatch.setenv("ALCHEMISER_EXCHANGE__COMMISSION_PER_SHARE", "0.005")
    monkeypatch.setenv("ALCHEMISER_EXCHANGE__COMMISSION_BPS", "1")
    monkeypatch.setenv("ALCHEMISER_EXCHANGE__COMMISSION_MIN", "1")

    exchange = ExchangeProcessSettings().exchange

    assert exchange.costs == Costs(
        slippage_bps=Decimal(5),
        commission_per_share=Decimal("0.005"),
        commission_bps=Decimal(1),
        commission_min=Decimal(1),
    )


# -- fills on the exchange ----------------------------------------------------------------------


def test_submit_when_defaults_then_fills_at_close_without_fees(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange()
    account = _open(exchange, new_key)

    order = exchange.submit(account, _buy())

    assert (order.status, order.filled_avg_price, order.fees) == (
        OrderStatus.FILLED,
        Decimal("510.25"),
        Decimal(0),
    )
    assert exchange.balances(account).cash == Decimal("94897.50")  # 100000 - 5102.50
    assert exchange.fees(account) == 0


def test_submit_when_market_buy_with_slippage_then_fills_above_close(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(slippage_bps=Decimal(5))
    account = _open(exchange, new_key)

    order = exchange.submit(account, _buy())

    # 510.25 * 1.0005 = 510.505125 -> 510.5051; 10 * 510.5051 = 5105.051 -> 5105.05
    assert order.filled_avg_price == Decimal("510.5051")
    assert exchange.balances(account).cash == Decimal("94894.95")
    position = exchange.position(account, "SPY")
    assert position.avg_entry_price == Decimal("510.5051")


def test_submit_when_market_sell_with_slippage_then_fills_below_close(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(slippage_bps=Decimal(5))
    account = _open(exchange, new_key)
    exchange.set_position(account, "SPY", Decimal(10), Decimal(500))

    order = exchange.submit(account, _sell())

    # 510.25 * 0.9995 = 509.994875 -> 509.9949; 10 * 509.9949 = 5099.949 -> 5099.95
    assert order.filled_avg_price == Decimal("509.9949")
    assert exchange.balances(account).cash == Decimal("105099.95")


def test_submit_when_notional_buy_with_slippage_then_quantity_from_slipped_price(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(slippage_bps=Decimal(5))
    account = _open(exchange, new_key)

    order = exchange.submit(account, _buy(None, notional=Decimal(1000)))

    # 1000 / 510.5051 = 1.958844289… (9 places, down); 1.958844289 * 510.5051 -> 1000.00
    assert (order.filled_qty, order.filled_avg_price) == (
        Decimal("1.958844289"),
        Decimal("510.5051"),
    )
    assert exchange.balances(account).cash == Decimal("99000.00")


def test_submit_when_limit_buy_below_slipped_close_then_capped_at_limit(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(slippage_bps=Decimal(50))
    account = _open(exchange, new_key)

    capped = exchange.submit(account, _buy(limit_price=Decimal(511)))
    slipped = exchange.submit(account, _buy(limit_price=Decimal(515)))
    resting = exchange.submit(account, _buy(limit_price=Decimal(498)))  # below the low 499

    # 510.25 * 1.005 = 512.80125 -> 512.8012 (half-even): a 511 limit fills at 511, a 515 at that
    assert (capped.status, capped.filled_avg_price) == (OrderStatus.FILLED, Decimal(511))
    assert (slipped.status, slipped.filled_avg_price) == (OrderStatus.FILLED, Decimal("512.8012"))
    assert (resting.status, resting.filled_qty) == (OrderStatus.NEW, Decimal(0))


def test_submit_when_limit_sell_above_slipped_close_then_capped_at_limit(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(slippage_bps=Decimal(50))
    account = _open(exchange, new_key)
    exchange.set_position(account, "SPY", Decimal(20), Decimal(500))

    capped = exchange.submit(account, _sell(limit_price=Decimal(509)))
    slipped = exchange.submit(account, _sell(limit_price=Decimal(505)))

    # 510.25 * 0.995 = 507.69875 -> 507.6988: a 509 limit fills at 509, a 505 one at 507.6988
    assert capped.filled_avg_price == Decimal(509)
    assert slipped.filled_avg_price == Decimal("507.6988")


def test_fill_order_when_explicit_price_then_not_slipped_else_slipped(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(slippage_bps=Decimal(5))
    account = _open(exchange, new_key)
    exchange.hold_fills = True
    manual = exchange.submit(account, _buy())
    default = exchange.submit(account, _buy())

    manual = exchange.fill_order(account, manual.broker_order_id, price=Decimal(509))
    default = exchange.fill_order(account, default.broker_order_id)

    assert manual.filled_avg_price == Decimal(509)
    assert default.filled_avg_price == Decimal("510.5051")


def test_round_trip_when_slippage_and_commission_then_cash_and_fees_by_hand(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(
        slippage_bps=Decimal(5),
        commission_per_share=Decimal("0.01"),
        commission_bps=Decimal(2),
        commission_min=Decimal(1),
    )
    account = _open(exchange, new_key)

    bought = exchange.submit(account, _buy())
    after_buy = exchange.balances(account).cash
    sold = exchange.submit(account, _sell())

    # buy 10 at 510.5051: cost 5105.05, fee 0.10 + 5105.051 * 0.0002 = 1.1210102 -> 1.12
    assert (bought.filled_avg_price, bought.fees) == (Decimal("510.5051"), Decimal("1.12"))
    assert after_buy == Decimal("94893.83")  # 100000 - 5105.05 - 1.12
    # sell 10 at 509.9949: proceeds 5099.95, fee 0.10 + 5099.949 * 0.0002 = 1.1199898 -> 1.12
    assert (sold.filled_avg_price, sold.fees) == (Decimal("509.9949"), Decimal("1.12"))
    view = exchange.balances(account)
    assert view.cash == Decimal("99992.66")  # 94893.83 + 5099.95 - 1.12
    assert view.equity == Decimal("99992.66")  # no position left
    assert exchange.fees(account) == Decimal("2.24")
    assert exchange.order(account, bought.broker_order_id).fees == Decimal("1.12")


def test_fill_when_partial_then_full_then_fees_accumulate_per_fill(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(
        partial_fill_ratio=Decimal("0.5"),
        commission_bps=Decimal(10),
        commission_min=Decimal(1),
    )
    account = _open(exchange, new_key)

    part = exchange.submit(account, _buy())
    full = exchange.fill_order(account, part.broker_order_id, price=Decimal(509))

    # 5 at 510.25 = 2551.25, fee 2.55125 -> 2.55; 5 at 509 = 2545.00, fee 2.545 -> 2.54
    assert (part.status, part.filled_qty, part.fees) == (
        OrderStatus.PARTIALLY_FILLED,
        Decimal(5),
        Decimal("2.55"),
    )
    assert (full.status, full.filled_qty, full.fees) == (
        OrderStatus.FILLED,
        Decimal(10),
        Decimal("5.09"),
    )
    assert exchange.order(account, part.broker_order_id).fees == Decimal("5.09")
    # 100000 - 2551.25 - 2.55 - 2545.00 - 2.54
    assert exchange.balances(account).cash == Decimal("94898.66")


def test_fees_when_several_orders_and_accounts_then_sum_of_the_accounts_orders(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(commission_per_share=Decimal("0.5"))
    account = _open(exchange, new_key)
    other = _open(exchange, new_key)
    exchange.submit(other, _buy(Decimal(7)))

    exchange.submit(account, _buy(Decimal(4)))  # 4 * 0.5 = 2.00
    exchange.submit(account, _sell(Decimal(3)))  # 3 * 0.5 = 1.50
    exchange.submit(account, _buy(limit_price=Decimal(400)))  # rests: no fee yet

    assert exchange.fees(account) == Decimal("3.50")
    assert exchange.fees(other) == Decimal("3.50")  # 7 * 0.5


def test_submit_when_cash_covers_cost_but_not_commission_then_refused(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(commission_per_share=Decimal("0.01"), commission_min=Decimal(1))
    short = _open(exchange, new_key, cash=Decimal("5102.50"))  # exactly 10 * 510.25
    enough = _open(exchange, new_key, cash=Decimal("5103.50"))  # plus the 1.00 minimum

    with pytest.raises(InsufficientFundsError, match="insufficient buying power"):
        exchange.submit(short, _buy())
    order = exchange.submit(enough, _buy())

    assert exchange.orders(short, status="all") == []  # nothing created for the refusal
    assert (order.status, order.fees) == (OrderStatus.FILLED, Decimal("1.00"))
    assert exchange.balances(enough).cash == 0


def test_balances_when_limit_buy_rests_then_hold_includes_estimated_commission(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(commission_per_share=Decimal("0.01"), commission_min=Decimal(1))
    account = _open(exchange, new_key)

    exchange.submit(account, _buy(limit_price=Decimal(400)))  # below the low: rests

    # held: 10 * 400 = 4000 plus max(1, 0.10) = 1.00
    assert exchange.balances(account).buying_power == Decimal("95999.00")


def test_trade_update_when_fill_then_commission_in_alpaca_parsable_message(
    make_exchange: ExchangeFactory, new_key: Callable[[], str]
) -> None:
    exchange = make_exchange(commission_per_share=Decimal("0.5"))
    account = _open(exchange, new_key)
    seen: list[TradeUpdate] = []
    exchange.subscribe(lambda _number, update: seen.append(update))

    exchange.submit(account, _buy())

    fill = next(update for update in seen if update.event == "fill")
    message = trade_update_json(fill)["data"]
    assert (fill.fee, message["commission"]) == (Decimal("5.00"), "5")
    # the order carries its commissions so far, as Alpaca's Broker API reports them
    assert message["order"]["commission"] == "5" and "fees" not in message["order"]
    parsed = AlpacaTradeUpdate(**message)  # alpaca-py's model accepts the extra field
    assert parsed.price == 510.25 and parsed.qty == 10


# -- the migration ----------------------------------------------------------------------------


def test_migrate_when_database_at_exchange_0001_then_orders_get_zero_fees(
    pristine_url: str, bars_dir: Path
) -> None:
    engine = create_engine_from_url(pristine_url)
    try:
        upgrade_to(
            engine,
            "exchange_0001",
            script_location=_MIGRATIONS,
            version_table=EXCHANGE_VERSION_TABLE,
            target_metadata=metadata,
        )
        moment = datetime(2025, 3, 7, 20, 50, tzinfo=UTC)
        with engine.begin() as connection:
            columns = {c["name"] for c in sa.inspect(connection).get_columns("exchange_order")}
            assert "fees" not in columns
            connection.execute(
                sa.insert(account_table).values(
                    account_number="PA-OLD",
                    api_key_id="old-key",
                    secret_sha256="0" * 64,
                    cash=Decimal(100000),
                    starting_cash=Decimal(100000),
                    currency="USD",
                    trading_blocked=False,
                    session_date=FRIDAY,
                    created_at=moment,
                    updated_at=moment,
                )
            )
            connection.execute(  # an order written before the fees column existed
                sa.insert(order_table).values(
                    broker_order_id="old-order",
                    account_number="PA-OLD",
                    client_order_id="old-cid",
                    sequence=1,
                    symbol="SPY",
                    side="buy",
                    order_type="limit",
                    time_in_force="gtc",
                    status="new",
                    qty=Decimal(10),
                    target_qty=Decimal(10),
                    limit_price=Decimal(400),
                    reference_price=Decimal(400),
                    filled_qty=Decimal(0),
                    session_date=FRIDAY,
                    submitted_at=moment,
                    updated_at=moment,
                )
            )
        rules = TradingRules(commission_per_share=Decimal("0.5"))
        exchange = Exchange(engine, DatasetMarketData(bars_dir), rules)

        exchange.migrate()

        with engine.connect() as connection:
            version = connection.execute(
                sa.text(f"SELECT version_num FROM {EXCHANGE_VERSION_TABLE}")
            ).scalar_one()
        assert version == "exchange_0004"
        assert exchange.order("PA-OLD", "old-order").fees == 0
        assert exchange.fees("PA-OLD") == 0
        filled = exchange.fill_order("PA-OLD", "old-order", price=Decimal(400))
        assert (filled.status, filled.fees) == (OrderStatus.FILLED, Decimal("5.00"))
        assert exchange.balances("PA-OLD").cash == Decimal("95995.00")  # 100000 - 4000 - 5
    finally:
        engine.dispose()

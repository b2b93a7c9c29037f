"""The equity history: ``Exchange.equity_history`` and ``GET /v2/account/portfolio/history``.

Prices come from the standard dataset of ``conftest.py``: SPY closes 500.00 on Thursday
2025-03-06, 510.25 on Friday 2025-03-07 (high 512) and 505.00 on Monday 2025-03-10; Thursday's
high is 501. Every expectation is computed by hand in the test (equity at a close is
``cash + qty * close``; cash moves by ``cents(qty * price)`` and the commission per fill;
``profit_loss`` is the change from the previous close, the starting cash before the first).
Tests taking ``make_exchange`` run on SQLite and (integration) PostgreSQL; the HTTP tests share
one SQLite server (``module_server``), each with its own account.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import GetPortfolioHistoryRequest

import alchemiser_exchange
from alchemiser_broker.models import OrderSide, OrderType
from alchemiser_common.db import create_engine_from_url, upgrade_to
from alchemiser_exchange import EquityPoint, Exchange, ExchangeServer, OrderSpec, TradingRules
from alchemiser_exchange.errors import InvalidOrderError, NotFoundError
from alchemiser_exchange.history import resolve_window
from alchemiser_exchange.schema import (
    EXCHANGE_VERSION_TABLE,
    account_table,
    metadata,
    order_table,
    position_table,
)
from alchemiser_marketdata import DatasetMarketData

THURSDAY = date(2025, 3, 6)
FRIDAY = date(2025, 3, 7)
MONDAY = date(2025, 3, 10)
TIMEOUT_S = 5.0
INVALID = 40010001
_MIGRATIONS = Path(alchemiser_exchange.__file__).parent / "migrations"
COSTS = {
    "slippage_bps": Decimal(5),
    "commission_per_share": Decimal("0.01"),
    "commission_bps": Decimal(2),
    "commission_min": Decimal(1),
}

ExchangeFactory = Callable[..., Exchange]


def _open(exchange: Exchange, new_key: Callable[[], str], cash: Decimal | None = None) -> str:
    """A fresh account (default $100,000) whose clock starts on Thursday."""
    number = exchange.open_account(new_key(), "secret", cash=cash).account_number
    exchange.set_session(number, THURSDAY)
    return number


def _market(side: OrderSide, qty: int) -> OrderSpec:
    return OrderSpec(symbol="SPY", side=side, order_type=OrderType.MARKET, qty=Decimal(qty))


def _trade_three_sessions(exchange: Exchange, number: str) -> None:
    """Buy 10 SPY on Thursday, hold through Friday, sell 4 on Monday (market orders)."""
    exchange.submit(number, _market(OrderSide.BUY, 10))
    exchange.set_session(number, FRIDAY)
    exchange.set_session(number, MONDAY)
    exchange.submit(number, _market(OrderSide.SELL, 4))


def _rows(points: list[EquityPoint]) -> list[tuple[date, str, str, str]]:
    return [(p.session, str(p.equity), str(p.cash), str(p.profit_loss)) for p in points]


# -- Exchange.equity_history -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "expected", "fees"),
    [
        pytest.param(
            {},
            [
                # buy 10 at 500.00: cash 100000 - 5000 = 95000; equity 95000 + 10 * 500
                (THURSDAY, "100000.00", "95000.00", "0.00"),
                # 95000 + 10 * 510.25 = 100102.50
                (FRIDAY, "100102.50", "95000.00", "102.50"),
                # sell 4 at 505.00: cash 95000 + 2020 = 97020; 97020 + 6 * 505 = 100050.00
                (MONDAY, "100050.00", "97020.00", "-52.50"),
            ],
            "0",
            id="frictionless",
        ),
        pytest.param(
            COSTS,
            [
                # buy at 500 * 1.0005 = 500.25: cost 5002.50, commission
                # cents(max(1, 0.10 + 5002.5 * 0.0002 = 1.1005)) = 1.10; cash 94996.40;
                # equity 94996.40 + 10 * 500 = 99996.40, against 100000: -3.60
                (THURSDAY, "99996.40", "94996.40", "-3.60"),
                # 94996.40 + 10 * 510.25 = 100098.90
                (FRIDAY, "100098.90", "94996.40", "102.50"),
                # sell at 505 * 0.9995 = 504.7475: proceeds cents(2018.99) = 2018.99,
                # commission max(1, 0.04 + 0.403798) = 1.00; cash 94996.40 + 2018.99 - 1
                # = 97014.39; equity 97014.39 + 6 * 505 = 100044.39; 100044.39 - 100098.90
                (MONDAY, "100044.39", "97014.39", "-54.51"),
            ],
            "2.10",
            id="slippage-and-commission",
        ),
    ],
)
def test_equity_history_when_bought_held_and_partly_sold_then_each_close_by_hand(
    make_exchange: ExchangeFactory,
    new_key: Callable[[], str],
    rules: dict[str, Any],
    expected: list[tuple[date, str, str, str]],
    fees: str,
) -> None:
    exchange = make_exchange(**rules)
    number = _open(exchange, new_key)
    _trade_three_sessions(exchange, number)

    points = exchange.equity_history(number)

    assert _rows(points) == expected
    assert exchange.fees(number) == Decimal(fees)
    assert points[-1].equity == exchange.balances(number).equity
    assert points[1].profit_loss_pct == points[1].profit_loss / points[0].equity
    assert all(point.transfers == 0 for point in points)


def test_equity_history_when_no_trades_then_starting_cash_at_each_session(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    number = _open(exchange, new_key, cash=Decimal("25000"))
    exchange.set_session(number, MONDAY)

    points = exchange.equity_history(number)

    assert _rows(points) == [
        (day, "25000.00", "25000.00", "0.00") for day in (THURSDAY, FRIDAY, MONDAY)
    ]
    assert [point.profit_loss_pct for point in points] == [0, 0, 0]


def test_equity_history_when_clock_never_set_then_only_the_current_session(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    number = exchange.open_account(new_key(), "secret").account_number  # Monday: the last day

    assert _rows(exchange.equity_history(number)) == [(MONDAY, "100000.00", "100000.00", "0.00")]


def test_equity_history_when_clock_moved_back_then_history_starts_at_the_earliest(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    number = exchange.open_account(new_key(), "secret").account_number
    exchange.set_session(number, FRIDAY)
    exchange.set_session(number, THURSDAY)  # a replay of an earlier day
    exchange.set_session(number, FRIDAY)

    assert [point.session for point in exchange.equity_history(number)] == [THURSDAY, FRIDAY]


def test_equity_history_when_gtc_order_fills_in_a_later_session_then_counted_there(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    number = _open(exchange, new_key)
    exchange.submit(number, _market(OrderSide.BUY, 10))  # 10 at 500.00
    resting = exchange.submit(
        number,
        OrderSpec(
            symbol="SPY",
            side=OrderSide.SELL,
            order_type=OrderType.LIMIT,
            time_in_force="gtc",
            qty=Decimal(10),
            limit_price=Decimal(505),
        ),
    )  # above Thursday's high of 501: rests
    exchange.set_session(number, FRIDAY)  # high 512: fills at max(505, 510.25)
    exchange.set_session(number, MONDAY)

    points = exchange.equity_history(number)

    assert exchange.order(number, resting.broker_order_id).session_date == THURSDAY
    assert _rows(points) == [
        (THURSDAY, "100000.00", "95000.00", "0.00"),  # 95000 + 10 * 500, the sell still open
        (FRIDAY, "100102.50", "100102.50", "102.50"),  # 95000 + 10 * 510.25, all cash
        (MONDAY, "100102.50", "100102.50", "0.00"),
    ]


def test_equity_history_when_start_and_end_given_then_that_window_against_the_close_before(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    number = _open(exchange, new_key)
    _trade_three_sessions(exchange, number)

    friday = exchange.equity_history(number, start=FRIDAY, end=FRIDAY)
    clamped = exchange.equity_history(number, start=date(2024, 1, 1), end=date(2026, 1, 1))

    assert _rows(friday) == [(FRIDAY, "100102.50", "95000.00", "102.50")]
    assert friday[0].base == Decimal("100000.00")  # Thursday's close
    assert _rows(clamped) == _rows(exchange.equity_history(number))
    assert exchange.equity_history(number, start=MONDAY, end=FRIDAY) == []


def test_equity_history_when_operator_sets_cash_and_position_then_transfers_are_not_profit(
    exchange: Exchange, new_key: Callable[[], str]
) -> None:
    number = _open(exchange, new_key)
    exchange.set_cash(number, Decimal(110000))  # Thursday: 10,000 in
    exchange.set_session(number, FRIDAY)
    exchange.set_position(number, "SPY", Decimal(2), Decimal(400))  # 2 * 510.25 = 1020.50 in
    exchange.set_session(number, MONDAY)

    points = exchange.equity_history(number)

    assert _rows(points) == [
        (THURSDAY, "110000.00", "110000.00", "0.00"),
        (FRIDAY, "111020.50", "110000.00", "0.00"),
        (MONDAY, "111010.00", "110000.00", "-10.50"),  # 2 * (505 - 510.25)
    ]
    assert [point.transfers for point in points] == [Decimal(10000), Decimal("1020.50"), 0]
    assert points[-1].equity == exchange.balances(number).equity


def test_equity_history_when_account_unknown_then_not_found(exchange: Exchange) -> None:
    with pytest.raises(NotFoundError):
        exchange.equity_history("PA-NOBODY")


# -- the migration -----------------------------------------------------------------------------


def test_migrate_when_database_at_exchange_0002_then_existing_fills_become_the_ledger(
    pristine_url: str, bars_dir: Path
) -> None:
    engine = create_engine_from_url(pristine_url)
    try:
        upgrade_to(
            engine,
            "exchange_0002",
            script_location=_MIGRATIONS,
            version_table=EXCHANGE_VERSION_TABLE,
            target_metadata=metadata,
        )
        moment = datetime(2025, 3, 7, 20, 50, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(
                sa.insert(account_table).values(
                    account_number="PA-OLD",
                    api_key_id="old-key",
                    secret_sha256="0" * 64,
                    cash=Decimal(96000),  # 100000 - 5000 for the fill, + 1000 set by hand
                    starting_cash=Decimal(100000),
                    currency="USD",
                    trading_blocked=False,
                    session_date=FRIDAY,
                    created_at=moment,
                    updated_at=moment,
                )
            )
            connection.execute(
                sa.insert(order_table).values(
                    broker_order_id="old-order",
                    account_number="PA-OLD",
                    client_order_id="old-cid",
                    sequence=1,
                    symbol="SPY",
                    side="buy",
                    order_type="market",
                    time_in_force="day",
                    status="filled",
                    qty=Decimal(10),
                    target_qty=Decimal(10),
                    reference_price=Decimal(500),
                    filled_qty=Decimal(10),
                    filled_avg_price=Decimal(500),
                    fees=Decimal(0),
                    session_date=THURSDAY,
                    submitted_at=moment,
                    filled_at=moment,
                    updated_at=moment,
                )
            )
            connection.execute(
                sa.insert(position_table).values(
                    account_number="PA-OLD",
                    symbol="SPY",
                    qty=Decimal(10),
                    avg_entry_price=Decimal(500),
                    updated_at=moment,
                )
            )
        exchange = Exchange(engine, DatasetMarketData(bars_dir), TradingRules())

        exchange.migrate()

        assert exchange.account("PA-OLD").first_session_date == THURSDAY
        points = exchange.equity_history("PA-OLD")
        assert _rows(points) == [
            (THURSDAY, "101000.00", "96000.00", "0.00"),  # the 1000 is a transfer
            (FRIDAY, "101102.50", "96000.00", "102.50"),  # 96000 + 10 * 510.25
        ]
        assert points[0].transfers == Decimal(1000)
        assert points[-1].equity == exchange.balances("PA-OLD").equity
    finally:
        engine.dispose()


# -- the query parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "window"),
    [
        ({}, (date(2025, 2, 11), MONDAY)),  # 1M back from Monday: (2025-02-10, 2025-03-10]
        ({"period": "1D"}, (MONDAY, MONDAY)),
        ({"period": "1w"}, (date(2025, 3, 4), MONDAY)),
        ({"period": "1A"}, (date(2024, 3, 11), MONDAY)),
        ({"start": "2025-03-07"}, (FRIDAY, MONDAY)),
        ({"start": "2025-03-07", "period": "1D"}, (FRIDAY, FRIDAY)),
        ({"date_end": "2025-03-07", "period": "1W"}, (date(2025, 3, 1), FRIDAY)),
        ({"end": "2025-03-07T03:00:00Z", "period": "1D"}, (THURSDAY, THURSDAY)),  # NY: 22:00
        ({"start": "2025-03-06", "end": "2025-03-07T16:00:00-05:00"}, (THURSDAY, FRIDAY)),
        ({"timeframe": "1D", "intraday_reporting": "continuous", "pnl_reset": "no_reset"}, None),
    ],
)
def test_resolve_window_when_alpaca_parameters_then_sessions_asked_for(
    params: dict[str, str], window: tuple[date, date] | None
) -> None:
    expected = window or (date(2025, 2, 11), MONDAY)

    assert resolve_window(current=MONDAY, **params) == expected


def test_resolve_window_when_period_in_months_then_short_months_clamp() -> None:
    assert resolve_window(current=date(2025, 3, 31), period="1M") == (
        date(2025, 3, 1),  # back to 2025-02-28, exclusive
        date(2025, 3, 31),
    )


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"timeframe": "1H"}, "timeframe"),
        ({"timeframe": "15Min"}, "timeframe"),
        ({"period": "1X"}, "period"),
        ({"period": "0D"}, "period"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2025-13-01"}, "end"),
        ({"end": "2025-03-07", "date_end": "2025-03-07"}, "end"),
        ({"start": "2025-03-06", "end": "2025-03-07", "period": "1W"}, "period"),
        ({"intraday_reporting": "always"}, "intraday_reporting"),
        ({"pnl_reset": "weekly"}, "pnl_reset"),
    ],
)
def test_resolve_window_when_parameter_invalid_then_invalid_naming_it(
    params: dict[str, str], named: str
) -> None:
    with pytest.raises(InvalidOrderError, match=f"invalid {named}"):
        resolve_window(current=MONDAY, **params)


# -- GET /v2/account/portfolio/history -----------------------------------------------------------

PATH = "/v2/account/portfolio/history"


@pytest.fixture
def creds(new_key: Callable[[], str]) -> dict[str, str]:
    """The test's own API key headers."""
    key = new_key()
    return {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": f"secret-of-{key}"}


@pytest.fixture
def traded(module_server: ExchangeServer, creds: dict[str, str]) -> str:
    """An account of ``creds`` that bought 10 SPY on Thursday, held them, sold 4 on Monday."""
    exchange = module_server.exchange
    key, secret = creds["APCA-API-KEY-ID"], creds["APCA-API-SECRET-KEY"]
    number = exchange.open_account(key, secret).account_number
    exchange.set_session(number, THURSDAY)
    _trade_three_sessions(exchange, number)
    return number


def _get(server: ExchangeServer, headers: dict[str, str], **params: str) -> requests.Response:
    return requests.get(server.url + PATH, headers=headers, params=params, timeout=TIMEOUT_S)


def _midnight_new_york(utc_hour: int, day: date) -> int:
    return int(datetime(day.year, day.month, day.day, utc_hour, tzinfo=UTC).timestamp())


def test_portfolio_history_when_requested_then_alpaca_shape_with_exact_numbers(
    module_server: ExchangeServer, creds: dict[str, str], traded: str
) -> None:
    response = _get(module_server, creds)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "X-Ratelimit-Remaining" in response.headers
    text = response.text
    assert '"equity":[100000.00,100102.50,100050.00]' in text  # two places, as numbers
    assert '"profit_loss":[0.00,102.50,-52.50]' in text
    body = response.json()
    assert body["timestamp"] == [
        _midnight_new_york(5, THURSDAY),  # EST: UTC-5
        _midnight_new_york(5, FRIDAY),
        _midnight_new_york(4, MONDAY),  # EDT from Sunday 2025-03-09
    ]
    assert body["profit_loss_pct"] == [0.0, 0.001025, pytest.approx(-52.50 / 100102.50)]
    assert '"profit_loss_pct":[0.0000000000,0.0010250000,-0.0005244624]' in text
    assert (body["base_value"], body["base_value_asof"], body["timeframe"]) == (
        100000.0,
        "2025-03-06",
        "1D",
    )


def test_portfolio_history_when_window_asked_then_those_sessions_against_the_close_before(
    module_server: ExchangeServer, creds: dict[str, str], traded: str
) -> None:
    body = _get(module_server, creds, start="2025-03-07", date_end="2025-03-07").json()

    assert body["equity"] == [100102.50]
    assert body["profit_loss"] == [102.50]
    assert (body["base_value"], body["base_value_asof"]) == (100000.0, "2025-03-07")


def test_portfolio_history_when_window_has_no_session_then_empty_without_base_asof(
    module_server: ExchangeServer, creds: dict[str, str], traded: str
) -> None:
    body = _get(module_server, creds, date_end="2025-03-01").json()

    assert body == {
        "timestamp": [],
        "equity": [],
        "profit_loss": [],
        "profit_loss_pct": [],
        "base_value": None,
        "timeframe": "1D",
    }


@pytest.mark.parametrize("case", ["no-keys", "wrong-secret"])
def test_portfolio_history_when_not_authorised_then_401(
    module_server: ExchangeServer, creds: dict[str, str], traded: str, case: str
) -> None:
    headers = {} if case == "no-keys" else {**creds, "APCA-API-SECRET-KEY": "wrong"}

    response = _get(module_server, headers)

    assert response.status_code == 401
    assert response.json() == {"code": 40110000, "message": "request is not authorized"}


@pytest.mark.parametrize(
    ("params", "named"),
    [({"timeframe": "1H"}, "timeframe"), ({"period": "5Y"}, "period"), ({"start": "x"}, "start")],
)
def test_portfolio_history_when_parameter_invalid_then_422_naming_it(
    module_server: ExchangeServer,
    creds: dict[str, str],
    traded: str,
    params: dict[str, str],
    named: str,
) -> None:
    response = _get(module_server, creds, **params)

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == INVALID
    assert body["message"].startswith(f"invalid {named} ")


def test_alpaca_py_portfolio_history_when_requested_then_model_validates(
    module_server: ExchangeServer, creds: dict[str, str], traded: str
) -> None:
    key, secret = creds["APCA-API-KEY-ID"], creds["APCA-API-SECRET-KEY"]
    trading = TradingClient(key, secret, paper=True, url_override=module_server.url)

    history: Any = trading.get_portfolio_history(
        GetPortfolioHistoryRequest(
            period="1W", timeframe="1D", start=None, date_end=date(2025, 3, 10)
        )
    )

    assert history.equity == [100000.0, 100102.5, 100050.0]
    assert history.profit_loss == [0.0, 102.5, -52.5]
    assert (history.base_value, history.timeframe) == (100000.0, "1D")

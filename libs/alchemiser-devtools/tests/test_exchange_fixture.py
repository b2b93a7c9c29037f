"""The ``paper_exchange`` fixture's helpers: prices, rules and order look-ups keep the exchange's
state, and the adapter settings reach its account."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from alchemiser_broker import OrderSide, OrderStatus, OrderType
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_devtools.exchange import (
    SESSION,
    PaperExchange,
    adapter_settings,
    write_dataset,
)
from alchemiser_exchange import OrderSpec, account_number_for
from alchemiser_marketdata import DatasetMarketData


def _buy(exchange: PaperExchange, symbol: str, qty: str, cid: str) -> None:
    spec = OrderSpec(
        symbol=symbol,
        side=OrderSide.BUY,
        order_type=OrderType.MARKET,
        qty=Decimal(qty),
        client_order_id=cid,
    )
    exchange.exchange.submit(exchange.account, spec)


def _close(exchange: PaperExchange, symbol: str) -> Decimal | None:
    bar = exchange.exchange.session_bar(exchange.account, symbol)
    return None if bar is None else bar.close


def test_paper_exchange_when_started_then_spy_at_500_and_100000_cash_in_the_session(
    paper_exchange: PaperExchange,
) -> None:
    balances = paper_exchange.exchange.balances(paper_exchange.account)

    assert balances.cash == Decimal(100000)
    assert balances.session == SESSION
    assert _close(paper_exchange, "SPY") == Decimal(500)
    assert not paper_exchange.exchange.is_known("SOXL")  # unpriced: unknown to the exchange
    assert paper_exchange.account == account_number_for("test-key-id")
    assert paper_exchange.orders() == []


def test_set_prices_when_called_then_other_prices_and_the_account_state_are_kept(
    paper_exchange: PaperExchange,
) -> None:
    _buy(paper_exchange, "SPY", "2", "before-prices")  # fills at the 500 close
    paper_exchange.exchange.set_session(paper_exchange.account, SESSION)

    paper_exchange.set_prices({"SOXL": "25"})
    paper_exchange.set_prices({"TQQQ": ("49", "51", "48", "50")})

    bar = paper_exchange.exchange.session_bar(paper_exchange.account, "TQQQ")
    assert bar is not None
    assert (bar.open, bar.high, bar.low, bar.close) == (
        Decimal(49),
        Decimal(51),
        Decimal(48),
        Decimal(50),
    )
    assert _close(paper_exchange, "SOXL") == Decimal(25)  # the earlier call's price stays
    assert _close(paper_exchange, "SPY") == Decimal(500)  # and the default one
    balances = paper_exchange.exchange.balances(paper_exchange.account)
    assert balances.cash == Decimal(99000)
    assert balances.session == SESSION
    (position,) = paper_exchange.exchange.positions(paper_exchange.account)
    assert (position.symbol, position.qty) == ("SPY", Decimal(2))
    assert [order.client_order_id for order in paper_exchange.orders()] == ["before-prices"]


def test_set_rules_when_called_then_the_running_exchange_trades_by_them_from_now_on(
    paper_exchange: PaperExchange,
) -> None:
    _buy(paper_exchange, "SPY", "4", "full")

    paper_exchange.set_rules(partial_fill_ratio=Decimal("0.5"), non_fractionable={"SPY"})
    _buy(paper_exchange, "SPY", "4", "half")
    paper_exchange.set_rules(spread_bps=Decimal(100))

    (full,) = paper_exchange.orders_for("full")
    (half,) = paper_exchange.orders_for("half")
    assert (full.status, full.filled_qty) == (OrderStatus.FILLED, Decimal(4))
    assert (half.status, half.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal(2))
    assert not paper_exchange.exchange.is_fractionable("SPY")
    # a later call changes only what it names
    assert paper_exchange.rules.partial_fill_ratio == Decimal("0.5")
    assert paper_exchange.exchange.trading.spread_bps == Decimal(100)
    quote = paper_exchange.exchange.quote(paper_exchange.account, "SPY")
    assert quote is not None
    assert (quote.bid, quote.ask) == (Decimal("497.50"), Decimal("502.50"))


def test_orders_for_when_ids_differ_then_only_that_order_and_none_for_an_unknown_id(
    paper_exchange: PaperExchange,
) -> None:
    _buy(paper_exchange, "SPY", "1", "first")
    _buy(paper_exchange, "SPY", "3", "second")

    (second,) = paper_exchange.orders_for("second")

    assert (second.client_order_id, second.qty) == ("second", Decimal(3))
    assert second.account_number == paper_exchange.account
    assert paper_exchange.orders_for("never-sent") == []
    assert {order.client_order_id for order in paper_exchange.orders()} == {"first", "second"}


def test_adapter_settings_when_used_then_the_adapter_reads_the_fixture_account(
    paper_exchange: PaperExchange,
) -> None:
    broker = AlpacaBroker(adapter_settings(paper_exchange.url), sleep=lambda _s: None)

    account = broker.get_account()

    assert account.account_number == paper_exchange.account
    assert account.cash == Decimal(100000)
    assert broker.get_latest_prices(["SPY"]) == {"SPY": Decimal(500)}


def test_paper_exchange_when_account_number_given_then_the_key_opens_that_account(
    tmp_path: Path,
) -> None:
    exchange = PaperExchange(tmp_path / "numbered", account_number="PA0000TEST01")
    try:
        broker = AlpacaBroker(adapter_settings(exchange.url), sleep=lambda _s: None)

        assert exchange.account == "PA0000TEST01"
        assert broker.get_account().account_number == "PA0000TEST01"
    finally:
        exchange.stop()


def test_write_dataset_when_bars_given_then_one_file_the_market_data_reads(
    tmp_path: Path,
) -> None:
    directory = write_dataset(
        tmp_path / "bars", {SESSION: {"SPY": "500", "TQQQ": ("49", "51", "48", "50")}}
    )

    dataset = DatasetMarketData(directory)

    assert list(dataset.trading_days()) == [SESSION]
    history = dataset.history("TQQQ")
    assert history is not None
    bar = history.bar_on_or_before(SESSION)
    assert bar is not None
    assert (bar.open, bar.high, bar.low, bar.close) == (
        Decimal(49),
        Decimal(51),
        Decimal(48),
        Decimal(50),
    )

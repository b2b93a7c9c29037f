"""`alchemiser ledger trades|pnl|report` on a SQLite ledger filled by the store's units of work.

The ledger: account PA1 starts at 10000; two strategy files share a buy of 10 SPY at 100
(alpha 6, beta 4) on 2024-02-29 (one more order fills nothing), nothing trades on 2024-03-01,
and 5 SPY are sold at 104 with 0.50 fees on 2024-03-04 (alpha 3, beta 2). Every expected figure
below is worked out by hand in the comments.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from alchemiser_common.db import create_engine_from_url
from alchemiser_common.inbox import UnitOfWork
from alchemiser_ledger.adapters.store import (
    LedgerStore,
    signal_recorded,
    snapshot_taken,
    trades_booked,
    workflow_finished,
)
from alchemiser_ledger.cli import app
from alchemiser_ledger.statements import account_pnl, pnl_json

ACCOUNT = "PA1"
ALPHA, BETA = "alpha.clj", "beta.clj"
WIDE = {"COLUMNS": "240"}
_ENVS = (
    "ALCHEMISER_LEDGER__DATABASE_URL",
    "ALCHEMISER_DATABASE__URL",
    "ALCHEMISER_NOTIFY__WEBHOOK__URL",
    "ALCHEMISER_NOTIFY__SMTP__HOST",
)


def D(text: str) -> Decimal:
    return Decimal(text)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENVS:
        monkeypatch.delenv(name, raising=False)


def _run(store: LedgerStore, *units: UnitOfWork) -> None:
    with store.engine.begin() as connection:
        for unit in units:
            unit(connection)


def _at(session: date, hour: int) -> datetime:
    return datetime(session.year, session.month, session.day, hour, tzinfo=UTC)


def _order(seq: int, session: date, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "client_order_id": f"c{seq}",
        "seq": seq,
        "correlation_id": f"wf-{session.isoformat()}",
        "session": session,
        "leg": 1,
        "broker_order_id": f"b{seq}",
        "order_type": "market",
        "requested_qty": None,
        "notional": None,
        "fees": D("0"),
        "status": "filled",
        "error": None,
        "filled_at": _at(session, 15),
    }
    row.update(values)
    return row


def _workflow(
    store: LedgerStore,
    session: date,
    equity_before: str,
    snapshot: tuple[str, str, dict[str, tuple[Decimal, Decimal]]],
    orders: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], []),
    account: str = ACCOUNT,
) -> None:
    correlation_id = f"wf-{session.isoformat()}"
    equity, cash, positions = snapshot
    _run(
        store,
        signal_recorded(
            account,
            correlation_id,
            session=session,
            signal_at=_at(session, 14),
            equity_before=D(equity_before),
            allocations=[(ALPHA, D("0.6"), "ok"), (BETA, D("0.4"), "ok")],
            targets={ALPHA: {"SPY": D("1")}, BETA: {"SPY": D("1")}},
        ),
        trades_booked(account, *orders),
        workflow_finished(
            account, correlation_id, outcome="completed", finished_at=_at(session, 16)
        ),
        snapshot_taken(
            account,
            session,
            correlation_id,
            equity=D(equity),
            cash=D(cash),
            taken_at=_at(session, 16),
            positions=positions,
        ),
    )


S1, S2, S3 = date(2024, 2, 29), date(2024, 3, 1), date(2024, 3, 4)


def _fill_ledger(store: LedgerStore) -> None:
    buy = _order(1, S1, symbol="SPY", side="buy", qty=D("10"), price=D("100"))
    unfilled = _order(
        2,
        S1,
        symbol="QQQ",
        side="buy",
        requested_qty=D("3"),
        qty=D("0"),
        price=None,
        status="canceled",
        error="not tradable",
        broker_order_id=None,
        filled_at=None,
    )
    buy_parts = [
        {"client_order_id": "c1", "strategy": ALPHA, "qty": D("6"), "realised": D("0.00")},
        {"client_order_id": "c1", "strategy": BETA, "qty": D("4"), "realised": D("0.00")},
    ]
    # S1 close 101: equity 9000 cash + 1010 = 10010; alpha 6 x 1 = 6, beta 4 x 1 = 4
    _workflow(
        store,
        S1,
        "10000.00",
        ("10010.00", "9000.00", {"SPY": (D("10"), D("101"))}),
        ([buy, unfilled], buy_parts),
    )
    # S2 close 103: equity 10030; alpha unrealised 18 (day 12), beta 12 (day 8)
    _workflow(store, S2, "10010.00", ("10030.00", "9000.00", {"SPY": (D("10"), D("103"))}))
    sell = _order(3, S3, symbol="SPY", side="sell", qty=D("5"), price=D("104"), fees=D("0.50"))
    # alpha sells 3: 3 x (104 - 100) - 0.30 fees = 11.70; beta 2: 8 - 0.20 = 7.80
    sell_parts = [
        {"client_order_id": "c3", "strategy": ALPHA, "qty": D("3"), "realised": D("11.70")},
        {"client_order_id": "c3", "strategy": BETA, "qty": D("2"), "realised": D("7.80")},
    ]
    # S3 close 105: cash 9000 + 520 - 0.50 = 9519.50, + 5 x 105 = 10044.50
    _workflow(
        store,
        S3,
        "10030.00",
        ("10044.50", "9519.50", {"SPY": (D("5"), D("105"))}),
        ([sell], sell_parts),
    )


def _new_store(path: Path) -> LedgerStore:
    store = LedgerStore(create_engine_from_url(f"sqlite:///{path}"))
    store.migrate()
    return store


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[tuple[str, LedgerStore]]:
    store = _new_store(tmp_path / "ledger.db")
    _fill_ledger(store)
    yield f"sqlite:///{tmp_path / 'ledger.db'}", store
    store.engine.dispose()


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={**WIDE, **(env or {})})


def assert_one_line_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


# -- pnl -----------------------------------------------------------------------------------
def test_pnl_json_when_three_sessions_then_figures_are_the_hand_computed_ones(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, store = ledger
    result = invoke("pnl", "--json", "--database-url", url)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document == json.loads(json.dumps(pnl_json(account_pnl(store, ACCOUNT))))
    assert document["account_id"] == ACCOUNT
    assert D(document["inception_equity"]) == D("10000")
    days = {day["session"]: day for day in document["days"]}
    assert list(days) == ["2024-02-29", "2024-03-01", "2024-03-04"]
    expected_account = {
        "2024-02-29": ("10", "10", "10"),
        "2024-03-01": ("20", "20", "30"),  # month-to-date restarts in March
        "2024-03-04": ("14.50", "34.50", "44.50"),
    }
    for session, (day, mtd, inception) in expected_account.items():
        figures = days[session]["account"]
        assert D(figures["day"]) == D(day)
        assert D(figures["month_to_date"]) == D(mtd)
        assert D(figures["since_inception"]) == D(inception)
    last = days["2024-03-04"]
    assert D(last["equity"]) == D("10044.50")
    # alpha: realised 11.70, unrealised 3 x (105 - 100) = 15; day 11.70 + 15 - 18 = 8.70
    alpha, beta = last["strategies"][ALPHA], last["strategies"][BETA]
    assert [D(alpha[key]) for key in ("day", "month_to_date", "since_inception")] == [
        D("8.70"),
        D("20.70"),
        D("26.70"),
    ]
    assert (D(alpha["realised"]), D(alpha["unrealised"])) == (D("11.70"), D("15"))
    # beta: realised 7.80, unrealised 2 x 5 = 10; day 7.80 + 10 - 12 = 5.80
    assert [D(beta[key]) for key in ("day", "month_to_date", "since_inception")] == [
        D("5.80"),
        D("13.80"),
        D("17.80"),
    ]
    assert (D(beta["realised"]), D(beta["unrealised"])) == (D("7.80"), D("10"))
    assert document["breaks"] == {}


def test_pnl_json_when_from_given_then_inception_figures_still_count_earlier_sessions(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("pnl", "--json", "--from", "2024-03-02", "--database-url", url)
    assert result.exit_code == 0, result.output
    days = json.loads(result.stdout)["days"]
    assert [day["session"] for day in days] == ["2024-03-04"]
    assert D(days[0]["account"]["since_inception"]) == D("44.50")


def test_pnl_table_when_shown_then_it_carries_the_figures(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("pnl", "--database-url", url)
    assert result.exit_code == 0, result.output
    for text in ("10,044.50", "14.50", "34.50", "44.50", "8.70", "20.70", "26.70", "11.70"):
        assert text in result.stdout
    assert ALPHA in result.stdout
    assert BETA in result.stdout


def test_pnl_csv_when_asked_then_exact_decimals_per_account_and_strategy(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("pnl", "--csv", "--database-url", url)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 9  # 3 sessions x (account + 2 strategies)
    account = next(r for r in rows if r["session"] == "2024-03-04" and r["strategy"] == "")
    assert D(account["equity"]) == D("10044.50")
    assert D(account["month_to_date"]) == D("34.50")
    beta = next(r for r in rows if r["session"] == "2024-03-04" and r["strategy"] == BETA)
    assert (D(beta["day"]), D(beta["realised"]), D(beta["unrealised"])) == (
        D("5.80"),
        D("7.80"),
        D("10"),
    )


# -- trades --------------------------------------------------------------------------------
def test_trades_json_when_fills_only_then_the_two_fills_in_booking_order(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("trades", "--json", "--database-url", url)
    assert result.exit_code == 0, result.output
    trades = json.loads(result.stdout)
    assert [trade["client_order_id"] for trade in trades] == ["c1", "c3"]
    sell = trades[1]
    assert sell["session"] == "2024-03-04"
    assert (sell["side"], sell["symbol"], sell["broker_order_id"]) == ("sell", "SPY", "b3")
    assert (D(sell["qty"]), D(sell["price"]), D(sell["fees"])) == (D("5"), D("104"), D("0.50"))
    assert sell["correlation_id"] == "wf-2024-03-04"
    assert {name: D(part["realised"]) for name, part in sell["strategies"].items()} == {
        ALPHA: D("11.70"),
        BETA: D("7.80"),
    }
    assert {name: D(part["qty"]) for name, part in sell["strategies"].items()} == {
        ALPHA: D("3"),
        BETA: D("2"),
    }


def test_trades_json_when_all_then_the_unfilled_order_too(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("trades", "--all", "--json", "--database-url", url)
    assert result.exit_code == 0, result.output
    trades = json.loads(result.stdout)
    assert [trade["client_order_id"] for trade in trades] == ["c1", "c2", "c3"]
    assert (trades[1]["status"], trades[1]["price"], D(trades[1]["qty"])) == (
        "canceled",
        None,
        D("0"),
    )


def test_trades_csv_when_range_given_then_rows_in_range_with_exact_text(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("trades", "--csv", "--from", "2024-03-01", "--database-url", url)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 1
    row = rows[0]
    assert (row["qty"], row["price"], row["fees"]) == ("5", "104", "0.50")
    assert row["strategy_qty"] == f"{ALPHA}=3;{BETA}=2"
    assert row["strategy_realised"] == f"{ALPHA}=11.70;{BETA}=7.80"
    assert (row["client_order_id"], row["broker_order_id"]) == ("c3", "b3")
    assert row["correlation_id"] == "wf-2024-03-04"


def test_trades_table_when_shown_then_it_lists_the_fills_and_splits(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("trades", "--database-url", url)
    assert result.exit_code == 0, result.output
    for text in ("2024-02-29", "2024-03-04", "wf-2024-03-04", "c3", "0.50", "11.70", "2 fills"):
        assert text in result.stdout
    assert "QQQ" not in result.stdout


def test_trades_when_database_url_from_env_then_it_is_used(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("trades", "--json", env={"ALCHEMISER_DATABASE__URL": url})
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 2


# -- report --------------------------------------------------------------------------------
def test_report_html_when_month_given_then_page_has_chart_and_month_pnl(
    ledger: tuple[str, LedgerStore], tmp_path: Path
) -> None:
    url, _ = ledger
    page = tmp_path / "march.html"
    result = invoke("report", "--month", "2024-03", "--html", str(page), "--database-url", url)
    assert result.exit_code == 0, result.output
    # March: from 10010.00 (February's close) to 10044.50, P&L 34.50; one fill (the sell)
    for text in ("10,010.00", "10,044.50", "34.50", "20.70", "Fills"):
        assert text in result.stdout
    html = page.read_text(encoding="utf-8")
    assert '<img src="data:image/png;base64,' in html
    assert "34.50" in html
    assert "2024-03" in html


def test_report_when_previous_then_the_month_before_the_latest_session(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("report", "--month", "previous", "--database-url", url)
    assert result.exit_code == 0, result.output
    # the latest session is 2024-03-04, so previous is February: 10000 -> 10010
    assert "PA1: 2024-02" in result.stdout
    assert "10,000.00" in result.stdout
    assert "2024-03-01" not in result.stdout


def test_report_when_month_has_no_session_then_one_line_exit_1(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("report", "--month", "2024-04", "--database-url", url)
    assert_one_line_error(result, 1, "no sessions in 2024-04 for account PA1")


@pytest.mark.parametrize("month", ["2024-13", "March", "2024-3"])
def test_report_when_month_malformed_then_one_line_exit_2(
    ledger: tuple[str, LedgerStore], month: str
) -> None:
    url, _ = ledger
    result = invoke("report", "--month", month, "--database-url", url)
    assert_one_line_error(result, 2, "--month")


# -- report --send -------------------------------------------------------------------------
class FakeChannel:
    """Records what it is asked to send; raises ``fail`` if given."""

    def __init__(self, name: str = "webhook", fail: Exception | None = None) -> None:
        self.name = name
        self.fail = fail
        self.calls: list[tuple[str, str]] = []

    def send(self, message: Any, *, message_id: str) -> None:
        self.calls.append((message.subject, message_id))
        if self.fail is not None:
            raise self.fail


_WEBHOOK_ENV = {"ALCHEMISER_NOTIFY__WEBHOOK__URL": "https://hooks.example.com/T0/B0/x"}


def _fake_channels(monkeypatch: pytest.MonkeyPatch, channel: FakeChannel) -> None:
    from alchemiser_ledger import app as composition

    monkeypatch.setattr(composition, "channels_for", lambda _settings: {channel.name: channel})


def test_report_send_when_sent_twice_then_sent_once(
    ledger: tuple[str, LedgerStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = ledger
    channel = FakeChannel()
    _fake_channels(monkeypatch, channel)
    args = ("report", "--month", "2024-03", "--send", "--database-url", url)
    first = invoke(*args, env=_WEBHOOK_ENV)
    assert first.exit_code == 0, first.output
    assert "monthly:PA1:2024-03: 1 due notification(s) attempted now" in first.stdout
    assert "webhook: sent" in first.stdout
    second = invoke(*args, env=_WEBHOOK_ENV)
    assert second.exit_code == 0, second.output
    assert "0 due notification(s) attempted now" in second.stdout
    assert "webhook: sent" in second.stdout
    assert len(channel.calls) == 1
    assert "2024-03" in channel.calls[0][0]
    assert "34.50" in channel.calls[0][0]  # the month P&L in the subject


def test_report_send_when_deferred_then_said_and_exit_0(
    ledger: tuple[str, LedgerStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    from alchemiser_ledger.notify import DeliveryDeferred

    url, _ = ledger
    _fake_channels(monkeypatch, FakeChannel(fail=DeliveryDeferred("HTTP 503")))
    result = invoke(
        "report", "--month", "2024-03", "--send", "--database-url", url, env=_WEBHOOK_ENV
    )
    assert result.exit_code == 0, result.output
    assert "webhook: deferred after 1 attempt(s) (DeliveryDeferred: HTTP 503)" in result.stdout


def test_report_send_when_refused_then_exit_1(
    ledger: tuple[str, LedgerStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    from alchemiser_ledger.notify import DeliveryRefused

    url, _ = ledger
    _fake_channels(monkeypatch, FakeChannel(fail=DeliveryRefused("HTTP 404")))
    result = invoke(
        "report", "--month", "2024-03", "--send", "--database-url", url, env=_WEBHOOK_ENV
    )
    assert result.exit_code == 1, result.output
    assert "webhook: failed, not sent again: DeliveryRefused: HTTP 404" in result.stdout


def test_report_send_when_no_channel_configured_then_one_line_exit_2(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("report", "--month", "2024-03", "--send", "--database-url", url)
    assert_one_line_error(result, 2, "no notification channel configured")


def test_report_send_when_notify_settings_invalid_then_one_line_naming_the_variable(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    env = {"ALCHEMISER_NOTIFY__SMTP__HOST": "smtp.example.com"}  # no sender, no recipients
    result = invoke("report", "--month", "2024-03", "--send", "--database-url", url, env=env)
    assert_one_line_error(result, 2, "ALCHEMISER_NOTIFY__SMTP__")


# -- errors --------------------------------------------------------------------------------
def test_command_when_no_database_configured_then_one_line_naming_the_settings() -> None:
    result = invoke("pnl")
    assert_one_line_error(
        result, 2, "--database-url", "ALCHEMISER_LEDGER__DATABASE_URL", "ALCHEMISER_DATABASE__URL"
    )


def test_command_when_ledger_env_set_then_it_wins_over_the_service_database(
    ledger: tuple[str, LedgerStore], tmp_path: Path
) -> None:
    url, _ = ledger
    env = {"ALCHEMISER_LEDGER__DATABASE_URL": url, "ALCHEMISER_DATABASE__URL": "sqlite:///no"}
    result = invoke("trades", "--json", env=env)
    assert result.exit_code == 0, result.output


def test_command_when_database_has_no_ledger_tables_then_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).close()
    result = invoke("pnl", "--database-url", f"sqlite:///{path}")
    assert_one_line_error(result, 2, "has no ledger tables", str(path))


def test_command_when_sqlite_file_missing_then_one_line_and_no_file_made(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "ledger.db"
    result = invoke("trades", "--database-url", f"sqlite:///{path}")
    assert_one_line_error(result, 2, "no ledger database")
    assert not path.parent.exists()


def test_command_when_database_unreachable_then_password_is_masked() -> None:
    url = "postgresql://ledger:s3cret-pw@127.0.0.1:1/ledger"
    result = invoke("pnl", "--database-url", url)
    assert_one_line_error(result, 2, "ledger:***@127.0.0.1:1/ledger")
    assert "s3cret-pw" not in result.output


def test_command_when_url_unparsable_then_one_line_without_echoing_it() -> None:
    result = invoke("pnl", "--database-url", "not a url:s3cret-pw")
    assert_one_line_error(result, 2, "--database-url is not a database URL")
    assert "s3cret-pw" not in result.output


def test_command_when_ledger_empty_then_no_workflows_yet_exit_1(tmp_path: Path) -> None:
    store = _new_store(tmp_path / "empty.db")
    store.engine.dispose()
    result = invoke("trades", "--database-url", f"sqlite:///{tmp_path / 'empty.db'}")
    assert_one_line_error(result, 1, "the ledger has no workflows yet")


def test_command_when_several_accounts_and_none_chosen_then_one_line_listing_them(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, store = ledger
    _workflow(store, S1, "500", ("500", "500", {}), account="PA2")
    result = invoke("pnl", "--database-url", url)
    assert_one_line_error(result, 2, "PA1, PA2", "--account")
    chosen = invoke("pnl", "--json", "--account", "PA2", "--database-url", url)
    assert chosen.exit_code == 0, chosen.output
    assert json.loads(chosen.stdout)["account_id"] == "PA2"


def test_command_when_account_unknown_then_one_line_exit_2(
    ledger: tuple[str, LedgerStore],
) -> None:
    url, _ = ledger
    result = invoke("trades", "--account", "NOPE", "--database-url", url)
    assert_one_line_error(result, 2, "'NOPE'", "PA1")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--from", "2024-02-30"), "--from '2024-02-30' is not a date"),
        (("--to", "yesterday"), "--to 'yesterday' is not a date"),
        (("--from", "2024-03-05", "--to", "2024-03-01"), "--from 2024-03-05 is after --to"),
        (("--json", "--csv"), "--json and --csv exclude each other"),
    ],
)
@pytest.mark.parametrize("command", ["trades", "pnl"])
def test_command_when_options_bad_then_one_line_exit_2(
    ledger: tuple[str, LedgerStore], command: str, args: tuple[str, ...], fragment: str
) -> None:
    url, _ = ledger
    result = invoke(command, *args, "--database-url", url)
    assert_one_line_error(result, 2, fragment)

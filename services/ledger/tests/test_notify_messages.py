"""Unit tests of the notification messages: subjects, text and HTML bodies, Slack payloads."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from alchemiser_ledger.notify import (
    SLACK_BLOCK_TEXT_LIMIT,
    AccountLine,
    Message,
    MonthlyNotice,
    OrderLine,
    Outcome,
    PositionLine,
    WorkflowNotice,
    format_money,
    render_monthly,
    render_workflow,
    slack_payload,
)

D = Decimal


def _order(symbol: str = "SPY", **changes: object) -> OrderLine:
    fields: dict[str, object] = {
        "symbol": symbol,
        "side": "buy",
        "qty": D("10"),
        "notional": None,
        "filled_qty": D("10"),
        "avg_price": D("501.2345"),
        "status": "filled",
        "client_order_id": f"co-{symbol}",
        "error": None,
    }
    fields.update(changes)
    return OrderLine(**fields)  # type: ignore[arg-type]


def _completed(orders: tuple[OrderLine, ...] = (), **changes: object) -> WorkflowNotice:
    fields: dict[str, object] = {
        "account_id": "acct-7",
        "correlation_id": "corr-1",
        "session": date(2024, 3, 1),
        "outcome": Outcome.COMPLETED,
        "orders": orders,
        "account": AccountLine(
            equity=D("100234.5"),
            cash=D("1234.567"),
            positions=(PositionLine("SPY", D("10"), D("501.2345"), D("5012.345")),),
        ),
        "allocations": (("nuclear.clj", D("0.6")), ("tqqq.clj", D("0.4"))),
        "trade_value": D("6234.56"),
    }
    fields.update(changes)
    return WorkflowNotice(**fields)  # type: ignore[arg-type]


def test_render_workflow_when_completed_then_subject_counts_orders() -> None:
    orders = tuple(_order(symbol) for symbol in ("SPY", "TLT", "GLD", "QQQ"))

    message = render_workflow(_completed(orders))

    assert message.subject == (
        "Alchemiser: workflow completed for account acct-7 on 2024-03-01 (4 orders)"
    )
    assert render_workflow(_completed(orders[:1])).subject.endswith("(1 order)")


def test_render_workflow_when_completed_then_text_has_orders_account_and_allocations() -> None:
    orders = (
        _order("SPY"),
        _order(
            "TLT",
            side="sell",
            qty=None,
            notional=D("1500"),
            filled_qty=D("3.500"),
            avg_price=D("92.1"),
            status="partially_filled",
            error="insufficient qty",
        ),
    )

    text = render_workflow(_completed(orders)).text

    assert "Outcome:     completed" in text
    assert "Trade value: 6,234.56" in text
    spy = next(line for line in text.splitlines() if line.startswith("SPY     buy"))
    assert spy.split() == ["SPY", "buy", "10", "10", "501.2345", "filled", "co-SPY"]
    tlt = next(line for line in text.splitlines() if line.startswith("TLT     sell"))
    assert "1,500.00 notional" in tlt
    assert " 3.5 " in tlt  # exact quantity, no trailing zeros
    assert " 92.10 " in tlt  # a price keeps at least two decimals
    assert "TLT (co-TLT) error: insufficient qty" in text
    assert "Equity: 100,234.50" in text
    assert "Cash:   1,234.57" in text
    assert "5,012.34" in text  # 5012.345 rounded half to even
    assert "nuclear.clj  60.00%" in text
    assert "tqqq.clj     40.00%" in text


def test_render_workflow_when_failed_then_subject_names_step_and_one_line_reason() -> None:
    notice = _completed(
        outcome=Outcome.FAILED,
        failure_step="execution",
        reason="broker rejected\nevery   order",
        account=None,
        trade_value=None,
    )

    message = render_workflow(notice)

    assert message.subject == (
        "Alchemiser: workflow FAILED for account acct-7 on 2024-03-01 at execution: "
        "broker rejected every order"
    )
    assert "Failed step: execution" in message.text
    assert "The account was not read after this workflow." in message.text
    assert "No orders were placed." in message.text
    assert "Trade value" not in message.text


def test_render_workflow_when_reason_is_long_then_subject_is_cut() -> None:
    notice = _completed(outcome=Outcome.FAILED, failure_step="planning", reason="x" * 1000)

    subject = render_workflow(notice).subject

    assert len(subject) < 250
    assert subject.endswith("…")
    assert "\n" not in subject


def test_render_workflow_when_names_carry_markup_then_html_escapes_them() -> None:
    notice = _completed(
        (_order(error="<img src=x onerror=alert(1)>"),),
        allocations=(("<script>alert('x')</script>.clj", D("1")),),
        outcome=Outcome.FAILED,
        failure_step="execution",
        reason="price < limit & <b>bold</b>",
    )

    html = render_workflow(notice).html

    assert "<script>" not in html
    assert "<img" not in html
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;.clj" in html
    assert "price &lt; limit &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert '<td style="padding: 2px 8px; text-align: right;">100.00%</td>' in html


def test_render_workflow_then_html_has_every_section_and_table() -> None:
    html = render_workflow(_completed((_order(),))).html

    for heading in ("Workflow completed", "Orders (1)", "Account after", "Strategy allocations"):
        assert f"<h2>{heading}</h2>" in html
    assert '<th style="border-bottom: 1px solid #888; padding: 2px 8px;">Avg price</th>' in html
    assert "100,234.50" in html
    assert html.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("amount", "signed", "expected"),
    [
        ("1234567.891", False, "1,234,567.89"),
        ("0.125", False, "0.12"),  # half to even
        ("0.135", False, "0.14"),
        ("-1234.5", True, "-1,234.50"),
        ("1234.5", True, "+1,234.50"),
        ("0", False, "0.00"),
        ("0", True, "0.00"),
        ("-0.001", True, "0.00"),
    ],
)
def test_format_money_when_decimal_then_two_places_and_separators(
    amount: str, signed: bool, expected: str
) -> None:
    assert format_money(D(amount), signed=signed) == expected


def test_render_monthly_then_subject_and_tables_have_signed_pnl() -> None:
    notice = MonthlyNotice(
        account_id="acct-7",
        month="2024-03",
        start_equity=D("100000"),
        end_equity=D("98765.43"),
        pnl=D("-1234.57"),
        sessions=(
            (date(2024, 3, 1), D("99500"), D("-500")),
            (date(2024, 3, 4), D("98765.43"), D("-734.57")),
        ),
        strategies=(
            ("nuclear.clj", D("-1000"), D("-800"), D("-200")),
            ("<b>.clj", D("-234.57"), D("0"), D("-234.57")),
        ),
    )

    message = render_monthly(notice)

    assert (
        message.subject == "Alchemiser: monthly report for account acct-7, 2024-03: P&L -1,234.57"
    )
    assert "Return:       -1.23%" in message.text
    assert "2024-03-04  98,765.43  -734.57" in message.text
    assert "<b>.clj        -234.57      0.00     -234.57" in message.text
    assert "nuclear.clj  -1,000.00   -800.00     -200.00" in message.text
    assert "&lt;b&gt;.clj" in message.html
    assert "<b>.clj" not in message.html


def test_render_monthly_when_nothing_happened_then_notes_instead_of_tables() -> None:
    notice = MonthlyNotice("acct-7", "2024-02", D("0"), D("0"), D("0"))

    text = render_monthly(notice).text

    assert "No sessions this month." in text
    assert "No strategy P&L this month." in text
    assert "Return" not in text  # no return on zero equity


def test_slack_payload_then_subject_is_text_and_body_in_a_code_block() -> None:
    message = Message(subject="Alert <!channel> & co", text="line <1>\nline 2\n", html="")

    payload = slack_payload(message)

    assert payload["text"] == "Alert &lt;!channel&gt; &amp; co"
    assert payload["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "```\nline &lt;1&gt;\nline 2\n```"}}
    ]


def test_slack_payload_when_text_is_long_then_block_is_cut_to_the_limit() -> None:
    message = Message(subject="s", text="&" * 5000, html="")

    payload = slack_payload(message)

    blocks = payload["blocks"]
    assert isinstance(blocks, list)
    block_text = blocks[0]["text"]["text"]
    assert len(block_text) <= SLACK_BLOCK_TEXT_LIMIT
    assert block_text.endswith("(truncated)\n```")
    body = block_text.removeprefix("```\n").split("\n…")[0]
    assert body == "&amp;" * (len(body) // len("&amp;"))  # no half escape left

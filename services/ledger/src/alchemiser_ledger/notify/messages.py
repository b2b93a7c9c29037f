"""Notification messages: a workflow's end and a month's P&L, as plain text and as HTML.

Pure: no I/O and no clock. The handler builds the frozen inputs (:class:`WorkflowNotice`,
:class:`MonthlyNotice`) from what the ledger recorded; :func:`render_workflow` and
:func:`render_monthly` turn them into a :class:`Message` (subject, text, HTML), and
:func:`slack_payload` into a Slack-compatible webhook body.

Rules:

* **One document, two renderings.** A notice becomes a list of sections (fields, a table,
  notes); the text and the HTML are both rendered from that list, so they never disagree.
* **Numbers.** Money has two decimals and thousands separators, rounded half to even (the
  ledger's :func:`~alchemiser_ledger.domain.quantize_money`); P&L carries its sign;
  quantities are shown exactly (no trailing zeros); prices keep their own precision with at
  least two decimals; weights are percentages with two decimals. Decimal only, never float.
* **Escaping.** The HTML is rendered by Jinja2 with autoescape on, so a strategy name, a
  reason or a broker error cannot inject markup. Text put into a subject is collapsed to one
  line (a header cannot be split) and cut to a bounded length.
* **Slack.** Top-level ``text`` is the subject (the notification preview); one section
  block holds the plain text in a code block, cut to Slack's 3,000-character limit per
  block. ``&``, ``<`` and ``>`` are escaped as Slack requires, so ``<!channel>`` in a
  name pings nobody.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from jinja2 import Environment, StrictUndefined

from alchemiser_ledger.domain.decimals import LEDGER_CONTEXT, quantize_money

__all__ = [
    "SLACK_BLOCK_TEXT_LIMIT",
    "AccountLine",
    "Message",
    "MonthlyNotice",
    "OrderLine",
    "Outcome",
    "PositionLine",
    "WorkflowNotice",
    "format_money",
    "render_monthly",
    "render_workflow",
    "slack_payload",
]

SLACK_BLOCK_TEXT_LIMIT = 3000
"""Slack rejects a section block whose text is longer than this."""

_SUBJECT_PREFIX = "Alchemiser"
_REASON_IN_SUBJECT = 120  # characters of a failure reason kept in a subject
_ACCOUNT_IN_SUBJECT = 64
_PERCENT_QUANTUM = Decimal("0.01")
_TRUNCATED = "\n… (truncated)"
_WHITESPACE = re.compile(r"\s+")


class Outcome(StrEnum):
    """How a workflow ended."""

    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One order of the workflow: what was asked (quantity or notional) and what filled."""

    symbol: str
    side: str
    qty: Decimal | None
    notional: Decimal | None
    filled_qty: Decimal
    avg_price: Decimal | None
    status: str
    client_order_id: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PositionLine:
    """One position of the account after the workflow."""

    symbol: str
    qty: Decimal
    price: Decimal
    market_value: Decimal


@dataclass(frozen=True, slots=True)
class AccountLine:
    """The account as read from the broker after the workflow."""

    equity: Decimal
    cash: Decimal
    positions: tuple[PositionLine, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkflowNotice:
    """Everything a workflow's notification says; ``allocations`` maps strategy file to
    weight, ``failure_step`` and ``reason`` are set when the workflow failed."""

    account_id: str
    correlation_id: str
    session: date | None
    outcome: Outcome
    failure_step: str | None = None
    reason: str | None = None
    orders: tuple[OrderLine, ...] = ()
    account: AccountLine | None = None
    allocations: tuple[tuple[str, Decimal], ...] = ()
    trade_value: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MonthlyNotice:
    """A month's report: ``sessions`` are ``(session, equity, day P&L)``, ``strategies`` are
    ``(strategy file, month P&L, realised, unrealised)``."""

    account_id: str
    month: str
    start_equity: Decimal
    end_equity: Decimal
    pnl: Decimal
    sessions: tuple[tuple[date, Decimal, Decimal], ...] = ()
    strategies: tuple[tuple[str, Decimal, Decimal, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered notification: one-line subject, plain text, HTML (may be empty)."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class _Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[int] = frozenset()  # right-aligned columns


@dataclass(frozen=True, slots=True)
class _Section:
    title: str
    fields: tuple[tuple[str, str], ...] = ()
    table: _Table | None = None
    notes: tuple[str, ...] = ()


# --- numbers -------------------------------------------------------------------------------


def format_money(value: Decimal, *, signed: bool = False) -> str:
    """``1234.5`` -> ``"1,234.50"`` (``"+1,234.50"`` when ``signed``, zero unsigned);
    half to even."""
    cents = quantize_money(value)
    if cents.is_zero():
        cents = abs(cents)  # no "-0.00"
    return f"{cents:{'+' if signed and cents else ''},f}"


def _qty(value: Decimal) -> str:
    return f"{value.normalize(LEDGER_CONTEXT):,f}"


def _price(value: Decimal) -> str:
    exponent = value.normalize(LEDGER_CONTEXT).as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return f"{value.normalize(LEDGER_CONTEXT):,f}"
    return format_money(value)


def _percent(weight: Decimal) -> str:
    scaled = LEDGER_CONTEXT.multiply(weight, 100).quantize(
        _PERCENT_QUANTUM, rounding=ROUND_HALF_EVEN, context=LEDGER_CONTEXT
    )
    return f"{scaled:,f}%"


def _one_line(text: str, limit: int) -> str:
    flat = _WHITESPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# --- workflow ------------------------------------------------------------------------------


def _workflow_subject(notice: WorkflowNotice) -> str:
    account = _one_line(notice.account_id, _ACCOUNT_IN_SUBJECT)
    on = f" on {notice.session.isoformat()}" if notice.session else ""
    if notice.outcome == Outcome.COMPLETED:
        orders = _plural(len(notice.orders), "order")
        return f"{_SUBJECT_PREFIX}: workflow completed for account {account}{on} ({orders})"
    step = _one_line(notice.failure_step or "unknown step", 32)
    reason = _one_line(notice.reason or "no reason given", _REASON_IN_SUBJECT)
    return f"{_SUBJECT_PREFIX}: workflow FAILED for account {account}{on} at {step}: {reason}"


def _summary(notice: WorkflowNotice) -> _Section:
    fields = [
        ("Account", notice.account_id),
        ("Session", notice.session.isoformat() if notice.session else "unknown"),
        ("Workflow", notice.correlation_id),
        ("Outcome", notice.outcome.value),
    ]
    if notice.outcome == Outcome.FAILED:
        fields.append(("Failed step", notice.failure_step or "unknown"))
        fields.append(("Reason", notice.reason or "no reason given"))
    if notice.trade_value is not None:
        fields.append(("Trade value", format_money(notice.trade_value)))
    title = "Workflow completed" if notice.outcome == Outcome.COMPLETED else "Workflow FAILED"
    return _Section(title, fields=tuple(fields))


def _ordered(order: OrderLine) -> str:
    if order.qty is not None:
        return _qty(order.qty)
    if order.notional is not None:
        return f"{format_money(order.notional)} notional"
    return "-"


def _orders(orders: Sequence[OrderLine]) -> _Section:
    title = f"Orders ({len(orders)})"
    if not orders:
        return _Section(title, notes=("No orders were placed.",))
    rows = tuple(
        (
            order.symbol,
            order.side,
            _ordered(order),
            _qty(order.filled_qty),
            _price(order.avg_price) if order.avg_price is not None else "-",
            order.status,
            order.client_order_id,
        )
        for order in orders
    )
    headers = ("Symbol", "Side", "Ordered", "Filled", "Avg price", "Status", "Client order id")
    errors = tuple(
        f"{order.symbol} ({order.client_order_id}) error: {order.error}"
        for order in orders
        if order.error
    )
    return _Section(title, table=_Table(headers, rows, frozenset({2, 3, 4})), notes=errors)


def _account(account: AccountLine | None) -> _Section:
    if account is None:
        return _Section("Account after", notes=("The account was not read after this workflow.",))
    fields = (("Equity", format_money(account.equity)), ("Cash", format_money(account.cash)))
    if not account.positions:
        return _Section("Account after", fields=fields, notes=("No open positions.",))
    rows = tuple(
        (line.symbol, _qty(line.qty), _price(line.price), format_money(line.market_value))
        for line in account.positions
    )
    table = _Table(("Symbol", "Qty", "Price", "Market value"), rows, frozenset({1, 2, 3}))
    return _Section("Account after", fields=fields, table=table)


def _allocations(allocations: Sequence[tuple[str, Decimal]]) -> _Section:
    if not allocations:
        return _Section("Strategy allocations", notes=("No allocations recorded.",))
    rows = tuple((name, _percent(weight)) for name, weight in allocations)
    return _Section(
        "Strategy allocations", table=_Table(("Strategy", "Weight"), rows, frozenset({1}))
    )


def render_workflow(notice: WorkflowNotice) -> Message:
    """The notification of a finished workflow: outcome, orders and fills, the account after
    and the strategy allocations."""
    sections = (
        _summary(notice),
        _orders(notice.orders),
        _account(notice.account),
        _allocations(notice.allocations),
    )
    return _message(_workflow_subject(notice), sections)


# --- monthly -------------------------------------------------------------------------------


def render_monthly(notice: MonthlyNotice) -> Message:
    """The monthly report: equity at both ends, P&L and return, each session and each
    strategy file's P&L for the month."""
    account = _one_line(notice.account_id, _ACCOUNT_IN_SUBJECT)
    pnl = format_money(notice.pnl, signed=True)
    month = _one_line(notice.month, 16)
    subject = f"{_SUBJECT_PREFIX}: monthly report for account {account}, {month}: P&L {pnl}"
    fields = [
        ("Account", notice.account_id),
        ("Month", notice.month),
        ("Start equity", format_money(notice.start_equity)),
        ("End equity", format_money(notice.end_equity)),
        ("P&L", pnl),
    ]
    if notice.start_equity > 0:
        ratio = LEDGER_CONTEXT.divide(notice.pnl, notice.start_equity)
        fields.append(("Return", _percent_signed(ratio)))
    sessions = tuple(
        (day.isoformat(), format_money(equity), format_money(day_pnl, signed=True))
        for day, equity, day_pnl in notice.sessions
    )
    strategies = tuple(
        (
            name,
            format_money(month_pnl, signed=True),
            format_money(realised, signed=True),
            format_money(unrealised, signed=True),
        )
        for name, month_pnl, realised, unrealised in notice.strategies
    )
    sections = (
        _Section(f"Monthly report {notice.month}", fields=tuple(fields)),
        _Section(
            "Sessions",
            table=_Table(("Session", "Equity", "Day P&L"), sessions, frozenset({1, 2})),
            notes=() if sessions else ("No sessions this month.",),
        ),
        _Section(
            "Strategies",
            table=_Table(
                ("Strategy", "Month P&L", "Realised", "Unrealised"),
                strategies,
                frozenset({1, 2, 3}),
            ),
            notes=() if strategies else ("No strategy P&L this month.",),
        ),
    )
    return _message(subject, sections)


def _percent_signed(ratio: Decimal) -> str:
    text = _percent(ratio)
    return text if text.startswith("-") else f"+{text}"


# --- rendering -----------------------------------------------------------------------------


def _message(subject: str, sections: Sequence[_Section]) -> Message:
    return Message(subject=subject, text=_text(sections), html=_html(subject, sections))


def _text_table(table: _Table) -> list[str]:
    widths = [
        max([len(header)] + [len(row[index]) for row in table.rows])
        for index, header in enumerate(table.headers)
    ]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if index in table.numeric else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    return [line(table.headers), line(["-" * width for width in widths])] + [
        line(row) for row in table.rows
    ]


def _text(sections: Sequence[_Section]) -> str:
    lines: list[str] = []
    for section in sections:
        lines += [section.title, "=" * len(section.title)]
        width = max((len(label) for label, _ in section.fields), default=0)
        lines += [f"{(label + ':').ljust(width + 1)} {value}" for label, value in section.fields]
        if section.table is not None and section.table.rows:
            if section.fields:
                lines.append("")
            lines += _text_table(section.table)
        lines += list(section.notes)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_ENVIRONMENT = Environment(
    autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
)
_HTML = _ENVIRONMENT.from_string(
    """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family: sans-serif; font-size: 14px;">
{% for section in sections %}
<h2>{{ section.title }}</h2>
{% if section.fields %}
<table>
{% for label, value in section.fields %}
<tr><th style="text-align: left; padding-right: 12px;">{{ label }}</th><td>{{ value }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if section.table and section.table.rows %}
<table style="border-collapse: collapse;">
<tr>{% for header in section.table.headers %}\
<th style="border-bottom: 1px solid #888; padding: 2px 8px;">{{ header }}</th>{% endfor %}</tr>
{% for row in section.table.rows %}
<tr>{% for cell in row %}<td style="padding: 2px 8px; text-align: \
{{ 'right' if loop.index0 in section.table.numeric else 'left' }};">{{ cell }}</td>\
{% endfor %}</tr>
{% endfor %}
</table>
{% endif %}
{% for note in section.notes %}
<p>{{ note }}</p>
{% endfor %}
{% endfor %}
</body></html>
"""
)


def _html(subject: str, sections: Sequence[_Section]) -> str:
    return _HTML.render(subject=subject, sections=sections)


# --- Slack ---------------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_code_block(text: str) -> str:
    body = _slack_escape(text.rstrip("\n"))
    block = f"```\n{body}\n```"
    if len(block) <= SLACK_BLOCK_TEXT_LIMIT:
        return block
    budget = SLACK_BLOCK_TEXT_LIMIT - len("```\n") - len(_TRUNCATED) - len("\n```")
    cut = body[:budget]
    entity = cut.rfind("&")
    if entity != -1 and ";" not in cut[entity:]:
        cut = cut[:entity]  # never leave half an escape such as "&am"
    return f"```\n{cut}{_TRUNCATED}\n```"


def slack_payload(message: Message) -> dict[str, object]:
    """A Slack incoming-webhook body: ``text`` is the subject, one section block holds the
    plain text (escaped, in a code block, at most :data:`SLACK_BLOCK_TEXT_LIMIT`)."""
    section = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _slack_code_block(message.text)},
    }
    return {"text": _slack_escape(message.subject), "blocks": [section]}

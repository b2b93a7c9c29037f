"""The backtest loop both modes share: one workflow per session, the account carried along.

For every session of the range, in order: the session's trigger (the same deterministic
``WorkflowStarted`` ``alchemiser workflow start --as-of`` publishes, so both modes trade under
the same workflow and order ids), the mode's :class:`Workflow` runs it to its outcome, then
the account is read from the exchange at that session's close and the session is checkpointed
(:mod:`.checkpoint`) before the next starts.

Both modes start from a fresh exchange database and fresh service state; the account is then
set to the starting cash, or, resuming, to the cash and positions the last completed session
left. An interrupted session leaves nothing behind: it runs again from the restored account,
so a resumed backtest ends with the results of an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from alchemiser_backtest.checkpoint import BacktestConfig, Checkpoint, Holding
from alchemiser_backtest.records import (
    AllocationRecord,
    DayRecord,
    PositionRecord,
    SessionRecord,
    TradeRecord,
)
from alchemiser_broker.settings import LOCAL_EXCHANGE_KEY_ID
from alchemiser_common.events import SignalGenerated, WorkflowStarted
from alchemiser_common.workflow import build_trigger
from alchemiser_exchange import Exchange
from alchemiser_exchange.rules import MONEY_QUANTUM

__all__ = [
    "BACKTEST_KEY_ID",
    "BACKTEST_SECRET",
    "Outcome",
    "Progress",
    "Workflow",
    "allocations_of",
    "read_session",
    "restore_account",
    "run_backtest",
    "session_trigger",
]

BACKTEST_KEY_ID = LOCAL_EXCHANGE_KEY_ID
"""The API key id the backtest account trades under: the services' local identity, whose
secret is the key id itself (``alchemiser_broker.settings``), so both modes trade one account
number."""
BACKTEST_SECRET = LOCAL_EXCHANGE_KEY_ID
_ORDERS_PER_SESSION = 500


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one session's workflow ended, and the signal it produced (if it got that far)."""

    outcome: str
    signal: SignalGenerated | None


class Workflow(Protocol):
    """One mode's way of running a session's workflow to its outcome."""

    def run(self, trigger: WorkflowStarted) -> Outcome:
        """Run ``trigger``'s workflow until it completes or fails."""
        ...


class Progress(Protocol):
    """Where the loop reports each completed session."""

    def session_done(self, record: SessionRecord, done: int, total: int) -> None:
        """``done`` of ``total`` sessions are complete, the last one ``record``."""
        ...


def allocations_of(signal: SignalGenerated | None, session: date) -> tuple[AllocationRecord, ...]:
    """Each strategy file's share of the consolidated target: its own weight of a symbol
    times its allocation weight."""
    if signal is None:
        return ()
    shares = {item.strategy: item.allocation_weight for item in signal.strategy_allocations}
    records = [
        AllocationRecord(
            session=session,
            strategy=item.strategy,
            symbol=item.symbol,
            weight=item.target_weight * shares.get(item.strategy, Decimal(0)),
        )
        for item in signal.signals
    ]
    return tuple(record for record in records if record.weight != 0)


def session_trigger(account_number: str, session: date) -> WorkflowStarted:
    """The trigger of ``session``'s workflow (deterministic: the same for every run)."""
    return build_trigger(account_number, requested_by="backtest", as_of=session)


def restore_account(
    exchange: Exchange, account_number: str, cash: Decimal, holdings: Sequence[Holding]
) -> None:
    """Set the account to ``cash`` and exactly ``holdings`` (every other position removed)."""
    exchange.set_cash(account_number, cash)
    for position in exchange.positions(account_number):
        exchange.set_position(account_number, position.symbol, Decimal(0), Decimal(0))
    for holding in holdings:
        exchange.set_position(account_number, holding.symbol, holding.qty, holding.avg_entry_price)


def read_session(
    exchange: Exchange, account_number: str, session: date, outcome: Outcome
) -> tuple[SessionRecord, tuple[Holding, ...]]:
    """The account at ``session``'s close and the session's filled orders."""
    exchange.set_session(account_number, session)  # a workflow that failed early left it behind
    view = exchange.balances(account_number)
    positions = exchange.positions(account_number)
    orders = exchange.orders(
        account_number, status="all", limit=_ORDERS_PER_SESSION, session=session
    )
    trades = []
    for order in sorted(orders, key=lambda item: item.sequence):
        if order.session_date != session or order.filled_qty <= 0:
            continue
        price = order.filled_avg_price or Decimal(0)
        trades.append(
            TradeRecord(
                session=session,
                client_order_id=order.client_order_id,
                broker_order_id=order.broker_order_id,
                symbol=order.symbol,
                side=order.side.value,
                qty=order.filled_qty,
                price=price,
                notional=(order.filled_qty * price).quantize(MONEY_QUANTUM),
                fees=getattr(order, "fees", Decimal(0)),
            )
        )
    record = SessionRecord(
        day=DayRecord(
            session=session,
            equity=view.equity,
            cash=view.cash,
            long_market_value=view.long_market_value,
            outcome=outcome.outcome,
        ),
        positions=tuple(
            PositionRecord(
                session=session,
                symbol=item.symbol,
                qty=item.qty,
                price=item.current_price,
                market_value=item.market_value,
            )
            for item in positions
        ),
        trades=tuple(trades),
        allocations=allocations_of(outcome.signal, session),
    )
    holdings = tuple(Holding(item.symbol, item.qty, item.avg_entry_price) for item in positions)
    return record, holdings


def run_backtest(
    config: BacktestConfig,
    *,
    sessions: Sequence[date],
    checkpoint: Checkpoint,
    exchange: Exchange,
    account_number: str,
    workflow: Workflow,
    resume: bool,
    progress: Progress | None = None,
    stop_requested: Callable[[], bool] = lambda: False,
    limit: int | None = None,
) -> list[SessionRecord]:
    """Run every session not yet done (at most ``limit`` of them); return all the sessions'
    records done so far, oldest first."""
    done = checkpoint.start(config, resume=resume)
    if [record.day.session for record, _ in done] != list(sessions[: len(done)]):
        raise ValueError("the checkpoint's sessions are not the first sessions of the range")
    checkpoint.truncate_to(len(done))
    last_holdings: Sequence[Holding] = done[-1][1] if done else ()
    cash = done[-1][0].day.cash if done else config.cash
    restore_account(exchange, account_number, cash, last_holdings)
    records = [record for record, _ in done]
    for session in sessions[len(done) :][:limit]:
        if stop_requested():
            break
        outcome = workflow.run(session_trigger(account_number, session))
        record, holdings = read_session(exchange, account_number, session, outcome)
        checkpoint.append(record, holdings)
        records.append(record)
        if progress is not None:
            progress.session_done(record, len(records), len(sessions))
    return records

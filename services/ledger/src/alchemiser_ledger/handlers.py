"""The ledger's handlers: it only listens, and emits nothing.

* ``SignalGenerated`` -> the workflow's session, each strategy file's allocation and own
  target weights (what fills are attributed by), and the account's equity before the
  workflow (the first one is the account's P&L inception).
* ``TradeExecuted`` -> one trade row per order; each fill split over the strategy files
  (buys by their share of the consolidated target, sells by their holdings, see
  :mod:`alchemiser_ledger.domain.attribution`) and booked at average cost, with its realised
  P&L. Waits (``NotReadyError``) for the workflow's signal up to
  ``ALCHEMISER_LEDGER__SIGNAL_WAIT_S``; after that the fills are booked unattributed.
* ``WorkflowCompleted`` / ``WorkflowFailed`` -> the outcome, the account read from the broker
  (equity, cash, positions: the session's snapshot, when the session is known) and one
  notification per configured channel, queued in the outbox with the input's inbox row (the
  outbox sender sends it, see :mod:`alchemiser_ledger.notify.outbox`). A completed workflow
  that placed orders waits for its settled orders up to ``ALCHEMISER_LEDGER__SETTLED_WAIT_S``.

Each handler returns its writes as units of work: the runtime runs them in its inbox
transaction, so a redelivered event is recognised by its inbox row and changes nothing and
sends nothing. A broker or database outage raises a ``TransientError``: the runtime retries.
Fees: ``execution.order.settled.v1`` carries none; a fill's fees are the commission the broker
reports on its order (read by ``client_order_id`` when the fill is booked).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from alchemiser_broker import BrokerError, BrokerPort
from alchemiser_common.errors import TransientError
from alchemiser_common.events import (
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
)
from alchemiser_common.events.payloads import OrderResult
from alchemiser_common.inbox import UnitOfWork
from alchemiser_common.observability.logging import get_logger
from alchemiser_common.runtime.handlers import HandlerContext, HandlerResult, NotReadyError
from alchemiser_ledger.adapters.store import (
    LedgerStore,
    TradeRow,
    signal_recorded,
    snapshot_taken,
    trades_booked,
    workflow_finished,
)
from alchemiser_ledger.domain import Fill, Side, StrategyTargets, attribute_fill, quantize_money
from alchemiser_ledger.domain.decimals import ZERO
from alchemiser_ledger.notify import (
    AccountLine,
    OrderLine,
    Outcome,
    PositionLine,
    WorkflowNotice,
    queue,
    render_workflow,
)

__all__ = ["OutcomeHandler", "SettledHandler", "SignalHandler", "notification_id"]

_log = get_logger("alchemiser.ledger")
_NO_TARGETS = StrategyTargets(allocations={}, weights={})


def notification_id(account_id: str, correlation_id: str) -> str:
    """The outbox key of a workflow's notification (one per workflow and channel)."""
    return f"workflow:{account_id}:{correlation_id}"


def _age_s(event_at: datetime, context: HandlerContext) -> float:
    return (context.now() - event_at).total_seconds()


class SignalHandler:
    """Records a workflow's session, targets and the account's equity before it."""

    def __init__(self, broker: BrokerPort) -> None:
        self._broker = broker

    def __call__(self, event: SignalGenerated, context: HandlerContext) -> HandlerResult:
        """The workflow's row, allocations and targets, as one unit of work."""
        equity = self._broker.get_account().equity
        targets: dict[str, dict[str, Decimal]] = {}
        for signal in event.signals:
            if signal.target_weight > 0:
                targets.setdefault(signal.strategy, {})[str(signal.symbol)] = signal.target_weight
        allocations = [
            (allocation.strategy, allocation.allocation_weight, allocation.status.value)
            for allocation in event.strategy_allocations
        ]
        succeeded = {strategy for strategy, _, status in allocations if status == "ok"}
        targets = {strategy: own for strategy, own in targets.items() if strategy in succeeded}
        return HandlerResult(
            state=signal_recorded(
                event.account_id,
                str(event.correlation_id),
                session=event.as_of,
                signal_at=event.occurred_at,
                equity_before=equity,
                allocations=[a for a in allocations if a[0] in succeeded],
                targets=targets,
            )
        )


class SettledHandler:
    """Books a workflow's orders and fills, split over the strategy files.

    A fill's fees are the commission the broker reports on the order (``commission``: the
    paper exchange's and Alpaca's Broker API; Alpaca's Trading API is commission-free and
    reports none: 0).
    """

    def __init__(self, store: LedgerStore, broker: BrokerPort, *, signal_wait_s: float) -> None:
        self._store = store
        self._broker = broker
        self._signal_wait_s = signal_wait_s

    def _fees(self, order: OrderResult) -> Decimal:
        """The commission the broker charged for ``order`` (0 when it reports none)."""
        try:
            found = self._broker.get_order_by_client_id(order.client_order_id)
        except TransientError:
            raise
        except BrokerError as err:
            _log.warning(
                "the order's commission could not be read; booked without fees",
                client_order_id=order.client_order_id,
                error=str(err),
            )
            return ZERO
        if found is None or found.commission is None:
            return ZERO
        return quantize_money(found.commission)

    def __call__(self, event: TradeExecuted, context: HandlerContext) -> HandlerResult:
        """The trade rows and their strategy parts, as one unit of work."""
        account_id = event.account_id
        correlation_id = str(event.correlation_id)
        targets = self._store.targets(account_id, correlation_id)
        if targets is None:
            if _age_s(event.occurred_at, context) < self._signal_wait_s:
                raise NotReadyError(f"workflow {correlation_id}: its signal is not recorded yet")
            _log.warning(
                "settled orders without a signal: booked unattributed",
                correlation_id=correlation_id,
            )
            targets = _NO_TARGETS
        workflow = self._store.workflow(account_id, correlation_id)
        session = workflow.session if workflow is not None else None
        book, seq = self._store.book(account_id)
        rows: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        for order in sorted(event.orders, key=lambda order: order.leg):
            fees = self._fees(order) if order.filled_qty > 0 else ZERO
            row = _trade_row(order, correlation_id, session, seq, fees)
            seq += 1
            rows.append(row)
            fill = _fill(order, fees)
            if fill is None:
                continue
            split = attribute_fill(fill, targets, book.holdings(fill.symbol))
            book, realised = book.apply(fill, split)
            parts.extend(
                {
                    "client_order_id": order.client_order_id,
                    "strategy": strategy,
                    "qty": qty,
                    "realised": realised[strategy],
                }
                for strategy, qty in split.items()
            )
        _log.info(
            "orders booked",
            correlation_id=correlation_id,
            orders=len(rows),
            fills=len({part["client_order_id"] for part in parts}),
        )
        return HandlerResult(state=trades_booked(account_id, rows, parts))


def _fill(order: OrderResult, fees: Decimal) -> Fill | None:
    """The order's fill for the book, or ``None`` when nothing filled."""
    if order.filled_qty <= 0 or order.filled_avg_price is None:
        return None
    return Fill(
        symbol=str(order.symbol),
        side=Side(order.side.value),
        qty=order.filled_qty,
        price=order.filled_avg_price,
        fees=fees,
        client_order_id=order.client_order_id,
        broker_order_id=order.broker_order_id,
    )


def _trade_row(
    order: OrderResult, correlation_id: str, session: date | None, seq: int, fees: Decimal
) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "seq": seq,
        "correlation_id": correlation_id,
        "session": session,
        "leg": order.leg,
        "broker_order_id": order.broker_order_id,
        "symbol": str(order.symbol),
        "side": order.side.value,
        "order_type": order.order_type.value,
        "requested_qty": order.qty,
        "notional": order.notional,
        "qty": order.filled_qty,
        "price": order.filled_avg_price if order.filled_qty > 0 else None,
        "fees": fees,
        "status": order.status.value,
        "error": order.error,
        "filled_at": order.filled_at,
    }


class OutcomeHandler:
    """Records a workflow's outcome, the account after it, and queues its notification."""

    def __init__(
        self,
        store: LedgerStore,
        broker: BrokerPort,
        *,
        channels: Sequence[str],
        signal_wait_s: float,
        settled_wait_s: float,
    ) -> None:
        self._store = store
        self._broker = broker
        self._channels = list(channels)
        self._signal_wait_s = signal_wait_s
        self._settled_wait_s = settled_wait_s

    def __call__(
        self, event: WorkflowCompleted | WorkflowFailed, context: HandlerContext
    ) -> HandlerResult:
        """The outcome, the snapshot and the notification, as one unit of work."""
        account_id = event.account_id
        correlation_id = str(event.correlation_id)
        age = _age_s(event.occurred_at, context)
        workflow = self._store.workflow(account_id, correlation_id)
        if (
            isinstance(event, WorkflowCompleted)
            and (workflow is None or workflow.signal_at is None)
            and age < self._signal_wait_s
        ):
            raise NotReadyError(f"workflow {correlation_id}: its signal is not recorded yet")
        trades = self._store.workflow_trades(account_id, correlation_id)
        if (
            isinstance(event, WorkflowCompleted)
            and event.summary.orders_placed > 0
            and not trades
            and age < self._settled_wait_s
        ):
            raise NotReadyError(f"workflow {correlation_id}: its settled orders are not booked yet")
        session = workflow.session if workflow is not None else None
        account = self._broker.get_account()
        positions = {
            position.symbol: (position.qty, position.current_price)
            for position in self._broker.get_positions()
            if position.qty != 0
        }
        now = context.now()
        if isinstance(event, WorkflowCompleted):
            outcome, step, reason = Outcome.COMPLETED, None, None
            trade_value: Decimal | None = event.summary.total_trade_value
        else:
            outcome, step, reason = Outcome.FAILED, event.failure_step.value, event.reason
            trade_value = None
        units: list[UnitOfWork] = [
            workflow_finished(
                account_id,
                correlation_id,
                outcome=outcome.value,
                finished_at=event.occurred_at,
                failure_step=step,
                reason=reason,
            )
        ]
        if session is not None:
            units.append(
                snapshot_taken(
                    account_id,
                    session,
                    correlation_id,
                    equity=account.equity,
                    cash=account.cash,
                    taken_at=now,
                    positions=positions,
                )
            )
        if self._channels:
            notice = WorkflowNotice(
                account_id=account_id,
                correlation_id=correlation_id,
                session=session,
                outcome=outcome,
                failure_step=step,
                reason=reason,
                orders=tuple(_order_line(trade) for trade in trades),
                account=AccountLine(
                    equity=account.equity,
                    cash=account.cash,
                    positions=tuple(
                        PositionLine(symbol, qty, price, qty * price)
                        for symbol, (qty, price) in sorted(positions.items())
                    ),
                ),
                allocations=tuple(self._store.allocations(account_id, correlation_id)),
                trade_value=trade_value,
            )
            units.append(
                queue(
                    account_id,
                    notification_id(account_id, correlation_id),
                    "workflow",
                    render_workflow(notice),
                    self._channels,
                    now,
                )
            )

        def record(connection: Connection) -> None:
            for unit in units:
                unit(connection)

        return HandlerResult(state=record)


def _order_line(trade: TradeRow) -> OrderLine:
    return OrderLine(
        symbol=trade.symbol,
        side=trade.side,
        qty=trade.requested_qty,
        notional=trade.notional,
        filled_qty=trade.qty,
        avg_price=trade.price,
        status=trade.status,
        client_order_id=trade.client_order_id,
        error=trade.error,
    )

"""The order desk: sends, resolves, refreshes and cancels attempts, recording every outcome.

Every send follows the same protocol, which is what makes "at most one order per intent"
hold across retries, crashes and redeliveries:

1. the attempt row is committed PENDING (its own transaction) under its deterministic
   ``client_order_id``;
2. the order is sent (``submit_order``, or ``close_position`` for a full liquidation);
3. the answer is recorded: SUBMITTED or a final state, REJECTED on a definite refusal, UNKNOWN
   when the outcome is ambiguous.

An attempt found PENDING, UNKNOWN or NOT_PLACED later is *resolved*: looked up by
``client_order_id`` first and adopted when the broker has it; sent again (same id) only when
the broker has none. If that second send races a late first one, the broker refuses the
duplicate id and the adapters adopt the existing order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from alchemiser_broker import (
    BrokerOrder,
    BrokerPort,
    BrokerUnavailableError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderRequest,
)
from alchemiser_common.events import OrderType
from alchemiser_common.observability import Metrics
from alchemiser_common.observability.logging import get_logger
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.domain.attempts import Attempt, AttemptState
from alchemiser_execution.domain.sizing import PlannedOrder

__all__ = ["OrderDesk", "block_after_first_accept"]

_log = get_logger(__name__)


def block_after_first_accept(marker: str) -> Callable[[Attempt, BrokerOrder], None]:
    """The crash tests' hook: after the first accepted order, write ``marker`` and block.

    The process then holds an order at the broker whose attempt is still PENDING and whose
    input is not committed: the state a SIGKILL at the worst moment leaves behind.
    """
    fired = threading.Event()

    def hook(attempt: Attempt, order: BrokerOrder) -> None:
        if fired.is_set():
            return
        fired.set()
        _log.warning(
            "blocking after the broker accepted an order (test hook)",
            client_order_id=attempt.client_order_id,
            broker_order_id=order.broker_order_id,
        )
        Path(marker).write_text(attempt.client_order_id)
        threading.Event().wait()

    return hook


class OrderDesk:
    """Carries out one attempt at a time against the broker and the attempts store."""

    def __init__(
        self,
        broker: BrokerPort,
        store: AttemptStore,
        *,
        broker_name: str,
        metrics: Metrics | None = None,
        after_accept: Callable[[Attempt, BrokerOrder], None] | None = None,
    ) -> None:
        self._broker = broker
        self._store = store
        self._broker_name = broker_name
        self._metrics = metrics
        self._after_accept = after_accept

    def now(self) -> datetime:
        """The store's clock."""
        return self._store.now()

    def place(
        self,
        account_id: str,
        correlation_id: str,
        order: PlannedOrder,
        *,
        attempt: int,
        client_order_id: str,
        qty: Decimal,
        order_type: OrderType,
        limit_price: Decimal | None,
    ) -> Attempt:
        """Record attempt ``attempt`` of ``order`` PENDING, then send it (or resolve it)."""
        now = self.now()
        pending = Attempt(
            account_id=account_id,
            correlation_id=correlation_id,
            leg=order.leg,
            attempt=attempt,
            client_order_id=client_order_id,
            symbol=order.symbol,
            side=order.side,
            order_type=order_type,
            qty=qty,
            limit_price=limit_price,
            close_position=order.full_liquidation,
            state=AttemptState.PENDING,
            created_at=now,
            updated_at=now,
        )
        recorded = self._store.add_pending(pending)
        if recorded is not pending:  # recorded earlier (a resumed run): never send blindly
            return self.resolve(recorded)
        return self._send(recorded)

    def resolve(self, attempt: Attempt, *, send_if_absent: bool = True) -> Attempt:
        """Find out whether the broker holds ``attempt``'s order; send it only if not.

        With ``send_if_absent=False`` (a phase at its time bound sends nothing new) an absent
        order marks the attempt NOT_PLACED instead, as reconciliation does.
        """
        try:
            order = self._broker.get_order_by_client_id(attempt.client_order_id)
        except BrokerUnavailableError as err:
            _log.warning(
                "look-up failed; the attempt stays unresolved",
                client_order_id=attempt.client_order_id,
                error=str(err),
            )
            return attempt
        if order is not None:
            _log.info("order adopted", client_order_id=attempt.client_order_id)
            return self.observe(attempt, order)
        if not send_if_absent:
            _log.warning(
                "no order at the broker; not sent, the attempt is marked NOT_PLACED",
                client_order_id=attempt.client_order_id,
            )
            reason = "no order at the broker under this client_order_id; not sent"
            return self._store.save(attempt.marked(AttemptState.NOT_PLACED, self.now(), reason))
        return self._send(attempt)

    def refresh(self, attempt: Attempt) -> Attempt:
        """Re-read an open attempt's order; a failed read leaves it as it was."""
        try:
            order = self._broker.get_order_by_client_id(attempt.client_order_id)
        except BrokerUnavailableError as err:
            _log.warning(
                "order refresh failed", client_order_id=attempt.client_order_id, error=str(err)
            )
            return attempt
        if order is None:
            return attempt
        return self.observe(attempt, order)

    def cancel(self, attempt: Attempt) -> None:
        """Ask the broker to cancel an open attempt (a later refresh shows the outcome)."""
        if attempt.broker_order_id is None:
            return
        try:
            self._broker.cancel_order(attempt.broker_order_id)
            _log.info("cancel requested", client_order_id=attempt.client_order_id)
        except (OrderRejectedError, OrderNotFoundError, BrokerUnavailableError) as err:
            # Already final (filled meanwhile) or unreachable: the next refresh tells.
            _log.info("cancel not done", client_order_id=attempt.client_order_id, error=str(err))

    # -------------------------------------------------------------- internals

    def _send(self, attempt: Attempt) -> Attempt:
        try:
            order = self._submit(attempt)
        except (OrderRejectedError, OrderNotFoundError) as err:
            _log.warning(
                "order refused by the broker",
                client_order_id=attempt.client_order_id,
                error=str(err),
            )
            self._count("rejected", attempt)
            return self._store.save(attempt.marked(AttemptState.REJECTED, self.now(), str(err)))
        except BrokerUnavailableError as err:
            _log.warning(
                "order outcome unknown; it will be looked up",
                client_order_id=attempt.client_order_id,
                error=str(err),
            )
            return self._store.save(attempt.marked(AttemptState.UNKNOWN, self.now(), str(err)))
        self._count("submitted", attempt)
        if self._after_accept is not None:
            self._after_accept(attempt, order)
        return self.observe(attempt, order)

    def _submit(self, attempt: Attempt) -> BrokerOrder:
        if attempt.close_position:
            return self._broker.close_position(attempt.symbol, attempt.client_order_id)
        request = OrderRequest(
            client_order_id=attempt.client_order_id,
            symbol=attempt.symbol,
            side=attempt.side,
            qty=attempt.qty,
            order_type=attempt.order_type,
            limit_price=attempt.limit_price,
        )
        return self._broker.submit_order(request)

    def observe(self, attempt: Attempt, order: BrokerOrder) -> Attempt:
        """Record what ``order`` (the broker's view of ``attempt``'s order, read over REST or
        pushed by the order updates stream) changed; an unchanged attempt is not written.

        Counts a fill or a rejection once, when the attempt first reaches it."""
        updated = attempt.observed(order, self.now())
        if updated.state is AttemptState.FILLED and attempt.state is not AttemptState.FILLED:
            self._count("filled", attempt)
        if updated.state is AttemptState.REJECTED and attempt.state is not AttemptState.REJECTED:
            self._count("rejected", attempt)
        self._count_traded(attempt, updated)
        if _same_facts(updated, attempt):
            return attempt
        return self._store.save(updated)

    def _count(self, what: str, attempt: Attempt) -> None:
        if self._metrics is None:
            return
        counter = {
            "submitted": self._metrics.orders_submitted,
            "filled": self._metrics.orders_filled,
            "rejected": self._metrics.orders_rejected,
        }[what]
        counter.labels(side=attempt.side.value, broker=self._broker_name).inc()

    def _count_traded(self, before: Attempt, after: Attempt) -> None:
        """Add the notional the fills learnt now added (a float metric, for dashboards)."""
        added = after.filled_value - before.filled_value
        if self._metrics is not None and added > 0:
            self._metrics.traded_value_usd.labels(
                side=after.side.value, broker=self._broker_name
            ).inc(float(added))


def _same_facts(left: Attempt, right: Attempt) -> bool:
    return (
        left.state is right.state
        and left.broker_order_id == right.broker_order_id
        and left.broker_status == right.broker_status
        and left.filled_qty == right.filled_qty
        and left.filled_avg_price == right.filled_avg_price
        and left.filled_at == right.filled_at
    )

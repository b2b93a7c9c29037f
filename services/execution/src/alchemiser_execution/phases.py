"""One phase of an execution (all sells, or all buys), driven leg by leg until each is done.

Every poll, each unfinished leg asks :func:`~alchemiser_execution.domain.lifecycle.next_step`
what to do and the :class:`~alchemiser_execution.orders.OrderDesk` does it. Legs progress side
by side, so the phase takes as long as its slowest leg, bounded by
:func:`~alchemiser_execution.settings.phase_timeout_s` plus a grace for the last cancels.
At the bound nothing new is sent: an attempt of unknown fate is looked up once more (NOT_PLACED
if the broker has no such order), a leg that ended in the last round is reported as it ended
(a fill that arrived during a slow submit succeeds), and legs still working end as they are
(reported failed, with the order's status). A leg whose order is still of unknown fate raises
:class:`OrderOutcomeUnknownError` so the runtime redelivers the input and a later run resolves
it.

Fills are learned from the broker's order updates (:class:`~alchemiser_broker.stream.OrderUpdates`,
Alpaca's trade-updates stream) while they are live, and by REST polling otherwise:

* not live (no stream, or it is down): every round re-reads each open order over REST and
  sleeps ``poll_interval_s``, as it always did;
* live: a waiting order is read from the stream's newest state (no HTTP); the round's wait ends
  as soon as an update arrives, else at the next deadline the lifecycle cares about (re-peg,
  fill timeout, the phase's bound), at most :data:`LIVE_WAIT_MAX_S`. An open order is read over
  REST once when the stream cannot vouch for it: after every (re)connection (``take_gap``),
  for an order this runner has not seen placed or read while the stream was live (one
  recorded by an earlier process, or placed while the stream was down), and every
  :data:`LIVE_RECHECK_S` for an order still open (an update lost on a live connection). Stream
  states never move an attempt backwards (a smaller filled quantity than recorded is ignored).

Either way the attempt is updated through :meth:`OrderDesk.observe`, so the attempts store
records a stream-learned fill exactly as a polled one, and crash/resume works unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from alchemiser_broker import BrokerOrder, BrokerPort, BrokerUnavailableError
from alchemiser_broker.stream import NoOrderUpdates, OrderUpdates
from alchemiser_common.events import OrderType
from alchemiser_common.observability.logging import get_logger
from alchemiser_execution.domain.attempts import Attempt, AttemptState
from alchemiser_execution.domain.legs import client_order_id
from alchemiser_execution.domain.lifecycle import Step, StepKind, Timing, next_step, wants_limit
from alchemiser_execution.domain.plan_rules import DEFAULT_CASH_TOLERANCE
from alchemiser_execution.domain.pricing import limit_price, quote_is_usable
from alchemiser_execution.domain.results import LegResult
from alchemiser_execution.domain.runs import ExecutionRun
from alchemiser_execution.domain.sizing import PlannedOrder
from alchemiser_execution.exceptions import OrderOutcomeUnknownError
from alchemiser_execution.orders import OrderDesk
from alchemiser_execution.settings import CANCEL_GRACE_S

__all__ = [
    "LIVE_RECHECK_S",
    "LIVE_WAIT_MAX_S",
    "ExecutionConfig",
    "PhaseRunner",
    "client_order_id_for",
]

_log = get_logger(__name__)

LIVE_WAIT_MAX_S = 1.0
"""The longest wait between rounds while order updates are live (an update ends it earlier)."""
LIVE_RECHECK_S = 5.0
"""While live, an open order the stream said nothing new about is still read over REST this
often: a safety net for an update lost on a connection that stayed up."""
_DEADLINE_SLACK_S = 0.005
"""Added to a deadline's wait so the next round does not wake a hair before it."""


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """The knobs of an execution (from ``ALCHEMISER_EXECUTION__*``)."""

    max_order_value: Decimal
    max_daily_traded_value: Decimal
    limit_policy: bool = False
    max_repegs: int = 2
    max_spread: Decimal = Decimal("0.005")
    repeg_interval_s: float = 10.0
    fill_timeout_s: float = 60.0
    poll_interval_s: float = 0.5
    buying_power_timeout_s: float = 60.0
    cash_tolerance: Decimal = DEFAULT_CASH_TOLERANCE
    """Funding rule slack: buys may exceed cash plus sell proceeds by this fraction."""
    asset_cache_s: float = 0.0
    """How long an asset's flags from the broker are reused (0: asked before every plan)."""

    @property
    def timing(self) -> Timing:
        """How long orders work before they are cancelled."""
        return Timing(repeg_interval_s=self.repeg_interval_s, fill_timeout_s=self.fill_timeout_s)

    @property
    def phase_timeout_s(self) -> float:
        """Upper bound of one phase (the same formula as ``settings.phase_timeout_s``)."""
        limit_rounds = self.max_repegs + 1 if self.limit_policy else 0
        pegs = limit_rounds * (self.repeg_interval_s + self.poll_interval_s)
        return pegs + self.fill_timeout_s + self.poll_interval_s + CANCEL_GRACE_S


class PhaseRunner:
    """Runs the legs of one phase to completion (or to the phase's time bound)."""

    def __init__(
        self,
        broker: BrokerPort,
        desk: OrderDesk,
        config: ExecutionConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        updates: OrderUpdates | None = None,
    ) -> None:
        self._broker = broker
        self._desk = desk
        self._config = config
        self._sleep = sleep
        self._updates: OrderUpdates = updates if updates is not None else NoOrderUpdates(sleep)

    def run(
        self,
        run: ExecutionRun,
        orders: Sequence[PlannedOrder],
        recorded: Mapping[int, Sequence[Attempt]],
    ) -> dict[int, LegResult]:
        """Drive every placeable order of ``orders``; return one result per leg."""
        results: dict[int, LegResult] = {
            order.leg: LegResult(order, (), succeeded=False, error=order.error)
            for order in orders
            if not order.placeable
        }
        active = {order.leg: order for order in orders if order.placeable}
        attempts = {leg: list(recorded.get(leg, ())) for leg in active}
        cancelled: set[str] = set()
        synced: dict[str, datetime] = {}  # open orders the live stream vouches for, since when
        deadline = self._desk.now() + timedelta(seconds=self._config.phase_timeout_s)
        while active:
            live = self._updates.live
            if live and self._updates.take_gap():
                _log.info("order updates (re)connected; open orders are read over REST once")
                synced.clear()
            for leg, order in list(active.items()):
                step = next_step(
                    order,
                    attempts[leg],
                    now=self._desk.now(),
                    timing=self._config.timing,
                    cancel_requested=bool(attempts[leg])
                    and attempts[leg][-1].client_order_id in cancelled,
                )
                if step.kind is StepKind.DONE:
                    results[leg] = LegResult(
                        order, tuple(attempts[leg]), succeeded=step.succeeded, error=step.error
                    )
                    del active[leg]
                    continue
                self._carry_out(
                    run, order, step, attempts[leg], cancelled, synced=synced, live=live
                )
            if not active:
                break
            if self._desk.now() >= deadline:
                results.update(self._give_up(active, attempts))
                break
            self._updates.wait(self._wait_s(active, attempts, cancelled, deadline))
        return results

    def _carry_out(
        self,
        run: ExecutionRun,
        order: PlannedOrder,
        step: Step,
        attempts: list[Attempt],
        cancelled: set[str],
        *,
        synced: dict[str, datetime],
        live: bool,
    ) -> None:
        if step.kind is StepKind.PLACE:
            attempts.append(self._place(run, order, step))
            if live:  # placed while the stream listens: every later change is pushed
                synced[attempts[-1].client_order_id] = self._desk.now()
        elif step.kind is StepKind.RESOLVE:
            attempts[-1] = self._desk.resolve(attempts[-1])
            if live:
                synced[attempts[-1].client_order_id] = self._desk.now()
        elif step.kind is StepKind.CANCEL:
            self._desk.cancel(attempts[-1])
            cancelled.add(attempts[-1].client_order_id)
        elif not live:  # WAIT, polling: see whether the order moved
            attempts[-1] = self._desk.refresh(attempts[-1])
        elif not self._vouched(attempts[-1].client_order_id, synced):  # WAIT, live, unsure
            attempts[-1] = self._resync(attempts[-1], synced)
        else:  # WAIT, live: the stream's newest state, if it has one
            streamed = self._updates.latest(attempts[-1].client_order_id)
            if streamed is not None:
                attempts[-1] = self._apply_streamed(attempts[-1], streamed)

    def _vouched(self, client_order_id: str, synced: Mapping[str, datetime]) -> bool:
        """Whether the stream vouches for the order: seen live, and read within the recheck."""
        since = synced.get(client_order_id)
        if since is None:
            return False
        return (self._desk.now() - since).total_seconds() < LIVE_RECHECK_S

    def _resync(self, attempt: Attempt, synced: dict[str, datetime]) -> Attempt:
        """Read ``attempt``'s order over REST once; the stream vouches for it afterwards."""
        cid = attempt.client_order_id
        try:
            order = self._broker.get_order_by_client_id(cid)
        except BrokerUnavailableError as err:
            _log.warning(
                "order refresh failed; retried next round", client_order_id=cid, error=str(err)
            )
            return attempt
        synced[cid] = self._desk.now()
        return attempt if order is None else self._desk.observe(attempt, order)

    def _apply_streamed(self, attempt: Attempt, order: BrokerOrder) -> Attempt:
        """Record the stream's state of ``attempt``'s order unless it is older than the record
        (e.g. the state from before a gap, already overtaken by the REST read)."""
        if attempt.is_final or order.filled_qty < attempt.filled_qty:
            return attempt
        return self._desk.observe(attempt, order)

    def _wait_s(
        self,
        active: Mapping[int, PlannedOrder],
        attempts: Mapping[int, Sequence[Attempt]],
        cancelled: set[str],
        deadline: datetime,
    ) -> float:
        """How long to wait before the next round (see the module docstring)."""
        config = self._config
        if not self._updates.live:
            return config.poll_interval_s
        now = self._desk.now()
        wait = min(LIVE_WAIT_MAX_S, (deadline - now).total_seconds())
        for leg in active:
            if not attempts[leg]:
                continue
            current = attempts[leg][-1]
            if current.is_final:  # the next round decides at once (done, or the next attempt)
                wait = 0.0
            elif not current.is_open:  # resolving over REST: at the polling pace
                wait = min(wait, config.poll_interval_s)
            elif current.client_order_id not in cancelled:
                is_limit = current.order_type is OrderType.LIMIT
                works_for = config.repeg_interval_s if is_limit else config.fill_timeout_s
                due = current.created_at + timedelta(seconds=works_for)
                wait = min(wait, (due - now).total_seconds())
        return max(0.0, wait) + _DEADLINE_SLACK_S

    def _place(self, run: ExecutionRun, order: PlannedOrder, step: Step) -> Attempt:
        order_type, price = OrderType.MARKET, None
        config = self._config
        if wants_limit(
            order,
            step.attempt,
            step.qty,
            limit_policy=config.limit_policy,
            max_repegs=config.max_repegs,
        ):
            try:
                quote = self._broker.get_quote(order.symbol)
            except BrokerUnavailableError as err:
                _log.warning("quote unavailable; sending a market order", error=str(err))
                quote = None
            if quote is not None and quote_is_usable(quote, config.max_spread):
                order_type = OrderType.LIMIT
                price = limit_price(order.side, quote, step.attempt, config.max_repegs)
            else:
                _log.info("no usable quote; going straight to market", symbol=order.symbol)
        cid = client_order_id_for(run, order.leg, step.attempt)
        _log.info(
            "placing order",
            symbol=order.symbol,
            side=order.side.value,
            qty=str(step.qty),
            order_type=order_type.value,
            limit_price=str(price) if price is not None else None,
            client_order_id=cid,
            attempt=step.attempt,
        )
        return self._desk.place(
            run.account_id,
            run.correlation_id,
            order,
            attempt=step.attempt,
            client_order_id=cid,
            qty=step.qty,
            order_type=order_type,
            limit_price=price,
        )

    def _give_up(
        self, active: Mapping[int, PlannedOrder], attempts: Mapping[int, list[Attempt]]
    ) -> dict[int, LegResult]:
        """The phase's time is up: look up what is unknown one last time, report every leg.

        Nothing is sent at the bound: an unresolved attempt is only looked up (NOT_PLACED when
        the broker has no order under its id). A leg that ended in the phase's last round (its
        order filled or was rejected during a slow submit or look-up) is reported as it ended;
        any other leg failed.
        """
        results: dict[int, LegResult] = {}
        for leg, order in active.items():
            history = attempts[leg]
            if history and history[-1].is_unresolved:
                history[-1] = self._desk.resolve(history[-1], send_if_absent=False)
                if history[-1].is_unresolved:
                    raise OrderOutcomeUnknownError(
                        f"the outcome of order {history[-1].client_order_id} is still unknown; "
                        "the input will be redelivered and the order looked up again"
                    )
            # Only the outcome is read here; the step itself is never carried out, so no
            # order is placed or cancelled whatever it says.
            step = next_step(
                order,
                history,
                now=self._desk.now(),
                timing=self._config.timing,
                cancel_requested=True,
            )
            if step.kind is StepKind.DONE:
                results[leg] = LegResult(
                    order, tuple(history), succeeded=step.succeeded, error=step.error
                )
                continue
            results[leg] = LegResult(
                order,
                tuple(history),
                succeeded=False,
                error=f"not done within the phase's time bound ({_where(history)})",
            )
        return results


def _where(history: Sequence[Attempt]) -> str:
    """Where a leg stands at the phase's bound, for its error."""
    if not history:
        return "order not placed"
    last = history[-1]
    if last.state is AttemptState.NOT_PLACED:
        return f"order {last.client_order_id} not placed: {last.error}"
    return f"order {last.broker_status or last.state.value.lower()}"


def client_order_id_for(run: ExecutionRun, leg: int, attempt: int) -> str:
    """The ``client_order_id`` of attempt ``attempt`` of ``leg`` in ``run``."""
    return client_order_id(UUID(run.correlation_id), run.plan_hash, leg, attempt)

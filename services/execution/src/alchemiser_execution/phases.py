"""One phase of an execution (all sells, or all buys), driven leg by leg until each is done.

Every poll, each unfinished leg asks :func:`~alchemiser_execution.domain.lifecycle.next_step`
what to do and the :class:`~alchemiser_execution.orders.OrderDesk` does it. Legs progress side
by side, so the phase takes as long as its slowest leg, bounded by
:func:`~alchemiser_execution.settings.phase_timeout_s` plus a grace for the last cancels.
Legs still working at the bound end as they are (reported with the order's status); a leg
whose order is still of unknown fate raises :class:`OrderOutcomeUnknownError` so the runtime
redelivers the input and a later run resolves it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

from alchemiser_broker import BrokerPort, BrokerUnavailableError
from alchemiser_common.events import OrderType
from alchemiser_common.observability.logging import get_logger
from alchemiser_execution.domain.attempts import Attempt
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

__all__ = ["ExecutionConfig", "PhaseRunner", "client_order_id_for"]

_log = get_logger(__name__)


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
    ) -> None:
        self._broker = broker
        self._desk = desk
        self._config = config
        self._sleep = sleep

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
        deadline = self._desk.now() + timedelta(seconds=self._config.phase_timeout_s)
        while active:
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
                self._carry_out(run, order, step, attempts[leg], cancelled)
            if not active:
                break
            if self._desk.now() >= deadline:
                results.update(self._give_up(active, attempts))
                break
            self._sleep(self._config.poll_interval_s)
        return results

    def _carry_out(
        self,
        run: ExecutionRun,
        order: PlannedOrder,
        step: Step,
        attempts: list[Attempt],
        cancelled: set[str],
    ) -> None:
        if step.kind is StepKind.PLACE:
            attempts.append(self._place(run, order, step))
        elif step.kind is StepKind.RESOLVE:
            attempts[-1] = self._desk.resolve(attempts[-1])
        elif step.kind is StepKind.CANCEL:
            self._desk.cancel(attempts[-1])
            cancelled.add(attempts[-1].client_order_id)
        else:  # WAIT: see whether the order moved
            attempts[-1] = self._desk.refresh(attempts[-1])

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
        """The phase's time is up: resolve what is unknown one last time, report the rest."""
        results: dict[int, LegResult] = {}
        for leg, order in active.items():
            history = attempts[leg]
            if history and history[-1].is_unresolved:
                history[-1] = self._desk.resolve(history[-1])
                if history[-1].is_unresolved:
                    raise OrderOutcomeUnknownError(
                        f"the outcome of order {history[-1].client_order_id} is still unknown; "
                        "the input will be redelivered and the order looked up again"
                    )
            status = history[-1].broker_status if history else "not placed"
            results[leg] = LegResult(
                order,
                tuple(history),
                succeeded=False,
                error=f"not done within the phase's time bound (order {status})",
            )
        return results


def client_order_id_for(run: ExecutionRun, leg: int, attempt: int) -> str:
    """The ``client_order_id`` of attempt ``attempt`` of ``leg`` in ``run``."""
    return client_order_id(UUID(run.correlation_id), run.plan_hash, leg, attempt)

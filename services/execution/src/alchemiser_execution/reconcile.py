"""Start-up reconciliation: every unsettled attempt is resolved against the broker first.

Runs inside ``register_handlers``, so the service takes no new input before it finishes. Each
attempt that is PENDING, UNKNOWN or SUBMITTED is looked up by ``client_order_id``:

* found: the order is adopted (SUBMITTED or its final state, with ids and fills);
* not found: the attempt becomes NOT_PLACED — the broker holds nothing under the id, so
  nothing happened. **Policy:** the attempt is not re-sent here. Its input was never
  committed (the handler had not returned), so Kafka redelivers it and the resumed run
  re-sends the *same* ``client_order_id`` after another look-up; a late first submit then
  meets the broker's duplicate-id refusal and is adopted. Nothing is sent twice.

An unreachable broker is retried with a capped backoff until ``timeout_s``; then
:class:`ReconciliationError` stops the start-up (the process exits and is restarted).
Open orders at the broker with this service's prefix but no attempt are logged as orphans.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from alchemiser_broker import BrokerPort, BrokerUnavailableError
from alchemiser_common.observability.logging import get_logger
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.domain.attempts import AttemptState
from alchemiser_execution.domain.legs import CLIENT_ORDER_ID_PREFIX
from alchemiser_execution.exceptions import ReconciliationError

__all__ = ["ReconcileReport", "reconcile"]

_log = get_logger(__name__)
_MAX_BACKOFF_S = 10.0


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What reconciliation did: attempts examined, adopted, found absent, orphans seen."""

    examined: int
    adopted: int
    not_placed: int
    orphans: tuple[str, ...]


def reconcile(
    store: AttemptStore,
    broker: BrokerPort,
    *,
    timeout_s: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ReconcileReport:
    """Resolve every unsettled attempt against ``broker``; see the module docstring."""
    pending = store.unsettled()
    examined, adopted, absent = len(pending), 0, 0
    deadline = time.monotonic() + timeout_s
    delay = 0.5
    while pending:
        unreachable = []
        for attempt in pending:
            try:
                order = broker.get_order_by_client_id(attempt.client_order_id)
            except BrokerUnavailableError as err:
                _log.warning(
                    "reconciliation look-up failed; will retry",
                    client_order_id=attempt.client_order_id,
                    error=str(err),
                )
                unreachable.append(attempt)
                continue
            if order is not None:
                store.save(attempt.observed(order, store.now()))
                if attempt.is_unresolved:
                    adopted += 1
                continue
            absent += 1
            reason = (
                "the broker no longer knows this order"
                if attempt.state is AttemptState.SUBMITTED
                else "no order at the broker under this client_order_id"
            )
            store.save(attempt.marked(AttemptState.NOT_PLACED, store.now(), reason))
        pending = unreachable
        if pending:
            if time.monotonic() >= deadline:
                raise ReconciliationError(
                    f"{len(pending)} attempts unresolved after {timeout_s:.0f} s; the broker is "
                    "unreachable, exiting so the service restarts and tries again"
                )
            sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)
    orphans = _orphans(store, broker)
    _log.info(
        "reconciliation done",
        examined=examined,
        adopted=adopted,
        not_placed=absent,
        orphans=len(orphans),
    )
    return ReconcileReport(examined, adopted, absent, orphans)


def _orphans(store: AttemptStore, broker: BrokerPort) -> tuple[str, ...]:
    """Open orders with our prefix that no attempt records (logged; nothing is changed)."""
    list_open = getattr(broker, "get_open_orders", None)
    if list_open is None:
        return ()
    try:
        open_orders = list_open()
    except BrokerUnavailableError as err:
        _log.warning("could not list open orders for the orphan check", error=str(err))
        return ()
    orphans = tuple(
        order.client_order_id
        for order in open_orders
        if order.client_order_id.startswith(CLIENT_ORDER_ID_PREFIX)
        and store.find_attempt(order.client_order_id) is None
    )
    for cid in orphans:
        _log.warning("open order without an attempt record (orphan)", client_order_id=cid)
    return orphans

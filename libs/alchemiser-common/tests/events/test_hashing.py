"""Deterministic identities: canonical JSON, content hashes, derived event ids."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from alchemiser_common.events import (
    EVENT_ID_NAMESPACE,
    RebalancePlanned,
    SignalGenerated,
    TradeExecuted,
    canonical_json,
    derive_event_id,
    execution_plan_hash,
    plan_hash,
    signal_hash,
)
from alchemiser_common.events.samples import (
    sample_rebalance_planned,
    sample_signal_generated,
    sample_trade_executed,
    sample_workflow_started,
)

OTHER_CORRELATION = UUID("11111111-2222-4333-8444-555555555555")


def test_canonical_json_when_keys_inserted_in_any_order_then_same_bytes() -> None:
    first = canonical_json({"b": 1, "a": {"y": Decimal("1.50"), "x": None}})
    second = canonical_json({"a": {"x": None, "y": Decimal("1.5")}, "b": 1})

    assert first == second == b'{"a":{"x":null,"y":"1.5"},"b":1}'


def test_canonical_json_when_decimals_vary_in_exponent_then_normalised_fixed_point() -> None:
    values = [Decimal("1E+2"), Decimal("-0.000"), Decimal("0.100000"), Decimal("-2.50")]

    assert json.loads(canonical_json(values)) == ["100", "0", "0.1", "-2.5"]


def test_canonical_json_when_dates_uuids_and_offsets_then_iso_and_utc() -> None:
    instant = datetime(2025, 3, 14, 21, 45, tzinfo=timezone(timedelta(hours=2)))
    value = {"d": date(2025, 3, 14), "t": instant, "u": OTHER_CORRELATION}

    assert json.loads(canonical_json(value)) == {
        "d": "2025-03-14",
        "t": "2025-03-14T19:45:00+00:00",
        "u": str(OTHER_CORRELATION),
    }


@pytest.mark.parametrize(
    "bad", [1.5, datetime(2025, 1, 1), object()], ids=["float", "naive", "obj"]
)
def test_canonical_json_when_value_unhashable_then_error(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        canonical_json({"x": bad})


def _signal_inputs() -> SignalGenerated:
    return sample_signal_generated()


def test_signal_hash_when_computed_twice_then_identical_hex_digest() -> None:
    event = _signal_inputs()
    first = signal_hash(event.consolidated_portfolio, event.signals, event.correlation_id)
    second = signal_hash(event.consolidated_portfolio, event.signals, event.correlation_id)

    assert first == second == event.signal_hash
    assert len(first) == 64
    int(first, 16)


def test_signal_hash_when_lists_reordered_then_unchanged() -> None:
    event = _signal_inputs()
    reordered = signal_hash(
        list(reversed(event.consolidated_portfolio)),
        list(reversed(event.signals)),
        event.correlation_id,
    )

    assert reordered == event.signal_hash


def test_signal_hash_when_weight_or_correlation_changes_then_differs() -> None:
    event = _signal_inputs()
    portfolio = list(event.consolidated_portfolio)
    portfolio[0] = portfolio[0].model_copy(update={"weight": Decimal("0.400000000000")})

    changed = signal_hash(portfolio, event.signals, event.correlation_id)
    other_workflow = signal_hash(event.consolidated_portfolio, event.signals, OTHER_CORRELATION)

    assert len({event.signal_hash, changed, other_workflow}) == 3


def _planned() -> RebalancePlanned:
    return sample_rebalance_planned()


def test_plan_hash_when_items_reordered_then_unchanged() -> None:
    event = _planned()
    reordered = event.plan.model_copy(update={"items": list(reversed(event.plan.items))})

    assert plan_hash(reordered, event.correlation_id) == event.plan_hash


def test_plan_hash_when_trade_amount_or_correlation_changes_then_differs() -> None:
    event = _planned()
    items = list(event.plan.items)
    items[1] = items[1].model_copy(update={"trade_amount": Decimal("10061.137652")})
    changed = event.plan.model_copy(update={"items": items})

    assert plan_hash(changed, event.correlation_id) != event.plan_hash
    assert plan_hash(event.plan, OTHER_CORRELATION) != event.plan_hash


def test_plan_hash_when_same_value_with_other_exponent_then_unchanged() -> None:
    event = _planned()
    dumped = event.plan.model_dump()
    dumped["items"][0]["trade_amount"] = Decimal("-10243.5172")  # re-quantized on validation

    assert plan_hash(type(event.plan).model_validate(dumped), event.correlation_id) == (
        event.plan_hash
    )


def _executed() -> TradeExecuted:
    return sample_trade_executed()


def test_execution_plan_hash_when_legs_reordered_then_unchanged() -> None:
    event = _executed()
    legs = [order.model_dump(include={"leg", "symbol", "side", "qty"}) for order in event.orders]

    assert execution_plan_hash(legs, event.correlation_id) == event.execution_plan_hash
    assert (
        execution_plan_hash(list(reversed(legs)), event.correlation_id) == event.execution_plan_hash
    )


def test_execution_plan_hash_when_model_or_its_dump_then_same() -> None:
    event = _executed()

    assert execution_plan_hash(event.orders, event.correlation_id) == execution_plan_hash(
        [order.model_dump() for order in event.orders], event.correlation_id
    )


def test_execution_plan_hash_when_quantity_or_correlation_changes_then_differs() -> None:
    event = _executed()
    legs = [order.model_dump(include={"leg", "symbol", "side", "qty"}) for order in event.orders]
    legs[0]["qty"] = Decimal("412")

    assert execution_plan_hash(legs, event.correlation_id) != event.execution_plan_hash
    assert execution_plan_hash(legs, OTHER_CORRELATION) != execution_plan_hash(
        legs, event.correlation_id
    )


def test_hashes_when_same_content_hashed_as_other_kind_then_differ() -> None:
    assert execution_plan_hash([], OTHER_CORRELATION) != signal_hash([], [], OTHER_CORRELATION)


def test_derive_event_id_when_called_twice_then_same_uuid5() -> None:
    cause = UUID("5b0e3f0a-8c2d-4e61-b7a9-3c4d5e6f7a8b")

    first = derive_event_id(cause, "SignalGenerated")

    assert first == derive_event_id(cause, "SignalGenerated")
    assert first.version == 5
    assert str(EVENT_ID_NAMESPACE) == "6f1c7a52-3d0e-5b8a-9c41-2e7d8f5a0b93"


def test_derive_event_id_when_cause_or_type_differs_then_differs() -> None:
    cause = UUID("5b0e3f0a-8c2d-4e61-b7a9-3c4d5e6f7a8b")

    ids = {
        derive_event_id(cause, "TradeExecuted"),
        derive_event_id(cause, "WorkflowCompleted"),
        derive_event_id(OTHER_CORRELATION, "TradeExecuted"),
    }

    assert len(ids) == 3


def test_caused_by_when_run_twice_on_same_cause_then_same_event_id() -> None:
    started = sample_workflow_started()
    later = datetime(2025, 3, 14, 20, 0, tzinfo=UTC)

    first = sample_signal_generated(started)
    again = sample_signal_generated(started).model_copy(update={"occurred_at": later})

    assert first.event_id == again.event_id == derive_event_id(started.event_id, "SignalGenerated")

"""Every event model survives a trip through its Avro schema with fastavro, exactly."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import fastavro
import pytest

from alchemiser_common.errors import DeserializationError
from alchemiser_common.events import (
    Event,
    FailureStep,
    PlanAction,
    PlanItem,
    RebalancePlan,
    RebalancePlanned,
    TradingMode,
    WorkflowFailed,
    WorkflowStarted,
    from_avro_dict,
    plan_hash,
    to_avro_dict,
)
from alchemiser_common.events.samples import (
    sample_events,
    sample_signal_generated,
    sample_workflow_started,
)
from alchemiser_common.schemas import SchemaCatalog, subject_for_topic


def _variants() -> list[Event]:
    started = sample_workflow_started()
    root_without_date = WorkflowStarted(
        event_id=UUID("9f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8"),
        correlation_id=UUID("9f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e9"),
        occurred_at=datetime(2025, 12, 31, 20, 59, 59, 999999, tzinfo=UTC),
        source=started.source,
        account_id="live-account-7",
        requested_by="operator:jane",
        mode=TradingMode.LIVE,
    )
    failed_without_details = WorkflowFailed.caused_by(
        started,
        source=started.source,
        occurred_at=started.occurred_at,
        failure_step=FailureStep.STRATEGY,
        reason="market data unavailable",
    )
    largest = Decimal("9999999999999999999999.999999")  # 28 digits at money scale
    item = PlanItem(
        symbol="BRK.B",
        action=PlanAction.BUY,
        current_weight=Decimal("0"),
        target_weight=Decimal("0.999999999999"),
        weight_diff=Decimal("0.999999999999"),
        current_value=Decimal("0"),
        target_value=largest,
        trade_amount=largest,
        priority=1,
    )
    plan = RebalancePlan(
        plan_id="p-big",
        items=[item],
        total_portfolio_value=largest,
        total_trade_value=largest,
        cash_reserve_pct=Decimal("0.000000000001"),
    )
    big_plan = RebalancePlanned.caused_by(
        sample_signal_generated(),
        source=started.source,
        occurred_at=started.occurred_at,
        plan_hash=plan_hash(plan, started.correlation_id),
        account_snapshot_id="snap-big",
        plan=plan,
        allocation_comparison=[],
    )
    return [root_without_date, failed_without_details, big_plan]


CASES = [*sample_events(), *_variants()]


def _round_trip(event: Event) -> dict[str, Any]:
    catalog = SchemaCatalog.discover()
    schema = fastavro.parse_schema(catalog.load(subject_for_topic(event.TOPIC)))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, to_avro_dict(event))
    buffer.seek(0)
    data = fastavro.schemaless_reader(buffer, schema)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("event", CASES, ids=lambda e: f"{type(e).__name__}-{e.event_id}")
def test_round_trip_when_written_with_its_schema_then_read_back_equal(event: Event) -> None:
    back = from_avro_dict(type(event), _round_trip(event))

    assert back == event
    # repr shows every Decimal's exponent and every datetime's tzinfo: the trip is exact.
    assert repr(back) == repr(event)


def test_round_trip_when_optional_values_set_and_unset_then_both_kinds_covered() -> None:
    dumped = [to_avro_dict(event) for event in CASES]
    orders = [order for data in dumped for order in data.get("orders", [])]
    as_of = [data["as_of"] for data in dumped if data["event_type"] == "WorkflowStarted"]

    assert {order["notional"] is None for order in orders} == {True, False}
    assert {order["submitted_at"] is None for order in orders} == {True, False}
    assert {value is None for value in as_of} == {True, False}


def test_read_when_fastavro_returns_records_then_types_are_logical_types() -> None:
    data = _round_trip(sample_events()[3])  # TradeExecuted

    assert isinstance(data["event_id"], UUID)
    assert data["occurred_at"].tzinfo is not None
    assert isinstance(data["orders"][0]["qty"], Decimal)
    assert data["orders"][0]["qty"].as_tuple().exponent == -9
    assert data["orders"][0]["side"] == "sell"


def test_to_avro_dict_when_enums_present_then_plain_strings() -> None:
    data = to_avro_dict(sample_workflow_started())

    assert type(data["mode"]) is str
    assert data["as_of"] == date(2025, 3, 14)


def test_from_avro_dict_when_float_given_then_deserialization_error() -> None:
    data = to_avro_dict(sample_events()[3])
    data["total_trade_value"] = 10243.33

    with pytest.raises(DeserializationError) as caught:
        from_avro_dict(type(sample_events()[3]), data)
    assert caught.value.reason == "float_value"


def test_from_avro_dict_when_record_invalid_then_deserialization_error() -> None:
    data = to_avro_dict(sample_workflow_started())
    data["occurred_at"] = datetime(2025, 3, 14, 19, 45)  # naive

    with pytest.raises(DeserializationError) as caught:
        from_avro_dict(WorkflowStarted, data)
    assert caught.value.reason == "invalid_event"

"""Event validation: strict types, UTC timestamps, fixed-scale Decimals, envelope rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar, Literal
from uuid import UUID

import pytest
from pydantic import ValidationError

from alchemiser_common.events import (
    EVENT_CLASSES,
    EVENT_TYPES,
    MONEY,
    QUANTITY,
    WEIGHT,
    Event,
    EventSource,
    OrderStatus,
    SignalGenerated,
    TargetWeight,
    TradingMode,
    UnknownEventError,
    WorkflowStarted,
    event_class_for_topic,
    event_class_for_type,
)
from alchemiser_common.events.samples import (
    sample_rebalance_planned,
    sample_signal_generated,
    sample_workflow_started,
)


def _started(**changes: Any) -> WorkflowStarted:
    data = sample_workflow_started().model_dump()
    data["source"] = EventSource(**data["source"])
    data.update(changes)
    return WorkflowStarted(**data)


def test_validate_when_occurred_at_naive_then_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        _started(occurred_at=datetime(2025, 3, 14, 19, 45))


def test_validate_when_occurred_at_has_offset_then_same_instant_in_utc() -> None:
    local = datetime(2025, 3, 14, 15, 45, tzinfo=timezone(timedelta(hours=-4)))

    event = _started(occurred_at=local)

    assert event.occurred_at == local
    assert event.occurred_at.tzinfo is UTC
    assert event.occurred_at.hour == 19


def test_validate_when_extra_field_then_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        _started(comment="hello")


def test_validate_when_nested_record_has_extra_field_then_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        TargetWeight(symbol="SPY", weight=Decimal(1), note="x")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mode", "paper"),
        ("schema_version", "1"),
        ("schema_version", True),
        ("event_id", "5b0e3f0a-8c2d-4e61-b7a9-3c4d5e6f7a8b"),
        ("as_of", "2025-03-14"),
        ("as_of", datetime(2025, 3, 14, tzinfo=UTC)),
        ("requested_by", 7),
        ("event_type", "SignalGenerated"),
    ],
)
def test_validate_when_value_of_wrong_type_then_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        _started(**{field: value})


@pytest.mark.parametrize("value", ["0.5", 0.5, Decimal("NaN"), Decimal("Infinity")])
def test_validate_when_weight_not_finite_decimal_then_rejected(value: object) -> None:
    with pytest.raises(ValidationError):
        TargetWeight(symbol="SPY", weight=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.0000005", "0.000000"),
        ("0.0000015", "0.000002"),
        ("0.0000025", "0.000002"),
        ("-0.0000001", "0.000000"),
        ("12", "12.000000"),
    ],
)
def test_quantize_when_money_has_more_places_then_half_even_at_scale_6(
    raw: str, expected: str
) -> None:
    result = MONEY(Decimal(raw))

    assert str(result) == expected
    assert not result.is_signed()


def test_quantize_when_value_exceeds_precision_then_rejected() -> None:
    with pytest.raises(ValueError, match="precision 28"):
        MONEY(Decimal("12345678901234567890123.5"))


def test_specs_when_inspected_then_documented_precision_and_scale() -> None:
    assert [(s.precision, s.scale) for s in (MONEY, QUANTITY, WEIGHT)] == [
        (28, 6),
        (28, 9),
        (28, 12),
    ]


def test_validate_when_weight_given_then_stored_at_scale_12() -> None:
    weight = TargetWeight(symbol="SPY", weight=Decimal("0.3333333333333333")).weight

    assert weight == Decimal("0.333333333333")
    assert weight.as_tuple().exponent == -12


def test_validate_when_causation_missing_on_non_root_event_then_rejected() -> None:
    data = sample_signal_generated().model_dump()
    data["causation_id"] = None

    with pytest.raises(ValidationError, match="requires a causation_id"):
        SignalGenerated.model_validate(data, strict=False)


def test_validate_when_event_is_its_own_cause_then_rejected() -> None:
    event_id = UUID("5b0e3f0a-8c2d-4e61-b7a9-3c4d5e6f7a8b")

    with pytest.raises(ValidationError, match="cannot cause itself"):
        _started(event_id=event_id, causation_id=event_id)


def test_validate_when_account_id_empty_then_rejected() -> None:
    with pytest.raises(ValidationError):
        _started(account_id="")


def test_validate_when_portfolio_unsorted_then_sorted_by_symbol() -> None:
    event = sample_signal_generated()

    assert [w.symbol for w in event.consolidated_portfolio] == ["OKLO", "SMR", "TQQQ"]


def test_validate_when_portfolio_symbol_repeated_then_rejected() -> None:
    data = sample_signal_generated().model_dump()
    data["consolidated_portfolio"].append(data["consolidated_portfolio"][0])

    with pytest.raises(ValidationError, match="duplicate portfolio symbols: OKLO"):
        SignalGenerated.model_validate(data, strict=False)


def test_validate_when_plan_symbol_repeated_then_rejected() -> None:
    data = sample_rebalance_planned().model_dump()
    data["plan"]["items"].append(data["plan"]["items"][0])

    with pytest.raises(ValidationError, match="duplicate plan symbols"):
        type(sample_rebalance_planned()).model_validate(data, strict=False)


def test_assign_when_event_frozen_then_rejected() -> None:
    event = sample_workflow_started()

    with pytest.raises(ValidationError):
        event.account_id = "other"  # type: ignore[misc]


def test_schema_version_when_not_given_then_class_version_and_older_kept() -> None:
    assert sample_workflow_started().schema_version == WorkflowStarted.SCHEMA_VERSION
    assert _started(schema_version=1).schema_version == 1
    with pytest.raises(ValidationError):
        _started(schema_version=0)


def test_caused_by_when_building_output_then_envelope_copied_from_cause() -> None:
    started = sample_workflow_started()

    signal = sample_signal_generated(started)

    assert signal.correlation_id == started.correlation_id
    assert signal.causation_id == started.event_id
    assert signal.account_id == started.account_id
    assert signal.event_type == "SignalGenerated"
    assert signal.event_id != started.event_id


def test_registry_when_looked_up_then_every_class_by_type_and_topic() -> None:
    assert list(EVENT_TYPES) == [cls.__name__ for cls in EVENT_CLASSES]
    for cls in EVENT_CLASSES:
        assert event_class_for_type(cls.__name__) is cls
        assert event_class_for_topic(cls.TOPIC) is cls
        assert cls.model_fields["event_type"].default == cls.__name__
    assert event_class_for_topic("execution.order.settled.v1").__name__ == "TradeExecuted"


def test_registry_when_topic_unknown_then_unknown_event_error() -> None:
    with pytest.raises(UnknownEventError):
        event_class_for_topic("strategy.signal.generated.v1.dlq")
    with pytest.raises(LookupError):
        event_class_for_type("OrderSettled")


def test_subclass_when_event_type_default_wrong_then_type_error() -> None:
    with pytest.raises(TypeError, match="event_type"):

        class Misnamed(Event):
            TOPIC: ClassVar[str] = "misnamed.v1"
            SCHEMA_VERSION: ClassVar[int] = 1
            event_type: Literal["Other"] = "Other"


def test_order_status_when_final_checked_then_four_final_states() -> None:
    assert {status for status in OrderStatus if status.is_final} == {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REJECTED,
    }


def test_workflow_started_when_defaults_used_then_trading_latest_date() -> None:
    event = WorkflowStarted(
        event_id=UUID("5b0e3f0a-8c2d-4e61-b7a9-3c4d5e6f7a8b"),
        correlation_id=UUID("5b0e3f0a-8c2d-4e61-b7a9-3c4d5e6f7a8c"),
        occurred_at=datetime(2025, 3, 14, tzinfo=UTC),
        source=EventSource(service="cli", version="0.1.0"),
        account_id="PA1",
        requested_by="me",
        mode=TradingMode.PAPER,
    )

    assert (event.workflow_type, event.as_of, event.causation_id) == ("trading", None, None)
    assert date(2025, 3, 14) == event.occurred_at.date()

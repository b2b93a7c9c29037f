"""The bounded ``reason`` label of ``workflows_finished_total``."""

from __future__ import annotations

import pytest

from alchemiser_common.events.samples import sample_workflow_failed
from alchemiser_common.runtime.loop import reason_label


@pytest.mark.parametrize(
    ("reason", "details", "label"),
    [
        ("max_order_value_exceeded", {}, "max_order_value_exceeded"),
        ("account_mismatch", {"error_type": "X"}, "account_mismatch"),
        ("no data for QQQ on 2018-06-15", {"error_type": "SignalUnavailableError"},
         "SignalUnavailableError"),
        ("planning failed: boom", {}, "other"),
        ("Free text", {"error_type": "not a class name!"}, "other"),
        ("x" * 65, {}, "other"),
    ],
)  # fmt: skip
def test_reason_label_when_reason_is_not_a_code_then_error_type_or_other(
    reason: str, details: dict[str, str], label: str
) -> None:
    failed = sample_workflow_failed().model_copy(update={"reason": reason, "details": details})

    assert reason_label(failed) == label

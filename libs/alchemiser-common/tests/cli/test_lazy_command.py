"""The ``alchemiser`` command loads a group's modules only when that group runs."""

from __future__ import annotations

import json
import subprocess
import sys

from alchemiser_common.cli import build_app

_PROBE = """
import json, sys
from alchemiser_common.cli import main
try:
    main()
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if m.startswith(("alchemiser_", "confluent_kafka")))
print("MODULES=" + json.dumps(loaded))
"""


def _modules_after(*argv: str) -> tuple[str, list[str]]:
    """Run the command in a fresh interpreter; its output and the project modules it imported."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output, _, modules = result.stdout.rpartition("MODULES=")
    return output, json.loads(modules)


def test_help_when_asked_then_every_group_listed_and_none_imported() -> None:
    output, modules = _modules_after("--help")

    for group in ("execution", "portfolio", "registry", "schemas", "strategy", "topics"):
        assert group in output
    assert "workflow" in output
    assert modules == ["alchemiser_common", "alchemiser_common.cli"]


def test_workflow_start_help_when_asked_then_no_event_serde_or_kafka_module_imported() -> None:
    output, modules = _modules_after("workflow", "start", "--help")

    assert "--account" in output and "--wait" in output
    assert "alchemiser_common.cli.workflow" in modules
    assert not [m for m in modules if m.startswith(("confluent_kafka", "alchemiser_common.events"))]
    assert not [m for m in modules if m.startswith(("alchemiser_strategy", "alchemiser_registry"))]


def test_group_when_run_then_its_module_is_loaded_and_its_commands_work() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(build_app(), ["schemas", "check"])

    assert result.exit_code == 0, result.output
    assert "compatible" in result.output


def test_unknown_group_when_run_then_usage_error() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(build_app(), ["no-such-group"])

    assert result.exit_code == 2
    assert "No such command" in result.output

"""Every service's ``python -m alchemiser_<svc>`` entry point (the workspace installs them all)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("service", ["strategy", "portfolio", "execution"])
def test_service_module_when_help_asked_then_help_printed_and_nothing_started(
    service: str,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"alchemiser_{service}", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m alchemiser_{service}")
    assert "ALCHEMISER_" in result.stdout
    assert "starting" not in result.stdout + result.stderr  # the runtime never ran

"""``python -m alchemiser_execution``: run the execution service until SIGTERM."""

from __future__ import annotations

from alchemiser_common.runtime.service import run_service
from alchemiser_execution import register_handlers
from alchemiser_execution.settings import ExecutionSettings

if __name__ == "__main__":
    raise SystemExit(run_service("execution", register_handlers, ExecutionSettings))

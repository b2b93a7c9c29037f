"""``python -m alchemiser_strategy``: run the strategy service until SIGTERM."""

from __future__ import annotations

from alchemiser_common.runtime.service import run_service
from alchemiser_strategy import register_handlers
from alchemiser_strategy.settings import StrategySettings

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(run_service("strategy", register_handlers, StrategySettings))

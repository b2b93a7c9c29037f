"""``python -m alchemiser_strategy [--help]``: run the strategy service until SIGTERM."""

from __future__ import annotations

from alchemiser_strategy.service import SERVICE

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(SERVICE.main())

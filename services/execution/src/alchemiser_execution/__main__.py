"""``python -m alchemiser_execution [--help]``: run the execution service until SIGTERM."""

from __future__ import annotations

from alchemiser_execution.service import SERVICE

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(SERVICE.main())

"""``python -m alchemiser_ledger [--help]``: run the ledger service until SIGTERM."""

from __future__ import annotations

from alchemiser_ledger.service import SERVICE

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(SERVICE.main())

"""``python -m alchemiser_portfolio [--help]``: run the portfolio service until SIGTERM."""

from __future__ import annotations

from alchemiser_portfolio.service import SERVICE

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(SERVICE.main())

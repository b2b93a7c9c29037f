"""``python -m alchemiser_portfolio``: run the portfolio service until SIGTERM/SIGINT."""

from __future__ import annotations

from alchemiser_portfolio.app import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())

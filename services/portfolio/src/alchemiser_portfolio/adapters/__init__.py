"""The portfolio service's I/O: reading the account through the broker port."""

from __future__ import annotations

from alchemiser_portfolio.adapters.account import read_account_snapshot

__all__ = ["read_account_snapshot"]

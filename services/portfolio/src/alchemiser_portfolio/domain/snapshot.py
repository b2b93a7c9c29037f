"""A stable identifier of an account snapshot, for the plan event and for audits."""

from __future__ import annotations

import hashlib
import json

from alchemiser_portfolio.domain.decimals import canonical_decimal
from alchemiser_portfolio.domain.models import AccountSnapshot

__all__ = ["SNAPSHOT_ID_VERSION", "account_snapshot_id", "canonical_account_json"]

SNAPSHOT_ID_VERSION = "account-snapshot/v1"
"""Written into the hashed text, so a change of the canonical form changes every id."""


def canonical_account_json(account: AccountSnapshot) -> str:
    """The canonical text of a snapshot: compact JSON, sorted keys, canonical decimals.

    Equal snapshots give equal text whatever the mapping order or the decimals' exponents
    (``"100.00"`` and ``"100"`` are the same price). Zero-quantity positions are kept: they
    are part of what the broker reported.
    """
    document = {
        "version": SNAPSHOT_ID_VERSION,
        "cash": canonical_decimal(account.cash),
        "positions": {
            symbol: {
                "qty": canonical_decimal(position.qty),
                "price": None if position.price is None else canonical_decimal(position.price),
            }
            for symbol, position in account.positions.items()
        },
        "prices": {symbol: canonical_decimal(price) for symbol, price in account.prices.items()},
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def account_snapshot_id(account: AccountSnapshot) -> str:
    """The sha256 hex digest (64 lowercase characters) of :func:`canonical_account_json`."""
    return hashlib.sha256(canonical_account_json(account).encode("ascii")).hexdigest()

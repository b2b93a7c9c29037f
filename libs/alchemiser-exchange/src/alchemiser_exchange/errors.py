"""The exchange's refusals, each with the HTTP status and error code Alpaca answers with.

The core raises them; the HTTP layer turns one into ``{"code": ..., "message": ...}`` with its
status. Codes and messages follow what Alpaca's trading API answers (see ``docs/exchange.md``).
"""

from __future__ import annotations

__all__ = [
    "DUPLICATE_CLIENT_ORDER_ID",
    "AccountBlockedError",
    "DuplicateOrderError",
    "ExchangeError",
    "InsufficientFundsError",
    "InvalidOrderError",
    "NotAuthorizedError",
    "NotFoundError",
    "OrderNotCancelableError",
]

DUPLICATE_CLIENT_ORDER_ID = "client_order_id must be unique"
"""Alpaca's message for a reused ``client_order_id`` (HTTP 422, code 40010001)."""


class ExchangeError(Exception):
    """A request the exchange refuses: ``status`` and ``code`` as Alpaca answers."""

    status: int = 422
    code: int = 40010001

    @property
    def message(self) -> str:
        """The error body's message."""
        return str(self)


class InvalidOrderError(ExchangeError):
    """The request is malformed or breaks an order-entry rule (422)."""


class DuplicateOrderError(ExchangeError):
    """The ``client_order_id`` was used before by this account (422)."""

    def __init__(self, client_order_id: str) -> None:
        super().__init__(DUPLICATE_CLIENT_ORDER_ID)
        self.client_order_id = client_order_id


class InsufficientFundsError(ExchangeError):
    """Not enough buying power, or not enough shares to sell (403)."""

    status = 403
    code = 40310000


class AccountBlockedError(ExchangeError):
    """The account may not trade (403)."""

    status = 403
    code = 40310000


class OrderNotCancelableError(ExchangeError):
    """The order is final and can be neither canceled nor replaced (422)."""

    code = 42210000


class NotFoundError(ExchangeError):
    """No such order, position or asset (404)."""

    status = 404
    code = 40410000


class NotAuthorizedError(ExchangeError):
    """Missing or wrong API key and secret (401)."""

    status = 401
    code = 40110000

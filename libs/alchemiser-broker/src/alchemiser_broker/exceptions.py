"""Errors raised by broker adapters, classified by what the caller may do next.

* :class:`OrderRejectedError` — the broker definitely refused the order: do not retry it.
* :class:`BrokerUnavailableError` — transient (5xx, 429, timeout, reset): retry later.
* :class:`AmbiguousOrderOutcomeError` — a submit may or may not have reached the broker: look
  the order up by ``client_order_id`` before anything is sent again.
* :class:`BrokerAuthError` — credentials are wrong or lack permission: stop and alert.
"""

from __future__ import annotations

from alchemiser_common.errors import AlchemiserError, TransientError

__all__ = [
    "ACCOUNT_MISMATCH",
    "AmbiguousOrderOutcomeError",
    "BrokerAuthError",
    "BrokerError",
    "BrokerUnavailableError",
    "DuplicateClientOrderIdError",
    "MalformedResponseError",
    "OrderNotFoundError",
    "OrderRejectedError",
]


class BrokerError(AlchemiserError):
    """Root of the errors raised by broker adapters."""


class DuplicateClientOrderIdError(BrokerError):
    """The broker already holds an order with this ``client_order_id`` (Alpaca's 422)."""


class OrderRejectedError(BrokerError):
    """The broker definitely refused the request (e.g. insufficient buying power)."""


class OrderNotFoundError(BrokerError, LookupError):
    """The broker knows no order, position or asset under the given identifier."""


class MalformedResponseError(BrokerError):
    """The broker answered with a body that does not have the documented shape."""


class BrokerAuthError(BrokerError):
    """The broker refused the credentials (401, or a 403 that is not a business rejection)."""


class BrokerUnavailableError(BrokerError, TransientError):
    """The broker could not be reached or answered with a transient failure: retry later."""


class AmbiguousOrderOutcomeError(BrokerUnavailableError):
    """A submit's outcome is unknown; the caller must look the order up by client_order_id.

    ``client_order_id`` names the order to look up.
    """

    def __init__(self, client_order_id: str, message: str) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id


ACCOUNT_MISMATCH = "account_mismatch"
"""The reason of a workflow refused because its event names another account than the broker's
(the service's keys open a different account than the one the trigger asked for)."""

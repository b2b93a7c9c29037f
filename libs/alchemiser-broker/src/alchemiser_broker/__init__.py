"""The broker: its port, values and errors (imported here) and, in their own modules, the
Alpaca adapter (:mod:`.alpaca`), its trade-updates feed (:mod:`.stream`), the one settings
section (:mod:`.settings`) and the one factory (:mod:`.factory`).

Only the port, values and errors are imported here, so depending on them does not load
alpaca-py.
"""

from __future__ import annotations

from alchemiser_broker.exceptions import (
    ACCOUNT_MISMATCH,
    AmbiguousOrderOutcomeError,
    BrokerAuthError,
    BrokerError,
    BrokerUnavailableError,
    DuplicateClientOrderIdError,
    MalformedResponseError,
    OrderNotFoundError,
    OrderRejectedError,
)
from alchemiser_broker.models import (
    MAX_CLIENT_ORDER_ID_LENGTH,
    AccountState,
    AssetInfo,
    BrokerOrder,
    BrokerPosition,
    MarketClock,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Quote,
    TimeInForce,
)
from alchemiser_broker.port import BrokerPort

__all__ = [
    "ACCOUNT_MISMATCH",
    "MAX_CLIENT_ORDER_ID_LENGTH",
    "AccountState",
    "AmbiguousOrderOutcomeError",
    "AssetInfo",
    "BrokerAuthError",
    "BrokerError",
    "BrokerOrder",
    "BrokerPort",
    "BrokerPosition",
    "BrokerUnavailableError",
    "DuplicateClientOrderIdError",
    "MalformedResponseError",
    "MarketClock",
    "OrderNotFoundError",
    "OrderRejectedError",
    "OrderRequest",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Quote",
    "TimeInForce",
]

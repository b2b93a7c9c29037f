"""Broker port, values, errors and adapters (Alpaca and simulated)."""

from __future__ import annotations

from alchemiser_common.broker.exceptions import (
    AmbiguousOrderOutcomeError,
    BrokerAuthError,
    BrokerError,
    BrokerUnavailableError,
    DuplicateClientOrderIdError,
    MalformedResponseError,
    OrderNotFoundError,
    OrderRejectedError,
)
from alchemiser_common.broker.models import (
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
from alchemiser_common.broker.port import BrokerPort

__all__ = [
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

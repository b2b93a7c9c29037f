"""Settings of the simulated broker and the price source it reads.

The simulated broker trades at the closing prices of one *simulated date* taken from a
:class:`PriceSource` (in practice
:class:`~alchemiser_marketdata.dataset.DatasetMarketData`, which satisfies it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DatedPriceSource", "PriceSource", "SimulatedBrokerSettings"]


@runtime_checkable
class PriceSource(Protocol):
    """Where the simulated broker gets prices (a subset of ``MarketDataPort``)."""

    def close_on(self, symbol: str, day: date) -> Decimal | None:
        """The close of ``symbol``'s last bar at or before ``day``; ``None`` if there is none."""
        ...


@runtime_checkable
class DatedPriceSource(PriceSource, Protocol):
    """A price source that also lists its trading days (``DatasetMarketData`` does)."""

    def trading_days(self) -> Sequence[date]:
        """Every date with at least one bar, oldest first."""
        ...


class SimulatedBrokerSettings(BaseModel):
    """How the simulated broker behaves; one account per ``account_id`` in the database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str = Field(default="simulated", min_length=1, max_length=64)
    starting_cash: Decimal = Field(
        default=Decimal(100000), ge=0, description="Cash of the account on first use."
    )
    simulated_date: date | None = Field(
        default=None,
        description=(
            "The trading date whose closes are used (a weekend or holiday uses the last bar "
            "before it); None = the latest date in the dataset."
        ),
    )
    ignore_market_hours: bool = Field(
        default=False, description="Report the market open regardless of market_open."
    )
    market_open: bool = Field(
        default=True, description="What get_clock reports when market hours are not ignored."
    )
    partial_fill_ratio: Decimal | None = Field(
        default=None,
        gt=0,
        le=1,
        description=(
            "None fills orders fully; e.g. 0.5 fills half and leaves the order "
            "partially_filled (the rest never fills; cancel or replace it)."
        ),
    )
    non_fractionable: frozenset[str] = Field(
        default=frozenset(), description="Symbols whose assets report fractionable=False."
    )
    spread_bps: Decimal = Field(
        default=Decimal(2), ge=0, le=1000, description="Quoted bid/ask spread around the price."
    )
    quote_size: Decimal = Field(default=Decimal(100), gt=0, description="Quoted bid/ask size.")

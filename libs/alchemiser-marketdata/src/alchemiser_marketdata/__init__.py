"""Daily market data shared by the strategy service and the simulated broker.

* :class:`Bar`, :class:`PriceHistory` — values (Decimal prices; numpy views for indicators).
* :class:`MarketDataPort` — what a source offers: ``get_daily_bars`` and ``close_on``.
* :class:`DatasetMarketData` — a source over a directory of CSV/Parquet bar files.
* :func:`market_snapshot_id` — the identity of the bars a decision used.
* :func:`align_closes` — many histories on one date axis; :func:`lookback_start` — how far back.
"""

from __future__ import annotations

from alchemiser_marketdata.align import AlignedCloses, align_closes
from alchemiser_marketdata.dataset import METADATA_FILE, DatasetMarketData, read_metadata
from alchemiser_marketdata.exceptions import (
    InvalidDatasetError,
    MarketDataError,
    MarketDataRequestError,
    MarketDataUnavailableError,
)
from alchemiser_marketdata.lookback import lookback_bars, lookback_start, start_for_bars
from alchemiser_marketdata.models import Bar, PriceHistory, SymbolInfo
from alchemiser_marketdata.port import MarketDataPort
from alchemiser_marketdata.readers import BAR_COLUMNS, read_bar_file
from alchemiser_marketdata.snapshot import market_snapshot_id

__all__ = [
    "BAR_COLUMNS",
    "METADATA_FILE",
    "AlignedCloses",
    "Bar",
    "DatasetMarketData",
    "InvalidDatasetError",
    "MarketDataError",
    "MarketDataPort",
    "MarketDataRequestError",
    "MarketDataUnavailableError",
    "PriceHistory",
    "SymbolInfo",
    "align_closes",
    "lookback_bars",
    "lookback_start",
    "market_snapshot_id",
    "read_bar_file",
    "read_metadata",
    "start_for_bars",
]

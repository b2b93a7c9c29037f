"""Composition of the strategy service: strategy files, market data and one run per workflow.

:class:`SignalEngine` is what the handler (and the CLI) call: given an as-of date it fetches
every required symbol once with the lookback the largest window needs, evaluates every strategy
on one shared indicator cache over the symbols that have a bar on the evaluation date, and
consolidates. A file that needs a symbol without that bar fails alone (its reason is carried
in the signal) and the rest are renormalised; but when *every* file fails and some bars are
missing, the run raises :class:`MarketDataMissingError` naming them: missing data never turns
into an all-cash signal. :func:`build_engine` assembles it from :class:`StrategySettings` at
start-up and turns every problem into a ``ConfigurationError`` naming the setting or
``file:line:col``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import structlog

from alchemiser_common.events import WEIGHT
from alchemiser_marketdata import (
    DatasetMarketData,
    MarketDataError,
    MarketDataPort,
    PriceHistory,
    market_snapshot_id,
    start_for_bars,
)
from alchemiser_strategy.adapters.market_data import to_market_data
from alchemiser_strategy.domain import (
    ConsolidatedPortfolio,
    Strategy,
    StrategyError,
    WeightedStrategy,
    load_strategy,
    required_lookback,
    required_symbols,
    run_strategies,
)
from alchemiser_strategy.exceptions import MarketDataMissingError, StrategyConfigError
from alchemiser_strategy.settings import STRATEGY_FILE_SUFFIX

if TYPE_CHECKING:
    from alchemiser_strategy.settings import StrategySettings

__all__ = [
    "MARKET_TIMEZONE",
    "FileCheck",
    "LatestDay",
    "SignalEngine",
    "StrategyRun",
    "build_engine",
    "check_strategy_files",
    "load_strategy_file",
    "load_strategy_files",
    "strategy_id",
]

MARKET_TIMEZONE = ZoneInfo("America/New_York")
"""The exchange's calendar day decides which session "today" is."""

LatestDay = Callable[[datetime], date]
"""The latest date with data, given the current time (for a trigger without ``as_of``)."""

_log = structlog.get_logger("alchemiser.strategy")


def strategy_id(strategy: Strategy) -> str:
    """The name a strategy goes by in events: its file name without the ``.clj`` suffix."""
    return Path(strategy.file_name).stem


def load_strategy_file(path: Path, file_name: str | None = None) -> Strategy:
    """Read and compile one file; errors name ``file_name`` (default: the file's name).

    Raises ``StrategyError`` (rendered ``file:line:col: message``) or ``OSError``.
    """
    text = path.read_text(encoding="utf-8")
    return load_strategy(text, file_name if file_name is not None else path.name)


def load_strategy_files(
    files: Mapping[str, Path], weights: Mapping[str, Decimal]
) -> tuple[WeightedStrategy, ...]:
    """Compile every configured file once; a problem raises ``StrategyConfigError``.

    A syntax or compile error is reported as ``<path>:<line>:<col>: <message>``.
    """
    loaded: list[WeightedStrategy] = []
    for stem, path in files.items():
        if not path.is_file():
            raise StrategyConfigError(
                f"strategy file {path} not found (named in ALCHEMISER_STRATEGY__WEIGHTS; "
                "check ALCHEMISER_STRATEGY__STRATEGIES_DIR)"
            )
        try:
            strategy = load_strategy_file(path)
        except StrategyError as err:
            where = (
                path
                if err.position is None
                else f"{path}:{err.position.line}:{err.position.column}"
            )
            raise StrategyConfigError(f"{where}: {err.reason}") from err
        except (OSError, UnicodeDecodeError) as err:
            raise StrategyConfigError(f"strategy file {path} is not readable: {err}") from err
        loaded.append(WeightedStrategy(strategy, weights[stem]))
    return tuple(loaded)


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The outcome of compiling one file: its strategy, or the problem as one line."""

    path: Path
    strategy: Strategy | None = None
    problem: str | None = None


def check_strategy_files(directory: Path) -> tuple[FileCheck, ...]:
    """Compile every ``.clj`` file under ``directory`` (recursively, sorted) and report each.

    Unlike :func:`load_strategy_files` this never stops at the first problem: every file is
    compiled and every failure is returned as ``path:line:col: message``.
    """
    checks: list[FileCheck] = []
    for path in sorted(directory.rglob(f"*{STRATEGY_FILE_SUFFIX}")):
        try:
            checks.append(FileCheck(path, strategy=load_strategy_file(path, str(path))))
        except StrategyError as err:
            checks.append(FileCheck(path, problem=str(err)))
        except (OSError, UnicodeDecodeError) as err:
            checks.append(FileCheck(path, problem=f"{path}: not readable: {err}"))
    return tuple(checks)


@dataclass(frozen=True, slots=True)
class StrategyRun:
    """What one run decided: the as-of date, the data it saw and the consolidated portfolio."""

    as_of: date
    market_snapshot_id: str
    strategies: tuple[WeightedStrategy, ...]
    portfolio: ConsolidatedPortfolio


class SignalEngine:
    """Evaluates the loaded strategies for one as-of date (see the module docstring)."""

    def __init__(
        self,
        strategies: Sequence[WeightedStrategy],
        market_data: MarketDataPort,
        latest_day: LatestDay,
    ) -> None:
        if not strategies:
            raise StrategyConfigError("no strategy files configured (ALCHEMISER_STRATEGY__WEIGHTS)")
        self._strategies = tuple(strategies)
        self._market_data = market_data
        self._latest_day = latest_day
        self.symbols = required_symbols(item.strategy for item in self._strategies)
        self.lookback_bars = required_lookback(item.strategy for item in self._strategies)

    @property
    def strategies(self) -> tuple[WeightedStrategy, ...]:
        """The loaded strategies and their configured weights."""
        return self._strategies

    @property
    def market_data(self) -> MarketDataPort:
        """The market-data source every run reads."""
        return self._market_data

    def run(self, as_of: date | None, now: datetime) -> StrategyRun:
        """Evaluate every strategy at ``as_of`` (``None``: the latest date with data).

        Symbols without a bar on that date are left out of the market data, so only the files
        that need them fail. Raises :class:`MarketDataMissingError` when no symbol has a bar on
        that date, or when some bars are missing and every file failed; another
        ``MarketDataError`` when the source refuses; and lets a ``TransientError`` (source
        unreachable) through for the runtime to retry.
        """
        end = as_of if as_of is not None else self._latest_day(now)
        histories = self._market_data.get_daily_bars(
            self.symbols, start_for_bars(end, self.lookback_bars), end
        )
        day = self._evaluation_day(histories, as_of, end)
        present = {s: h for s, h in histories.items() if h.last_date == day}
        missing = [s for s in self.symbols if s not in present]
        market = to_market_data(present, until=day)
        portfolio = run_strategies(self._strategies, market, places=WEIGHT.scale)
        if missing and not any(outcome.succeeded for outcome in portfolio.outcomes):
            raise MarketDataMissingError(
                f"market data missing on {day.isoformat()} for {len(missing)} of "
                f"{len(self.symbols)} symbols: {', '.join(missing)}",
                details={"as_of": day.isoformat(), "missing": ",".join(missing)},
                symbols=missing,
            )
        return StrategyRun(
            as_of=day,
            market_snapshot_id=market_snapshot_id(histories, day),
            strategies=self._strategies,
            portfolio=portfolio,
        )

    def _evaluation_day(
        self, histories: Mapping[str, PriceHistory], as_of: date | None, end: date
    ) -> date:
        """The as-of date (or the newest bar's date) once at least one symbol has a bar on it."""
        if not histories:
            raise MarketDataMissingError(
                f"no market data up to {end.isoformat()} for any of the "
                f"{len(self.symbols)} required symbols",
                details={"as_of": end.isoformat(), "lookback_bars": str(self.lookback_bars)},
                symbols=self.symbols,
            )
        newest = max(history.last_date for history in histories.values())
        day = as_of if as_of is not None else newest
        missing = [s for s in self.symbols if s not in histories or histories[s].last_date != day]
        if len(missing) == len(self.symbols):
            raise MarketDataMissingError(
                f"no market data for {day.isoformat()}: not a session in the data "
                f"(newest bar on or before it: {newest.isoformat()})",
                details={"as_of": day.isoformat(), "newest_bar": newest.isoformat()},
                symbols=missing,
            )
        return day


def _dataset_latest_day(dataset: DatasetMarketData) -> LatestDay:
    def latest(_now: datetime) -> date:
        return dataset.trading_days()[-1]

    return latest


def _today_in_new_york(now: datetime) -> date:
    return now.astimezone(MARKET_TIMEZONE).date()


def _market_data(settings: StrategySettings) -> tuple[MarketDataPort, LatestDay]:
    section = settings.strategy
    if section.market_data_source == "alpaca":
        from alchemiser_strategy.adapters.alpaca_bars import AlpacaBarsMarketData

        return AlpacaBarsMarketData(section.alpaca_settings()), _today_in_new_york
    dataset = DatasetMarketData(section.dataset_dir)
    try:
        dataset.histories  # noqa: B018 -- load and validate now: bad data stops start-up
    except MarketDataError as err:
        raise StrategyConfigError(
            f"ALCHEMISER_STRATEGY__DATASET_DIR={section.dataset_dir}: {err}"
        ) from err
    return dataset, _dataset_latest_day(dataset)


def build_engine(settings: StrategySettings) -> SignalEngine:
    """Load the strategy files and open the market-data source; log what was loaded."""
    section = settings.strategy
    strategies = load_strategy_files(section.strategy_files(), section.weights)
    port, latest = _market_data(settings)
    engine = SignalEngine(strategies, port, latest)
    _log.info(
        "strategies loaded",
        strategies={strategy_id(item.strategy): str(item.weight) for item in strategies},
        symbols=len(engine.symbols),
        lookback_bars=engine.lookback_bars,
        market_data=section.market_data_source,
    )
    return engine

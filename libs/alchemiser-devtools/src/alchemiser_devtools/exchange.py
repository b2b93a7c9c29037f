"""Pytest fixture ``paper_exchange``: the real paper exchange in a thread, for adapter tests.

The exchange (:mod:`alchemiser_exchange`) runs on a free 127.0.0.1 port over a SQLite file and
a dataset written by :func:`write_dataset` — by default one session, :data:`SESSION`, whose
bars are flat at the prices the test chooses (:meth:`PaperExchange.set_prices`; a symbol
without a price is unknown to the exchange). Tests reach its account through the Alpaca adapter
built with :func:`adapter_settings` (optionally through a
:class:`~alchemiser_devtools.faults.FaultProxy`) and arrange or inspect state through the core
(:attr:`PaperExchange.exchange`, :attr:`PaperExchange.account`).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from alchemiser_broker.alpaca_settings import AlpacaSettings
from alchemiser_common.db import create_engine_from_url
from alchemiser_devtools.local import StartupFailedError, start_on_a_port, stop_process
from alchemiser_exchange import Exchange, ExchangeServer, TradingRules
from alchemiser_exchange.schema import OrderRecord
from alchemiser_marketdata import DatasetMarketData

__all__ = [
    "API_KEY",
    "SECRET_KEY",
    "SESSION",
    "BarSpec",
    "ExchangeProcess",
    "PaperExchange",
    "adapter_settings",
    "paper_exchange",
    "write_dataset",
]

API_KEY = "test-key-id"
SECRET_KEY = "test-secret-do-not-log"  # noqa: S105 - a test credential of a local exchange
SESSION = date(2025, 3, 14)
"""The one session of a :class:`PaperExchange` dataset (a Friday)."""

BarSpec = Decimal | str | tuple[Decimal | str, Decimal | str, Decimal | str, Decimal | str]
"""A close (a flat bar) or ``(open, high, low, close)``."""


def write_dataset(directory: Path, bars: Mapping[date, Mapping[str, BarSpec]]) -> Path:
    """Write ``{day: {symbol: bar}}`` as one CSV bar file in ``directory``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "bars.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "symbol", "open", "high", "low", "close", "volume"])
        for day in sorted(bars):
            for symbol, spec in sorted(bars[day].items()):
                ohlc = spec if isinstance(spec, tuple) else (spec, spec, spec, spec)
                writer.writerow([day.isoformat(), symbol, *(str(v) for v in ohlc), 1000])
    return directory


@dataclass
class PaperExchange:
    """A running exchange with one account (``API_KEY``), and helpers to arrange it.

    ``prices`` are the session's bars (SPY at 500 unless given); :meth:`set_prices` adds to
    them. The account is numbered ``account_number`` when given, else as the exchange numbers a
    key's account (:func:`~alchemiser_exchange.account_number_for`, the same in every test):
    give a fresh number where state outside the exchange (a service's database shared by a
    module's tests) is keyed by the account.
    """

    root: Path
    rules: TradingRules = field(default_factory=TradingRules)
    prices: dict[str, BarSpec] = field(default_factory=lambda: {"SPY": "500"})
    account_number: str | None = None
    exchange: Exchange = field(init=False)
    server: ExchangeServer = field(init=False)
    account: str = field(init=False)

    def __post_init__(self) -> None:
        self._engine = create_engine_from_url(f"sqlite:///{self.root / 'exchange.db'}")
        self._load()
        self.server = ExchangeServer(self.exchange).start()
        opened = self.exchange.open_account(API_KEY, SECRET_KEY, account_number=self.account_number)
        self.account = opened.account_number

    def _load(self) -> None:
        dataset = self._dataset()
        self.exchange = Exchange(self._engine, dataset, self.rules)
        self.exchange.migrate()

    def _dataset(self) -> DatasetMarketData:
        write_dataset(self.root / "dataset", {SESSION: self.prices or {"SPY": "500"}})
        return DatasetMarketData(self.root / "dataset")

    @property
    def url(self) -> str:
        """The REST (and market-data) base URL."""
        return self.server.url

    @property
    def stream_url(self) -> str:
        """The trade-updates WebSocket URL."""
        return self.server.stream_url

    def set_prices(self, prices: Mapping[str, BarSpec]) -> None:
        """Set the session's bars of ``prices``' symbols (the others are kept)."""
        self.prices.update(prices)
        self.exchange.use_dataset(self._dataset())

    def set_rules(self, **rules: Any) -> None:
        """Change trading rules (``partial_fill_ratio``, ``non_fractionable``, ...) now."""
        self.rules = self.rules.model_copy(update=rules)
        self.exchange.trading = self.rules

    def orders(self) -> list[OrderRecord]:
        """Every order of the account, newest first."""
        return self.exchange.orders(self.account, status="all", limit=500)

    def orders_for(self, client_order_id: str) -> list[OrderRecord]:
        """The account's orders placed under ``client_order_id`` (at most one: ids are unique)."""
        return [order for order in self.orders() if order.client_order_id == client_order_id]

    def stop(self) -> None:
        """Stop the server and release the database."""
        self.server.stop()
        self._engine.dispose()


def adapter_settings(url: str, **overrides: Any) -> AlpacaSettings:
    """Paper settings pointing the Alpaca adapter at ``url`` with test-friendly timing (a 2 s
    timeout: tests of timeouts set their own)."""
    values: dict[str, Any] = {
        "api_key": SecretStr(API_KEY),
        "secret_key": SecretStr(SECRET_KEY),
        "url_override": url,
        "data_url_override": url,
        "session_url": f"{url}/exchange/v1/session",
        "request_timeout_s": 2.0,
        "max_retries": 3,
        "retry_backoff_s": 0.0,
        "max_rate_limit_wait_s": 2.0,
    }
    values.update(overrides)
    return AlpacaSettings(**values)


@pytest.fixture
def paper_exchange(tmp_path: Path) -> Iterator[PaperExchange]:
    """A running :class:`PaperExchange` (session :data:`SESSION`, $100,000, SPY at 500)."""
    exchange = PaperExchange(tmp_path / "paper-exchange")
    try:
        yield exchange
    finally:
        exchange.stop()


class ExchangeProcess:
    """``python -m alchemiser_exchange serve`` as a child process that can be killed and
    started again on the same port (state in ``database_url``, so nothing is lost).

    ``env`` adds ``ALCHEMISER_EXCHANGE__*`` settings. :attr:`url` is the base URL.
    """

    def __init__(
        self,
        dataset_dir: Path,
        database_url: str,
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.dataset_dir = dataset_dir
        self.database_url = database_url
        self.log_dir = log_dir
        self.env = dict(env or {})
        self.port: int | None = None
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self.port is None:
            raise RuntimeError("the exchange process was never started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 30.0) -> ExchangeProcess:
        """Start (on the port of the previous start, if any) and wait until it answers.

        A no-op while it runs.
        """
        if self.running:
            return self

        def launch(port: int, log_path: Path) -> subprocess.Popen[bytes]:
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "alchemiser_exchange",
                        "serve",
                        "--dataset-dir",
                        str(self.dataset_dir),
                        "--database-url",
                        self.database_url,
                        "--port",
                        str(port),
                    ],
                    env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    if process.poll() is not None:
                        raise StartupFailedError(f"exited with {process.returncode}")
                    try:
                        if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                            return process
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.1)
                raise StartupFailedError(f"no answer within {timeout_s} s")
            except BaseException:  # not ready, or interrupted (a test's timeout): no orphan
                process.kill()
                process.wait(timeout=10)
                raise

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._process, self.port, self.log_path = start_on_a_port(
            launch,
            fixed_port=self.port,
            host="127.0.0.1",
            log_dir=self.log_dir,
            log_name="exchange",
            attempts=3,
            what="paper exchange",
        )
        return self

    def kill(self) -> None:
        """SIGKILL the process (nothing flushed, nothing said goodbye)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def stop(self) -> None:
        """SIGTERM and wait (a clean shutdown)."""
        stop_process(self._process)
        self._process = None

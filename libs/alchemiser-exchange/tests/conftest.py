"""Fixtures of the paper exchange's tests: a dataset, exchanges on SQLite and PostgreSQL, a server.

The tests run with ``--import-mode=importlib`` and cannot import helper modules, so every
shared piece is a fixture here:

* ``bars_dir``: the standard dataset (below) in a fresh directory; ``write_bars`` writes others.
* ``database_url``: parametrised over SQLite and (``integration``) PostgreSQL. The PostgreSQL
  database is shared by the module's tests, so tests open accounts under unique keys
  (``new_key``) and never count rows across accounts.
* ``make_exchange(**rules)``: a migrated :class:`Exchange` over ``database_url`` and the
  standard dataset, each on its own engine (like a second process); ``exchange`` is one.
* ``account``: an account opened under a unique key in ``exchange``, its session Friday
  2025-03-07.
* ``serve(exchange)``: an :class:`ExchangeServer` over ``exchange``, stopped after the test.
* ``module_server``: one server per module over SQLite and the standard dataset, default
  rules; tests share it by opening their own accounts (``new_key``), which never see each
  other's orders or positions.
* ``pristine_url``: an empty database of the test (SQLite, or a fresh PostgreSQL database),
  for tests that migrate step by step.

The standard dataset: Thursday 2025-03-06, Friday 2025-03-07 and Monday 2025-03-10 (the
weekend between; DST starts on Sunday 2025-03-09)::

    day         SPY (o/h/l/c)                QQQ       BRK (o/h/l/c)
    2025-03-06  499 / 501 / 498 / 500.00     -         249 / 251 / 248 / 249.00
    2025-03-07  500 / 512 / 499 / 510.25     400.10    249 / 251 / 248 / 250.00
    2025-03-10  510 / 511 / 504 / 505.00     -         -
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import Engine, make_url

from alchemiser_common.db import create_engine_from_url
from alchemiser_exchange import Exchange, ExchangeServer, TradingRules
from alchemiser_exchange.schema import AccountRecord
from alchemiser_marketdata import DatasetMarketData

STANDARD_BARS = """date,symbol,open,high,low,close,volume
2025-03-06,SPY,499,501,498,500.00,1000
2025-03-07,SPY,500,512,499,510.25,1000
2025-03-10,SPY,510,511,504,505.00,1000
2025-03-07,QQQ,400.10,400.10,400.10,400.10,1000
2025-03-06,BRK,249,251,248,249.00,1000
2025-03-07,BRK,249,251,248,250.00,1000
"""
FRIDAY = date(2025, 3, 7)

ExchangeFactory = Callable[..., Exchange]


@pytest.fixture
def write_bars(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write_bars(name, csv_text)``: a dataset directory holding one bar file."""

    def write(name: str, text: str) -> Path:
        directory = tmp_path / "datasets" / name
        directory.mkdir(parents=True)
        (directory / "bars.csv").write_text(text, encoding="utf-8")
        return directory

    return write


@pytest.fixture(scope="session")
def bars_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The standard dataset (see the module docstring; read-only, shared by every test)."""
    directory = tmp_path_factory.mktemp("standard-bars")
    (directory / "bars.csv").write_text(STANDARD_BARS, encoding="utf-8")
    return directory


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def database_url(request: pytest.FixtureRequest) -> str:
    """An SQLite file of this test, or the module's PostgreSQL database."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    """Engines to dispose of after the test."""
    created: list[Engine] = []
    yield created
    for engine in created:
        engine.dispose()


@pytest.fixture
def make_exchange(database_url: str, bars_dir: Path, engines: list[Engine]) -> ExchangeFactory:
    """``make_exchange(dataset_dir=None, **rules)``: a migrated exchange on its own engine."""

    def make(dataset_dir: Path | None = None, **rules: Any) -> Exchange:
        engine = create_engine_from_url(database_url)
        engines.append(engine)
        exchange = Exchange(
            engine, DatasetMarketData(dataset_dir or bars_dir), TradingRules(**rules)
        )
        exchange.migrate()
        return exchange

    return make


@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> Exchange:
    """An exchange with the default rules over the standard dataset."""
    return make_exchange()


@pytest.fixture
def new_key() -> Callable[[], str]:
    """A fresh API key id per call (the PostgreSQL database is shared by the module)."""
    return lambda: f"key-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def account(exchange: Exchange, new_key: Callable[[], str]) -> str:
    """The number of a fresh $100,000 account, its session Friday 2025-03-07."""
    record: AccountRecord = exchange.open_account(new_key(), "secret")
    exchange.set_session(record.account_number, FRIDAY)
    return record.account_number


@pytest.fixture
def serve() -> Iterator[Callable[..., ExchangeServer]]:
    """``serve(exchange, admin_token=None)``: a started server, stopped after the test."""
    started: list[ExchangeServer] = []

    def start(exchange: Exchange, **options: Any) -> ExchangeServer:
        server = ExchangeServer(exchange, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def module_server(
    tmp_path_factory: pytest.TempPathFactory, bars_dir: Path
) -> Iterator[ExchangeServer]:
    """A server over SQLite shared by the module's tests (each uses its own account)."""
    database = tmp_path_factory.mktemp("module-exchange") / "exchange.db"
    engine = create_engine_from_url(f"sqlite:///{database}")
    exchange = Exchange(engine, DatasetMarketData(bars_dir), TradingRules())
    exchange.migrate()
    server = ExchangeServer(exchange).start()
    try:
        yield server
    finally:
        server.stop()
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def pristine_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of this test: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pristine.sqlite'}"
        return
    server = make_url(request.getfixturevalue("postgres_server_url"))
    name = f"alchemiser_test_{uuid.uuid4().hex[:16]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

"""The whole trading system as separate, killable processes: what the end-to-end suite runs.

:class:`TradingSystem` starts, against a broker it is given (any: external Kafka,
testcontainers, the embedded tansu, a restartable tansu on S3):

* the schema registry (``python -m alchemiser_registry serve``, its data on disk) with every
  schema registered,
* the paper exchange (``python -m alchemiser_exchange serve``) on its own PostgreSQL database
  over a dataset, optionally reached through a :class:`~alchemiser_devtools.faults.FaultProxy`,
* strategy, portfolio and execution (``python -m alchemiser_<name>``), each on its own
  PostgreSQL database, trading the account of one API key pair.

Every process can be SIGKILLed (:meth:`TradingSystem.kill`) and started again
(:meth:`TradingSystem.start_process`) on the same port with the same settings; the registry,
the exchange and the services keep their state in their data directory and databases, so a
restart loses nothing. The test process reads the outcome from the topics
(:meth:`TradingSystem.events`) and the exchange's database (:meth:`TradingSystem.orders`),
never from logs::

    system = TradingSystem(bootstrap, workdir, databases, dataset_dir=DATASET).start()
    trigger = system.trigger(date(2018, 6, 15))
    system.kill("execution"); system.start_process("execution")
    outcome = system.wait_for_outcome(trigger)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from alchemiser_common.events import Event
from alchemiser_common.schemas import SchemaCatalog, find_schemas_dir
from alchemiser_common.schemas.register import register_all
from alchemiser_common.serde import EventSerde
from alchemiser_common.settings import KafkaSettings
from alchemiser_common.topics import ALL_TOPICS
from alchemiser_common.workflow import WorkflowOutcome, build_trigger, publish, wait_for_outcome
from alchemiser_devtools.exchange import ExchangeProcess
from alchemiser_devtools.faults import ALPACA_ROUTES, FaultProxy
from alchemiser_devtools.harness import read_topic
from alchemiser_devtools.registry import RegistryServerProcess
from alchemiser_exchange import Exchange, ExchangeSettings, account_number_for, build_exchange
from alchemiser_exchange.schema import OrderRecord

__all__ = ["SERVICES", "Record", "ServiceProcess", "TradingSystem"]

SERVICES = ("strategy", "portfolio", "execution")
#: Every process the system runs, in the order :meth:`TradingSystem.start` starts them.
PROCESSES = ("registry", "exchange", *SERVICES)
_STOP_S = 10.0
#: A process's start-up on a loaded 2-core machine (imports alone can take tens of seconds).
_START_S = 90.0
_MAX_ORDERS = 100_000


@dataclass
class ServiceProcess:
    """``python -m <module>`` with a fixed environment: killed and started again at will.

    Every start appends to the same log file, so a service's whole life is in one place.
    """

    name: str
    module: str
    env: dict[str, str]
    log_path: Path
    starts: int = 0
    _popen: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def pid(self) -> int | None:
        """The running process's id."""
        return self._popen.pid if self.alive and self._popen is not None else None

    def start(self) -> None:
        """Start the process (a no-op while it runs); readiness is the caller's concern."""
        if self.alive:
            return
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL (a crash: nothing flushed, nothing committed)."""
        if self._popen is not None and self._popen.poll() is None:
            self._popen.kill()
            self._popen.wait(timeout=_STOP_S)

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL if it did not stop in time."""
        if self._popen is None or self._popen.poll() is not None:
            return
        self._popen.send_signal(signal.SIGTERM)
        try:
            self._popen.wait(timeout=_STOP_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def exit_code(self) -> int | None:
        """The exit code of the last run (``None`` while running or never started)."""
        return None if self._popen is None else self._popen.poll()


@dataclass(frozen=True)
class Record:
    """One record read back from a topic: the decoded event (``None`` if it does not decode,
    e.g. a dead letter) with the raw value and headers."""

    topic: str
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    event: Any


@dataclass
class TradingSystem:
    """The registry, the paper exchange and the three services of one account, as processes.

    ``databases`` maps ``strategy``, ``portfolio``, ``execution`` and ``exchange`` to
    SQLAlchemy URLs of empty databases. ``api_key``/``secret_key`` name the account (the
    exchange opens it, with ``starting_cash``, on first use). ``fault_proxy`` puts a
    :class:`FaultProxy` between portfolio/execution and the exchange. ``service_env`` and
    ``exchange_env`` add settings (``ALCHEMISER_*``) to every service or to the exchange.
    ``prefix`` names the services (consumer groups, transactional ids).
    """

    bootstrap: str
    workdir: Path
    databases: Mapping[str, str]
    dataset_dir: Path
    api_key: str = "e2e-paper-key"
    secret_key: str = "e2e-paper-secret"  # noqa: S105 - a paper exchange's test identity
    fault_proxy: bool = False
    service_env: Mapping[str, str] = field(default_factory=dict)
    exchange_env: Mapping[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    fetch_wait_max_ms: int = 10

    registry: RegistryServerProcess = field(init=False)
    exchange: ExchangeProcess = field(init=False)
    proxy: FaultProxy | None = field(init=False, default=None)
    services: dict[str, ServiceProcess] = field(init=False, default_factory=dict)
    _book: Exchange | None = field(init=False, default=None)
    _serde: EventSerde | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.registry = RegistryServerProcess(self.workdir / "registry", startup_timeout=_START_S)
        self.exchange = ExchangeProcess(
            self.dataset_dir,
            self.databases["exchange"],
            self.workdir,
            env=dict(self.exchange_env),
        )

    # -- properties ------------------------------------------------------------------------
    @property
    def account(self) -> str:
        """The account number the services trade (the triggers' account)."""
        return account_number_for(self.api_key)

    @property
    def kafka(self) -> KafkaSettings:
        """Client settings for the system's broker."""
        return KafkaSettings(bootstrap_servers=self.bootstrap, fetch_wait_max_ms=10)

    @property
    def serde(self) -> EventSerde:
        """The registry-backed serde (made once; the registry's port never changes)."""
        if self._serde is None:
            self._serde = EventSerde.from_url(self.registry.url)
        return self._serde

    @property
    def book(self) -> Exchange:
        """The exchange's book, read from its database in this process (read only)."""
        if self._book is None:
            settings = ExchangeSettings(
                database_url=SecretStr(self.databases["exchange"]), dataset_dir=self.dataset_dir
            )
            self._book = build_exchange(settings)
        return self._book

    @property
    def exchange_url(self) -> str:
        """Where portfolio and execution reach the exchange (the proxy's URL with one)."""
        return self.proxy.url if self.proxy is not None else self.exchange.url

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> TradingSystem:
        """Start the registry, the exchange and the services; wait until the services consume.

        If any of it fails, what was started is stopped again (no orphan processes).
        """
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> TradingSystem:
        self.registry.start()
        register_all(self.registry.url, SchemaCatalog.discover())
        self.exchange.start(_START_S)
        if self.fault_proxy:
            self.proxy = FaultProxy(self.exchange.url, routes=ALPACA_ROUTES).start()
        httpx.get(  # opens the account (auto_open) before the first workflow reads it
            f"{self.exchange.url}/v2/account", headers=self._keys(), timeout=10
        ).raise_for_status()
        for name in SERVICES:
            self.services[name] = ServiceProcess(
                name=name,
                module=f"alchemiser_{name}",
                env=self._service_env(name),
                log_path=self.workdir / f"{name}.log",
            )
            self.services[name].start()
        self.wait_ready()
        return self

    def stop(self) -> None:
        """Stop everything this system started (services first)."""
        for service in self.services.values():
            service.stop()
        if self.proxy is not None:
            self.proxy.stop()
        self.exchange.stop()
        self.registry.stop()
        if self._book is not None:
            self._book.engine.dispose()
            self._book = None

    def __enter__(self) -> TradingSystem:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def kill(self, name: str) -> None:
        """SIGKILL one process: a service, ``exchange`` or ``registry``."""
        if name == "registry":
            self.registry.kill()
        elif name == "exchange":
            self.exchange.kill()
        else:
            self.services[name].kill()

    def start_process(self, name: str) -> None:
        """Start a killed process again (same port, same settings, same state)."""
        if name == "registry":
            if not self.registry.running:
                self.registry.start()
        elif name == "exchange":
            self.exchange.start(_START_S)
        else:
            self.services[name].start()

    def alive(self, name: str) -> bool:
        """Whether process ``name`` runs."""
        if name == "registry":
            return self.registry.running
        if name == "exchange":
            return self.exchange.running
        return self.services[name].alive

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Wait until every service has logged that it consumes (its ``running`` line)."""
        deadline = time.monotonic() + timeout_s
        for service in self.services.values():
            while b'"running"' not in service.log_path.read_bytes():
                if not service.alive:
                    raise AssertionError(f"{service.name} exited {service.exit_code()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{service.name} not consuming after {timeout_s} s")
                time.sleep(0.1)

    # -- workflows -------------------------------------------------------------------------
    def trigger(self, as_of: date, *, rerun: bool = True, requested_by: str = "e2e") -> Event:
        """Publish a workflow trigger for the account's session ``as_of``; the trigger."""
        event = build_trigger(self.account, requested_by=requested_by, as_of=as_of, rerun=rerun)
        publish(event, self.kafka, self.serde)
        return event

    def wait_for_outcome(self, trigger: Event, timeout_s: float = 120.0) -> WorkflowOutcome:
        """The workflow's completed or failed event (or its timeout)."""
        return wait_for_outcome(trigger.correlation_id, self.kafka, self.serde, timeout_s)

    def wait_until(
        self, predicate: Callable[[], bool], what: str, timeout_s: float = 120.0
    ) -> None:
        """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(0.2)

    def records(self, topic: str) -> list[Record]:
        """Every record on ``topic`` from the beginning to its end, decoded if it can be (a
        broker that honours transactions shows committed records only)."""
        return [self._record(topic, record) for record in read_topic(self.bootstrap, topic)]

    def events(self, topic: str) -> list[Any]:
        """The decoded events on ``topic`` (records that do not decode left out)."""
        return [r.event for r in self.records(topic) if r.event is not None]

    def _record(self, topic: str, record: Any) -> Record:
        value = record.value()
        try:
            event = self.serde.deserialize(topic, value) if value is not None else None
        except Exception:
            event = None
        return Record(
            topic=topic,
            offset=record.offset(),
            key=record.key(),
            value=value,
            headers={k: v for k, v in (record.headers() or []) if v is not None},
            event=event,
        )

    def orders(self) -> list[OrderRecord]:
        """Every order the exchange holds for the account, any status."""
        orders = self.book.orders(self.account, status="all", limit=_MAX_ORDERS)
        assert len(orders) < _MAX_ORDERS
        return list(orders)

    def committed(self, name: str) -> dict[str, int]:
        """Service ``name``'s committed offsets: topic -> offset (partition 0 of each topic
        the group has committed on; topics of one partition, as the system creates them)."""
        consumer = self._group_client(name)
        try:
            asked = [TopicPartition(topic, 0) for topic in ALL_TOPICS]
            found = consumer.committed(asked, timeout=10)
        finally:
            consumer.close()
        return {tp.topic: tp.offset for tp in found if tp.offset >= 0}

    def replay(self, name: str) -> dict[str, int]:
        """Move service ``name``'s committed offsets back to the beginning of every topic it
        consumes: a whole-topic replay. The service must be stopped (a running member would
        commit over it). Answers the offsets it committed before the reset."""
        before = self.committed(name)
        consumer = self._group_client(name)
        try:
            consumer.commit(
                offsets=[TopicPartition(topic, 0, 0) for topic in before], asynchronous=False
            )
        finally:
            consumer.close()
        return before

    def _group_client(self, name: str) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.service_name(name),
                "enable.auto.commit": False,
            }
        )

    def service_name(self, name: str) -> str:
        """The service's ``ALCHEMISER_SERVICE_NAME`` (its consumer group)."""
        return f"{name}-{self.prefix}"

    def logs(self) -> Iterator[tuple[str, Path]]:
        """Every log file the system wrote: (process, path)."""
        for service in self.services.values():
            yield service.name, service.log_path
        if self.exchange.log_path is not None:
            yield "exchange", self.exchange.log_path
        if self.registry.log_path is not None:
            yield "registry", self.registry.log_path

    # -- settings --------------------------------------------------------------------------
    def _keys(self) -> dict[str, str]:
        return {"APCA-API-KEY-ID": self.api_key, "APCA-API-SECRET-KEY": self.secret_key}

    def _service_env(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALCHEMISER_")}
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "ALCHEMISER_SERVICE_NAME": self.service_name(name),
                "ALCHEMISER_INSTANCE_ID": "0",
                "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
                "ALCHEMISER_KAFKA__FETCH_WAIT_MAX_MS": str(self.fetch_wait_max_ms),
                "ALCHEMISER_REGISTRY__URL": self.registry.url,
                "ALCHEMISER_DATABASE__URL": self.databases[name],
                "ALCHEMISER_OBSERVABILITY__METRICS_PORT": "0",
                "ALCHEMISER_RUNTIME__POLL_TIMEOUT_MS": "100",
                "ALCHEMISER_RUNTIME__BACKOFF_MAX_MS": "1000",
                "ALCHEMISER_SCHEMAS_DIR": str(find_schemas_dir()),
            }
        )
        if name == "strategy":
            env["ALCHEMISER_STRATEGY__DATASET_DIR"] = str(self.dataset_dir)
        else:
            env.update(
                {
                    "ALCHEMISER_BROKER__KIND": "exchange",
                    "ALCHEMISER_BROKER__EXCHANGE_URL": self.exchange_url,
                    "ALCHEMISER_ALPACA__API_KEY": self.api_key,
                    "ALCHEMISER_ALPACA__SECRET_KEY": self.secret_key,
                }
            )
        env.update(self.service_env)
        return env

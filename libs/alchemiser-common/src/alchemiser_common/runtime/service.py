"""Run one service process: settings, observability, database, Kafka, the loop, shutdown.

A service's ``__main__`` is one line: ``raise SystemExit(run_service(SERVICE))`` with the
service's :class:`~alchemiser_common.runtime.declaration.Service` declaration. Exit codes: 0
after a clean stop (SIGTERM/SIGINT), 1 on a fatal runtime error (fenced, fatal Kafka error), 2
on bad configuration.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import structlog
from confluent_kafka.schema_registry import SchemaRegistryClient

from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import AlchemiserError, ConfigurationError, TransientError
from alchemiser_common.inbox import InboxStore, inbox_store_for
from alchemiser_common.kafka.clients import KafkaAdmin, KafkaConsumer, KafkaProducer
from alchemiser_common.observability import (
    Metrics,
    ObservabilityServer,
    configure_logging,
    configure_tracing,
)
from alchemiser_common.runtime.declaration import EXIT_CONFIG, EXIT_OK, Service, ServiceContainer
from alchemiser_common.runtime.handlers import EventHandlerRegistry
from alchemiser_common.runtime.loop import (
    FatalRuntimeError,
    LoopConfig,
    ProcessingLoop,
    ProtocolStep,
)
from alchemiser_common.schemas import SchemaCatalog
from alchemiser_common.serde import EventSerde
from alchemiser_common.settings import CommonSettings, load_settings, masked

__all__ = ["EXIT_CONFIG", "EXIT_FATAL", "EXIT_OK", "run_service"]

SettingsT = TypeVar("SettingsT", bound=CommonSettings)

_log = structlog.get_logger("alchemiser.service")

EXIT_FATAL = 1

#: How long a stopping service waits for each background task to return.
_BACKGROUND_JOIN_S = 5.0


def _pause_hook(settings: CommonSettings) -> Callable[[ProtocolStep], None]:
    """The crash tests' hook: block forever at one protocol step, once, after saying so."""
    target = settings.runtime.pause_at
    if not target:
        return lambda step: None
    try:
        wanted = ProtocolStep(target)
    except ValueError as err:
        raise ConfigurationError(
            f"invalid setting ALCHEMISER_RUNTIME__PAUSE_AT: {target!r} is not one of "
            f"{[step.value for step in ProtocolStep]}"
        ) from err
    done = threading.Event()

    def pause(step: ProtocolStep) -> None:
        if step is not wanted or done.is_set():
            return
        done.set()
        _log.warning("pausing at protocol step (test hook)", step=step.value)
        if settings.runtime.pause_file:
            Path(settings.runtime.pause_file).write_text(step.value)
        threading.Event().wait()

    return pause


def run_service(service: Service[SettingsT]) -> int:
    """Run the declared service until SIGTERM/SIGINT; return the process exit code.

    ``ALCHEMISER_SERVICE_NAME`` (when set) replaces the declared name, e.g. for two stages of
    the runtime's own test pipeline.
    """
    try:
        settings = load_settings(service.settings)
    except ConfigurationError as err:
        print(f"{service.name}: configuration error: {err}", flush=True)
        return EXIT_CONFIG
    name = settings.service_name if settings.service_name != "alchemiser" else service.name
    obs = settings.observability
    configure_logging(obs.log_level, obs.log_format, name)
    _log.info("starting", service=name, config=masked(settings))
    try:
        return _run(name, settings, service)
    except ConfigurationError as err:
        _log.error("configuration error; not starting", error=str(err))
        return EXIT_CONFIG
    except FatalRuntimeError as err:
        _log.error("fatal runtime error; exiting to be restarted", error=str(err))
        return EXIT_FATAL


def _run(name: str, settings: SettingsT, service: Service[SettingsT]) -> int:
    obs = settings.observability
    configure_tracing(
        obs.otel_service_name or name,
        obs.otel_exporter,
        obs.otel_endpoint,
        instance_id=settings.instance_id,
    )
    metrics = Metrics(process_metrics=True)
    engine = create_engine_from_url(settings.database.url.get_secret_value(), application_name=name)
    inbox = inbox_store_for(engine)
    _with_backoff(inbox.migrate, "migrating the inbox", retry_on=TransientError)
    container = ServiceContainer(settings=settings, engine=engine, metrics=metrics)
    registry = EventHandlerRegistry()

    def register() -> None:
        registry.clear()
        service.register_handlers(container, registry)

    _with_backoff(register, "registering handlers", retry_on=TransientError)
    if not len(registry):
        raise ConfigurationError(f"{name} registered no handlers")
    tasks = [build(container) for build in service.background]
    topics = registry.topics()

    serde = EventSerde(
        SchemaRegistryClient(settings.registry.client_config()), SchemaCatalog.discover()
    )
    producer = KafkaProducer(
        settings.kafka,
        transactional_id=f"{name}-{settings.instance_id}",
        overrides={"transaction.timeout.ms": settings.runtime.transaction_timeout_ms},
    )
    consumer = KafkaConsumer(settings.kafka, group_id=name)
    running = threading.Event()
    loop = ProcessingLoop(
        config=LoopConfig(
            consumer_name=name,
            batch_size=settings.runtime.batch_size,
            poll_timeout_s=settings.runtime.poll_timeout_ms / 1000,
            handler_attempts=settings.runtime.handler_attempts,
            backoff_initial_s=settings.runtime.backoff_initial_ms / 1000,
            backoff_max_s=settings.runtime.backoff_max_ms / 1000,
        ),
        consumer=consumer,
        producer=producer,
        serde=serde,
        inbox=inbox,
        registry=registry,
        metrics=metrics,
        pause_at=_pause_hook(settings),
    )

    def on_assign(_consumer: Any, partitions: list[Any]) -> None:
        _log.info(
            "partitions assigned", partitions=[f"{p.topic}[{p.partition}]" for p in partitions]
        )

    def on_revoke(kafka_consumer: Any, partitions: list[Any]) -> None:
        loop.on_revoke(kafka_consumer, partitions)
        _log.info("partitions revoked", count=len(partitions))

    server = _probes(settings, metrics, inbox, loop, running)
    server.start()

    def work() -> None:
        with loop.progress.call("init_transactions"):
            _with_backoff(
                producer.init_transactions,
                "init_transactions",
                retry_on=Exception,
                attempts=_INIT_TRANSACTIONS_ATTEMPTS,
                stop=loop.stop_requested,
            )
        if loop.stopping:
            return
        _freeze_start_up_objects()
        consumer.subscribe(topics, on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
        running.set()
        _log.info("running", topics=topics, metrics_port=server.port)
        loop.run()

    # Kafka calls can block in librdkafka beyond their timeouts, and a Python signal handler
    # only runs on the main thread between bytecodes: so the loop runs on a worker thread and
    # the main thread stays free to take SIGTERM, ask the loop to stop and, if it does not
    # within the shutdown bound, end the process (the watchdog).
    _install_signal_handlers(loop, settings.runtime.shutdown_timeout_s)
    stop_tasks = _start_background(tasks)
    try:
        _run_on_worker(work)
    finally:
        stop_tasks()
        _log.info("stopping: leaving the consumer group")
        consumer.close()
        producer.close()
        server.stop()
        engine.dispose()
    _log.info("stopped cleanly")
    return EXIT_OK


def _start_background(tasks: list[Callable[[threading.Event], None]]) -> Callable[[], None]:
    """Start each background task on a daemon thread; return what stops and joins them."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=task, args=(stop,), name=f"background-{i}", daemon=True)
        for i, task in enumerate(tasks)
    ]
    for thread in threads:
        thread.start()

    def stop_all() -> None:
        stop.set()
        for thread in threads:
            thread.join(timeout=_BACKGROUND_JOIN_S)

    return stop_all


def _freeze_start_up_objects() -> None:
    """Move what start-up built (modules, models, schemas, clients) out of the collector's reach.

    It lives as long as the process. Each batch's objects survive the young generations (a
    batch holds them until its commit) and so keep triggering full collections, which walked
    the start-up heap every time (160,000 objects, about 100 ms, every few thousand events).
    Garbage is collected first, so nothing collectable is frozen.
    """
    gc.collect()
    gc.freeze()


def _probes(
    settings: CommonSettings,
    metrics: Metrics,
    inbox: InboxStore,
    loop: ProcessingLoop,
    running: threading.Event,
) -> ObservabilityServer:
    """The ``/metrics``, ``/healthz`` and ``/readyz`` server of the process (not started).

    Ready once transactions are initialised (the broker answered) and the consumer joined the
    loop, while the broker and the database answer; not "has partitions": a standby replica
    without partitions is healthy and ready to take over, and a rollout must not wait for a
    rebalance. Live while the loop makes progress (:class:`~.progress.LoopProgress`).
    """
    server = ObservabilityServer.from_settings(settings.observability, metrics.registry)
    admin = KafkaAdmin(settings.kafka)
    server.add_readiness_check("consuming", running.is_set)
    server.add_readiness_check("broker", lambda: _broker_answers(admin))
    server.add_readiness_check("database", lambda: _reachable(inbox))
    server.add_liveness_check("kafka-progress", loop.progress.check)
    return server


def _run_on_worker(work: Callable[[], None]) -> None:
    """Run ``work`` on a daemon thread; wait for it here, where signals are handled.

    An exception of ``work`` is raised again in the calling thread.
    """
    failures: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as err:
            failures.append(err)

    worker = threading.Thread(target=target, name="processing-loop", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(_JOIN_SLICE_S)
    if failures:
        raise failures[0]


def _broker_answers(admin: KafkaAdmin) -> bool:
    """Whether the cluster answers a metadata request within the readiness time box."""
    admin.list_topics(timeout=_BROKER_CHECK_TIMEOUT_S)
    return True


def _reachable(inbox: InboxStore) -> bool:
    try:
        inbox.ping()
    except AlchemiserError:
        return False
    return True


#: Start-up backoff: first wait and ceiling, in seconds.
_BACKOFF_INITIAL_S = 0.5
_BACKOFF_MAX_S = 10.0
#: init_transactions failures tolerated at start-up before the process exits to be restarted.
_INIT_TRANSACTIONS_ATTEMPTS = 10
#: How long the main thread waits on the worker at a time: signals are handled in between.
_JOIN_SLICE_S = 0.2
#: The broker readiness check's metadata request; below the readiness time box (2 s).
_BROKER_CHECK_TIMEOUT_S = 1.5


def _with_backoff(
    step: Callable[[], None],
    what: str,
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    attempts: int | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run a start-up step, retrying ``retry_on`` errors with exponential backoff.

    ``attempts=None`` never gives up (transient outages: Kubernetes' probes report the pod not
    ready meanwhile); otherwise the last failure raises :class:`FatalRuntimeError`. Any other
    error propagates and stops the process. A set ``stop`` ends the retries early.
    """
    delay = _BACKOFF_INITIAL_S
    attempt = 0
    while True:
        attempt += 1
        try:
            step()
            return
        except retry_on as err:
            if attempts is not None and attempt >= attempts:
                raise FatalRuntimeError(f"{what} failed {attempts} times: {err}") from err
            _log.warning(f"{what} failed; retrying", error=str(err), attempt=attempt, in_s=delay)
            if stop is not None and stop.wait(delay):
                return
            if stop is None:
                time.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX_S)


def _install_signal_handlers(loop: ProcessingLoop, timeout_s: float) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if loop.stopping:
            _log.warning("second signal; exiting now, the open transaction is abandoned")
            os._exit(EXIT_FATAL)
        _log.info(
            "signal received; finishing the current batch", signal=signal.Signals(signum).name
        )
        loop.stop()
        watchdog = threading.Timer(timeout_s, _give_up, args=(timeout_s,))
        watchdog.daemon = True
        watchdog.start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _give_up(timeout_s: float) -> None:
    _log.error("shutdown took longer than the bound; exiting", timeout_s=timeout_s)
    os._exit(EXIT_FATAL)

"""``WorkflowStarted`` -> ``SignalGenerated`` (or ``WorkflowFailed`` at the strategy step).

Error classes:

* ``TransientError`` (the market-data source is unreachable after its own retries): raised, so
  the runtime aborts, rewinds and retries the input later; never turned into a failure.
* Any other ``AlchemiserError`` (market data missing for the as-of date, a source that
  refuses the request, malformed data) and an event that does not validate: one
  ``WorkflowFailed`` with ``failure_step=strategy``, the message as ``reason``, and details.
* Some files failing is not a failure: they are dropped and the rest renormalised. Every file
  failing is: ``WorkflowFailed`` with each file's reason in ``details``, never an all-cash
  signal (which would sell the whole account because of an evaluation problem).
* Anything else is a bug: it propagates, the runtime retries and then dead-letters the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog
from pydantic import TypeAdapter, ValidationError

from alchemiser_common.errors import AlchemiserError, TransientError
from alchemiser_common.events import (
    Event,
    EventSource,
    FailureStep,
    SignalGenerated,
    Symbol,
    WorkflowFailed,
    WorkflowStarted,
)
from alchemiser_common.runtime.handlers import HandlerContext
from alchemiser_strategy.app import SignalEngine, StrategyRun
from alchemiser_strategy.exceptions import EveryStrategyFailedError, SignalUnavailableError
from alchemiser_strategy.signals import signal_payload

__all__ = ["SERVICE", "SignalHandler", "service_source"]

SERVICE = "strategy"

_SYMBOL: TypeAdapter[str] = TypeAdapter(Symbol)
_log = structlog.get_logger("alchemiser.strategy")


def service_source() -> EventSource:
    """``source`` of every event this service emits: name and installed package version."""
    return EventSource.of_package(SERVICE, "alchemiser-strategy")


class SignalHandler:
    """The runtime handler of ``WorkflowStarted`` (see the module docstring)."""

    def __init__(self, engine: SignalEngine, source: EventSource | None = None) -> None:
        self._engine = engine
        self._source = source or service_source()

    def __call__(self, event: WorkflowStarted, context: HandlerContext) -> Sequence[Event]:
        """Evaluate the strategies for ``event.as_of`` and emit the signal or the failure."""
        now = context.now()
        try:
            run = self._engine.run(event.as_of, now)
            _require_one_success(run)
            signal = SignalGenerated.caused_by(
                event,
                source=self._source,
                occurred_at=now,
                **signal_payload(run, event.correlation_id),
            )
        except TransientError:
            raise
        except (AlchemiserError, ValidationError) as err:
            return [self._failed(event, err, now)]
        self._log_run(run)
        return [signal]

    def _failed(
        self, event: WorkflowStarted, err: AlchemiserError | ValidationError, now: datetime
    ) -> WorkflowFailed:
        details = {
            "error_type": type(err).__name__,
            "as_of": event.as_of.isoformat() if event.as_of else "latest",
        }
        symbols: tuple[str, ...] = ()
        if isinstance(err, SignalUnavailableError):
            details.update(err.details)
            symbols = err.symbols
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        _log.warning(
            "no signal for this workflow; emitting WorkflowFailed", reason=reason, **details
        )
        return WorkflowFailed.caused_by(
            event,
            source=self._source,
            occurred_at=now,
            failure_step=FailureStep.STRATEGY,
            reason=reason,
            details=details,
            failed_symbols=[s for s in symbols if _valid_symbol(s)],
        )

    @staticmethod
    def _log_run(run: StrategyRun) -> None:
        portfolio = run.portfolio
        for name, error in portfolio.failures.items():
            _log.warning(
                "strategy failed; dropped and the rest renormalised", strategy=name, error=error
            )
        _log.info(
            "signal generated",
            as_of=run.as_of.isoformat(),
            all_cash=portfolio.all_cash,
            holdings={symbol: str(weight) for symbol, weight in portfolio.weights.items()},
        )


def _require_one_success(run: StrategyRun) -> None:
    """Raise :class:`EveryStrategyFailedError` when no strategy file could be evaluated."""
    failures = run.portfolio.failures
    if failures and len(failures) == len(run.strategies):
        first = next(iter(failures.values()))
        raise EveryStrategyFailedError(
            f"every strategy file failed ({len(failures)}); first: {first}",
            details={f"failed:{name}": error for name, error in failures.items()},
        )


def _valid_symbol(symbol: str) -> bool:
    try:
        _SYMBOL.validate_python(symbol)
    except ValidationError:
        return False
    return True

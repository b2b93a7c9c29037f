"""The strategy service's declaration: ``WorkflowStarted`` -> ``SignalGenerated``.

Importing this module is cheap (settings and event classes only); the strategy files and the
market data are loaded when the runtime calls :func:`build_signal_handler` at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alchemiser_common.events import WorkflowStarted
from alchemiser_common.runtime.declaration import Service, ServiceContainer
from alchemiser_strategy.settings import StrategySettings

if TYPE_CHECKING:
    from alchemiser_strategy.handlers import SignalHandler

__all__ = ["SERVICE", "build_signal_handler"]


def build_signal_handler(container: ServiceContainer[StrategySettings]) -> SignalHandler:
    """Load the strategy files and open the market data now; the ``WorkflowStarted`` handler.

    Raises ``ConfigurationError`` for a bad setting, a missing file, a strategy syntax error
    (``path:line:col: message``) or unreadable market data.
    """
    from alchemiser_strategy.app import build_engine
    from alchemiser_strategy.handlers import SignalHandler

    return SignalHandler(build_engine(container.settings))


SERVICE = Service(
    name="strategy",
    settings=StrategySettings,
    handlers={WorkflowStarted: build_signal_handler},
    description=(
        "Evaluates the configured .clj strategy files over daily bars for each workflow and "
        "emits the consolidated target (strategy.signal.generated.v1)."
    ),
)

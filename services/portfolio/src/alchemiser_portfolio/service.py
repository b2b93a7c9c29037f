"""The portfolio service's declaration: ``SignalGenerated`` -> ``RebalancePlanned``.

Importing this module is cheap (settings and event classes only); the broker is built when the
runtime calls the handler factory at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alchemiser_common.events import SignalGenerated
from alchemiser_common.runtime.declaration import Service, ServiceContainer
from alchemiser_portfolio.settings import PortfolioSettings

if TYPE_CHECKING:
    from alchemiser_portfolio.handlers import SignalGeneratedHandler

__all__ = ["SERVICE", "build_plan_handler"]


def build_plan_handler(container: ServiceContainer[PortfolioSettings]) -> SignalGeneratedHandler:
    """The ``SignalGenerated`` handler (see :func:`alchemiser_portfolio.app.build_plan_handler`)."""
    from alchemiser_portfolio.app import build_plan_handler as build

    return build(container)


SERVICE = Service(
    name="portfolio",
    settings=PortfolioSettings,
    handlers={SignalGenerated: build_plan_handler},
    description=(
        "Turns each consolidated target (strategy.signal.generated.v1) and the account's state "
        "into a rebalance plan (portfolio.rebalance.planned.v1)."
    ),
)

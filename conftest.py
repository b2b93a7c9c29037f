"""Root pytest configuration: the shared fixtures of ``alchemiser_devtools``, and the order in
which modules run."""

import pytest

pytest_plugins = [
    "alchemiser_devtools.broker",
    "alchemiser_devtools.registry",
    "alchemiser_devtools.database",
    "alchemiser_devtools.exchange",
    "alchemiser_devtools.processes",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the integration modules first, each module's tests in their own order.

    They are the long ones (child processes, brokers, stacks); started first, they are spread
    over the xdist workers and the quick unit modules fill in at the end, instead of a long
    module starting last and running alone.
    """
    integration = {
        item.path for item in items if item.get_closest_marker("integration") is not None
    }
    items.sort(key=lambda item: item.path not in integration)

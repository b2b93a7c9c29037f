"""Root pytest configuration: the shared fixtures of ``alchemiser_common.testing``."""

pytest_plugins = [
    "alchemiser_common.testing.broker",
    "alchemiser_common.testing.registry",
    "alchemiser_common.testing.database",
    "alchemiser_common.testing.fake_alpaca.fixtures",
    "alchemiser_common.testing.processes",
]

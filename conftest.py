"""Root pytest configuration: the shared fixtures of ``alchemiser_devtools``."""

pytest_plugins = [
    "alchemiser_devtools.broker",
    "alchemiser_devtools.registry",
    "alchemiser_devtools.database",
    "alchemiser_devtools.exchange",
    "alchemiser_devtools.processes",
]

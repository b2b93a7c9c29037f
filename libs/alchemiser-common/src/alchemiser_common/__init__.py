"""Shared contracts and runtime for the Alchemiser services.

Event models and their .avsc contracts, Avro serde, the Kafka runtime, the inbox store,
settings, observability and the ``alchemiser`` operator command. This package never imports
a service package.
"""

__all__: list[str] = []

"""Alembic migrations of the simulated broker's tables.

Version table ``alembic_version_simulated_broker``; run them with
:meth:`alchemiser_broker.simulated.SimulatedBroker.migrate` (no ``alembic.ini``).
"""

__all__: list[str] = []

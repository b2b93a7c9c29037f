"""Alchemiser ledger service: the trade ledger and P&L per account and per strategy file.

The service will consume ``strategy.signal.generated.v1`` (each strategy file's allocation
and its own target weights), ``execution.order.settled.v1`` (the fills) and the workflow
outcomes; it will attribute every fill to the strategy files behind it, keep each file's
positions at average cost, and report daily, month-to-date and since-inception P&L for the
account and for each file.

Only the pure domain exists so far (:mod:`alchemiser_ledger.domain`): no Kafka consumer, no
database and no entry point yet.
"""

__all__: list[str] = []

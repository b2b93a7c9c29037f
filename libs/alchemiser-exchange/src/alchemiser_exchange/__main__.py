"""``python -m alchemiser_exchange serve ...``: ``alchemiser exchange`` without the other groups.

Test fixtures and containers start the exchange with ``sys.executable -m alchemiser_exchange``.
"""

from __future__ import annotations

from alchemiser_exchange.cli import app

if __name__ == "__main__":
    app(prog_name="python -m alchemiser_exchange")

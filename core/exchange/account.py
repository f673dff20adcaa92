"""The account as the exchange holds it: every order it accepted and every balance.

For the sandbox this is its control plane's unfaulted view; for Kraken, what its API
lists. The safety invariants are judged against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.exchange.wire import ExchangeOrder


@dataclass(frozen=True)
class ExchangeTruth:
    orders: dict[str, ExchangeOrder]
    """txid -> order, every order the exchange accepted."""
    balances: dict[str, Decimal]

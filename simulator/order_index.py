"""The exchange's orders indexed by account and by liveness, and its trades by account
and time, so that what a request costs does not grow with the account's history:
holds, duplicate checks, cancels and the matching walk read the live orders only, and
a fill's fee tier reads the 30-day volume off running sums instead of every trade.

The index is derived from the orders in memory (ExchangeState.orders) and the trades
that can still count toward a fee tier, and rebuilt from them when the exchange is
built or reset; what a history keeps (simulator.history) is not indexed. An order is
live from when it is placed until it settles, and never live again, so the live sets
are pruned lazily: an order that settled is dropped the next time its set is read.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from simulator.models import Order, Trade
from simulator.pairs import PAIRS


@dataclass
class _Volumes:
    """One account's trades as times and running sums of their USD value, oldest first."""

    times: list[float] = field(default_factory=list)
    totals: list[Decimal] = field(default_factory=list)

    def add(self, time: float, usd_value: Decimal) -> None:
        at = bisect.bisect_right(self.times, time)  # the end, but for a trade stamped earlier than the last
        self.times.insert(at, time)
        before = self.totals[at - 1] if at else Decimal(0)
        self.totals.insert(at, before)
        for i in range(at, len(self.totals)):
            self.totals[i] += usd_value

    def after(self, since: float) -> Decimal:
        """The USD value of the trades later than `since`."""
        first = bisect.bisect_right(self.times, since)
        if first == len(self.times):
            return Decimal(0)
        return self.totals[-1] - (self.totals[first - 1] if first else Decimal(0))


class OrderIndex:
    def __init__(self, orders: Iterable[Order] = (), trades: Iterable[Trade] = ()) -> None:
        self._by_account: dict[str, list[Order]] = {}
        self._live_by_account: dict[str, dict[str, Order]] = {}
        """By account, by txid: every live order, and settled ones not yet pruned."""
        self._live: dict[str, Order] = {}
        """The same across accounts, in the order they were placed (the matching order)."""
        self._volumes: dict[str, _Volumes] = {}
        for order in orders:
            self.add(order)
        for trade in trades:
            self.add_trade(trade)

    def add(self, order: Order) -> None:
        self._by_account.setdefault(order.account, []).append(order)
        if order.is_live:
            self._live_by_account.setdefault(order.account, {})[order.txid] = order
            self._live[order.txid] = order

    def add_trade(self, trade: Trade) -> None:
        """Count the trade toward its account's fee-tier volume, unless its market does
        not count (stablecoin and FX markets)."""
        if PAIRS[trade.pair].counts_toward_volume:
            self._volumes.setdefault(trade.account, _Volumes()).add(trade.time, trade.usd_value)

    def usd_volume_after(self, account: str, since: float) -> Decimal:
        """The USD value the account traded later than `since` on markets that count."""
        volumes = self._volumes.get(account)
        return volumes.after(since) if volumes is not None else Decimal(0)

    def of(self, account: str) -> list[Order]:
        """Every order of the account, in the order they were placed."""
        return self._by_account.get(account, [])

    def live_of(self, account: str) -> list[Order]:
        """The account's live orders, in the order they were placed."""
        return _pruned(self._live_by_account.get(account))

    def keep_live_only(self) -> None:
        """Forget the settled orders (kept elsewhere now); the trades' volumes stay."""
        for account, orders in self._by_account.items():
            self._by_account[account] = [order for order in orders if order.is_live]

    def live(self) -> list[Order]:
        """Every live order, in the order they were placed."""
        return _pruned(self._live)


def _pruned(candidates: dict[str, Order] | None) -> list[Order]:
    """The live orders among `candidates`, dropping the settled ones from it."""
    if not candidates:
        return []
    for txid in [txid for txid, order in candidates.items() if not order.is_live]:
        del candidates[txid]
    return list(candidates.values())

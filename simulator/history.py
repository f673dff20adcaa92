"""The exchange's settled past: orders that settled, trades and ledger entries, which
never change again, kept outside memory so that opening an exchange with a long
history costs what its live orders and balances cost, not what its past does.

The exchange holds in memory its live orders and what it settled, traded and posted
since its state was last saved; a History answers for the rest, when a request asks
for it (a lookup by id, a page of closed orders, trades or ledger entries). The
embedded sandbox's state file is one (simulator.store); an exchange kept in memory
alone (served, or in a test) has none, NO_HISTORY. The queries are data, so that the
exchange's memory and a History answer them alike.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, Protocol

from simulator.models import LedgerEntry, LedgerType, Order, Trade

ClosedTime = Literal["open", "close", "both"]


def _within(t: float | None, start: float | None, end: float | None) -> bool:
    """Kraken's windows: `start` exclusive, `end` inclusive."""
    return t is not None and (start is None or t > start) and (end is None or t <= end)


@dataclass(frozen=True)
class ClosedQuery:
    """Which settled orders ClosedOrders lists: those of a userref or client order id,
    opened or closed (`closetime`) in a window."""

    userref: int | None = None
    cl_ord_id: str | None = None
    start: float | None = None
    end: float | None = None
    closetime: ClosedTime = "both"

    def matches(self, order: Order) -> bool:
        if self.userref is not None and order.spec.userref != self.userref:
            return False
        if self.cl_ord_id is not None and order.spec.cl_ord_id != self.cl_ord_id:
            return False
        if self.start is None and self.end is None:
            return True
        times = {"open": (order.opentm,), "close": (order.closetm,), "both": (order.opentm, order.closetm)}
        return any(_within(t, self.start, self.end) for t in times[self.closetime])


def closed_time(order: Order) -> float:
    """What ClosedOrders lists the newest first by: the close time, or the open time."""
    return order.closetm or order.opentm


def closed_rank(order: Order) -> tuple[float, int]:
    """ClosedOrders' order, smallest first: the newest first, ties in the order they
    were placed (an order's serial grows with each placement)."""
    return -closed_time(order), order.serial


@dataclass(frozen=True)
class TradeQuery:
    """Which trades TradesHistory lists: those in a window."""

    start: float | None = None
    end: float | None = None

    def matches(self, trade: Trade) -> bool:
        return (self.start is None and self.end is None) or _within(trade.time, self.start, self.end)


def trade_key(trade: Trade) -> tuple[float, int]:
    """TradesHistory lists the newest first."""
    return trade.time, trade.serial


@dataclass(frozen=True)
class LedgerQuery:
    """Which entries Ledgers lists: all of an account's, or those of some assets or
    one type, in a time window (start exclusive, end inclusive)."""

    assets: Collection[str] | None = None
    type: LedgerType | None = None
    start: float | None = None
    end: float | None = None
    offset: int = 0

    def matches(self, entry: LedgerEntry) -> bool:
        return (
            (self.assets is None or entry.asset in self.assets)
            and (self.type is None or entry.type is self.type)
            and ((self.start is None and self.end is None) or _within(entry.time, self.start, self.end))
        )


class History(Protocol):
    """The settled past of an exchange's accounts. Pages are the newest `limit` that
    match (ties in the order they were placed or posted), with how many match in all."""

    def order(self, txid: str) -> Order | None: ...
    def trade(self, trade_id: str) -> Trade | None: ...
    def ledger_entry(self, ledger_id: str) -> LedgerEntry | None: ...

    def orders_of(self, account: str) -> list[Order]:
        """Every order of the account kept here, in the order they were placed (those
        still live as they were when kept: the exchange's own copies supersede them)."""

    def closed_orders(self, account: str, query: ClosedQuery, limit: int) -> tuple[list[Order], int]:
        """Settled orders in closed_rank's order."""

    def trades(self, account: str, query: TradeQuery, limit: int) -> tuple[list[Trade], int]:
        """Trades, newest first by trade_key."""

    def ledger(self, account: str, query: LedgerQuery, limit: int) -> tuple[list[LedgerEntry], int]:
        """Entries, the last posted first."""

    def trades_after(self, since: float) -> list[Trade]:
        """Every account's trades later than `since`, oldest first (fee tiers count them)."""


class _NoHistory:
    """An exchange whose whole past is in memory."""

    def order(self, txid: str) -> Order | None:
        return None

    def trade(self, trade_id: str) -> Trade | None:
        return None

    def ledger_entry(self, ledger_id: str) -> LedgerEntry | None:
        return None

    def orders_of(self, account: str) -> list[Order]:
        return []

    def closed_orders(self, account: str, query: ClosedQuery, limit: int) -> tuple[list[Order], int]:
        return [], 0

    def trades(self, account: str, query: TradeQuery, limit: int) -> tuple[list[Trade], int]:
        return [], 0

    def ledger(self, account: str, query: LedgerQuery, limit: int) -> tuple[list[LedgerEntry], int]:
        return [], 0

    def trades_after(self, since: float) -> list[Trade]:
        return []


NO_HISTORY: History = _NoHistory()

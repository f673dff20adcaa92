"""The exchange's orders indexed by account and by liveness, and its trades by account
and time, so that what a request costs does not grow with the account's history:
duplicate checks, cancels and the matching walk read the live orders only, holds
and a fill's fee tier are read off running sums instead of every order and trade.

The index is derived from the orders in memory (ExchangeState.orders) and the trades
that can still count toward a fee tier, and rebuilt from them when the exchange is
built or reset; what a history keeps (simulator.history) is not indexed. An order is
live from when it is placed until it settles, and never live again, so the live sets
are pruned lazily: an order that settled is dropped the next time its set is read.

The matching walk splits the live orders in two: plain resting limits (no start or
expiry time) only act when the market trades through their price, so each pair's are
kept apart (`RestingLimits`) with a bound on their best price, and a stretch of market
that does not reach the bound passes them without looking at one; every other live
order (triggers, market orders, timed ones) is walked as it is.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from simulator.models import Order, OrderType, Side, Trade
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


@dataclass
class RestingLimits:
    """One pair's plain resting limit orders (by txid), with bounds the market must
    reach before any of them fills: `buy_bound` is at least the highest buy limit,
    `sell_bound` at most the lowest sell limit. An order that settles leaves the bounds
    as they were, still bounds, until the next walk."""

    orders: dict[str, Order] = field(default_factory=dict)
    buy_bound: Decimal | None = None
    sell_bound: Decimal | None = None

    def add(self, order: Order) -> None:
        self.orders[order.txid] = order
        self.widen(order)

    def widen(self, order: Order) -> None:
        """Take in `order`'s limit, placed or amended."""
        limit = order.spec.price
        assert limit is not None, "a limit order has a price"
        if order.spec.side is Side.BUY:
            self.buy_bound = limit if self.buy_bound is None else max(self.buy_bound, limit)
        else:
            self.sell_bound = limit if self.sell_bound is None else min(self.sell_bound, limit)

    def reached(self, low: Decimal, high: Decimal, placed: dict[str, int]) -> list[Order]:
        """The live orders a market trading between `low` and `high` fills (its low at
        or below a buy's limit, its high at or above a sell's), in the order placed;
        the settled ones leave `placed` too."""
        if (self.buy_bound is None or low > self.buy_bound) and (self.sell_bound is None or high < self.sell_bound):
            return []
        self.buy_bound = self.sell_bound = None
        reached = []
        for order in _pruned(self.orders, placed):
            self.widen(order)
            limit = order.spec.price
            assert limit is not None
            if (low <= limit) if order.spec.side is Side.BUY else (high >= limit):
                reached.append(order)
        return reached


@dataclass
class _Holds:
    """What one account's live orders hold of one asset, and how many hold some."""

    total: Decimal = Decimal(0)
    orders: int = 0


class OrderIndex:
    def __init__(self, orders: Iterable[Order] = (), trades: Iterable[Trade] = ()) -> None:
        self._by_account: dict[str, list[Order]] = {}
        self._live_by_account: dict[str, dict[str, Order]] = {}
        """By account, by txid: every live order, and settled ones not yet pruned."""
        self._active: dict[str, Order] = {}
        """Across accounts, in the order they were placed: the live orders but the plain
        resting limits."""
        self.resting: dict[str, RestingLimits] = {}
        """By pair: the plain resting limits, which act only once the market reaches them."""
        self._placed: dict[str, int] = {}
        """Each live order's place in the order of placing (the matching order)."""
        self._placings = itertools.count()
        self._holds: dict[tuple[str, str], _Holds] = {}
        """By account and asset: the running sum of what the live orders hold."""
        self._hold_of: dict[str, tuple[str, Decimal]] = {}
        """By txid: the asset and amount each live order holding funds holds."""
        self._volumes: dict[str, _Volumes] = {}
        for order in orders:
            self.add(order)
        for trade in trades:
            self.add_trade(trade)

    def add(self, order: Order) -> None:
        self._by_account.setdefault(order.account, []).append(order)
        if order.is_live:
            self._live_by_account.setdefault(order.account, {})[order.txid] = order
            self._placed[order.txid] = next(self._placings)
            if _plain_limit(order):
                self.resting.setdefault(order.spec.pair, RestingLimits()).add(order)
            else:
                self._active[order.txid] = order
            self.refresh(order)

    def refresh(self, order: Order) -> None:
        """Count what `order` holds now: the exchange calls it whenever an order's
        volume, trigger, terms or liveness change."""
        before = self._hold_of.pop(order.txid, None)
        if before is not None:
            key = (order.account, before[0])
            holds = self._holds[key]
            holds.orders -= 1
            if holds.orders:
                holds.total -= before[1]
            else:
                del self._holds[key]
        now = hold(order)
        if now is not None:
            self._hold_of[order.txid] = now
            holds = self._holds.setdefault((order.account, now[0]), _Holds())
            holds.total += now[1]
            holds.orders += 1

    def held(self, account: str, asset: str, excluding: Order | None = None) -> Decimal:
        """What the account's live orders (but `excluding`) hold of `asset`."""
        holds = self._holds.get((account, asset))
        if holds is None:
            return Decimal(0)
        own = self._hold_of.get(excluding.txid) if excluding is not None else None
        return holds.total - own[1] if own is not None and own[0] == asset else holds.total

    def repriced(self, order: Order) -> None:
        """`order`'s terms were amended: a plain limit's new price may fill sooner."""
        resting = self.resting.get(order.spec.pair)
        if resting is not None and order.txid in resting.orders:
            resting.widen(order)
        self.refresh(order)

    def settled(self, order: Order) -> None:
        """`order` stopped being live: a resting limit leaves its pair's book at once, so
        that a pair whose orders all settled costs the walk nothing."""
        resting = self.resting.get(order.spec.pair)
        if resting is not None and resting.orders.pop(order.txid, None) is not None:
            del self._placed[order.txid]
        self.refresh(order)

    def placed(self, order: Order) -> int:
        """Where a live order stands in the order of placing."""
        return self._placed[order.txid]

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

    def keep_live_only(self) -> None:
        """Forget the settled orders (kept elsewhere now); the trades' volumes stay."""
        for account, orders in self._by_account.items():
            self._by_account[account] = [order for order in orders if order.is_live]

    def live_of(self, account: str) -> list[Order]:
        """The account's live orders, in the order they were placed."""
        return _pruned(self._live_by_account.get(account))

    def active(self) -> list[Order]:
        """The live orders but the plain resting limits, in the order they were placed."""
        return _pruned(self._active, self._placed)

    def reached(self, pair: str, low: Decimal, high: Decimal) -> list[Order]:
        """The pair's plain resting limits a market between `low` and `high` fills."""
        resting = self.resting.get(pair)
        return resting.reached(low, high, self._placed) if resting is not None else []

    def has_resting(self) -> bool:
        return any(resting.orders for resting in self.resting.values())


def hold(order: Order) -> tuple[str, Decimal] | None:
    """What a live order holds of its account's funds while it rests: a buy its volume
    left at its limit plus the highest taker fee, in the quote asset; a sell its volume
    left, in the base asset. Untriggered stops and market orders hold nothing."""
    limit = order.resting_limit
    if limit is None:
        return None
    pair = PAIRS[order.spec.pair]
    if order.spec.side is Side.BUY:
        return pair.quote, order.remaining * limit * (1 + pair.highest_taker_fee)
    return pair.base, order.remaining


def _plain_limit(order: Order) -> bool:
    """A limit order without a start or an expiry time: it acts only as the market
    reaches its price (a start or an expiry is a timer the walk must see)."""
    spec = order.spec
    return spec.ordertype is OrderType.LIMIT and spec.starttm is None and spec.expiretm is None


def _pruned(candidates: dict[str, Order] | None, placed: dict[str, int] | None = None) -> list[Order]:
    """The live orders among `candidates`, dropping the settled ones from it (and from
    `placed`)."""
    if not candidates:
        return []
    for txid in [txid for txid, order in candidates.items() if not order.is_live]:
        del candidates[txid]
        if placed is not None:
            del placed[txid]
    return list(candidates.values())

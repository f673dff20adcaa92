"""Kraken's rate limits, counted the way Kraken documents them rather than as a plain
token bucket (docs.kraken.com, "Spot REST Rate Limits" and "Spot Trading Limits"):

- REST call counter, one per API key: +1 per private call, +2 per ledger or trade
  history call; the trading calls (AddOrder, CancelOrder, AmendOrder, EditOrder,
  CancelAll and their batches) are not counted there. Starter may reach 15 and decays
  0.33 per second, intermediate 20 and 0.5, pro 20 and 1. A call that would take the
  counter past its maximum is refused "EAPI:Rate limit exceeded" and adds nothing.
- Trading counter, one per account and pair: a fixed count per transaction (+1 per
  add, amend or edit) plus a penalty by the age of the order touched (seconds since
  it was placed): a cancel within 5 s costs 8, within 10 s 6, 15 s 5, 45 s 4, 90 s 2,
  300 s 1. Thresholds 60 / 125 / 180, decay 1 / 2.34 / 3.75 per second. A transaction
  that would take the counter past its threshold is refused "EOrder:Rate limit
  exceeded"; one admitted keeps its fixed count even if the order is then refused.
- Open orders per pair and account: starter 60, intermediate 80, pro 225; one more is
  refused "EOrder:Orders limit exceeded".
- Public calls: Kraken limits them per IP address without publishing the figures. The
  sandbox counts them per client address, +1 per call, refusing past 20 and decaying
  1 per second (a burst of 20, then one a second): "EGeneral:Too many requests".

Counters decay continuously on the exchange's monotonic clock (Kraken decays the REST
counter "every couple of seconds"; continuous decay is the documented average). The
sandbox does not prolong a lockout when refused calls keep coming.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from simulator.exceptions import (
    ApiRateLimitExceeded,
    KrakenError,
    OrderRateLimitExceeded,
    OrdersLimitExceeded,
    TooManyRequests,
)
from simulator.exchange import Exchange
from simulator.models import Order, as_userref
from simulator.pairs import find_pair


class Tier(StrEnum):
    STARTER = "starter"
    INTERMEDIATE = "intermediate"
    PRO = "pro"


@dataclass(frozen=True)
class CounterLimit:
    maximum: float
    decay_per_s: float


REST_COUNTER = {
    Tier.STARTER: CounterLimit(15, 0.33),
    Tier.INTERMEDIATE: CounterLimit(20, 0.5),
    Tier.PRO: CounterLimit(20, 1.0),
}
TRADING_COUNTER = {
    Tier.STARTER: CounterLimit(60, 1.0),
    Tier.INTERMEDIATE: CounterLimit(125, 2.34),
    Tier.PRO: CounterLimit(180, 3.75),
}
OPEN_ORDERS_PER_PAIR = {Tier.STARTER: 60, Tier.INTERMEDIATE: 80, Tier.PRO: 225}
PUBLIC_COUNTER = CounterLimit(20, 1.0)

HISTORY_METHODS = frozenset({"ClosedOrders", "QueryTrades", "TradesHistory", "Ledgers", "QueryLedgers"})
TRADING_METHODS = frozenset(
    {"AddOrder", "AddOrderBatch", "AmendOrder", "EditOrder", "CancelOrder", "CancelOrderBatch", "CancelAll"}
)

_AGE_BRACKETS = (5.0, 10.0, 15.0, 45.0, 90.0, 300.0)
"""Upper bounds (exclusive) of the order-age brackets of Kraken's penalty table."""
_PENALTIES = {
    "add": (1, (0, 0, 0, 0, 0, 0)),
    "amend": (1, (3, 2, 1, 0, 0, 0)),
    "edit": (1, (6, 5, 4, 2, 1, 0)),
    "cancel": (0, (8, 6, 5, 4, 2, 1)),
}


def transaction_cost(action: str, order_age: float = 0.0) -> int:
    """What an add, amend, edit or cancel adds to its pair's trading counter."""
    fixed, penalties = _PENALTIES[action]
    for bound, penalty in zip(_AGE_BRACKETS, penalties, strict=True):
        if order_age < bound:
            return fixed + penalty
    return fixed


def rest_cost(method: str) -> int:
    """What a private call adds to its key's REST counter (0: it is not counted there)."""
    if method in TRADING_METHODS:
        return 0
    return 2 if method in HISTORY_METHODS else 1


@dataclass
class DecayingCounter:
    limit: CounterLimit
    value: float = 0.0
    updated: float = 0.0

    def level(self, now: float) -> float:
        return max(0.0, self.value - self.limit.decay_per_s * max(0.0, now - self.updated))

    def admits(self, cost: float, now: float) -> bool:
        return self.level(now) + cost <= self.limit.maximum

    def add(self, cost: float, now: float) -> None:
        self.value = self.level(now) + cost
        self.updated = now


@dataclass
class RateLimits:
    """The counters of one exchange at one tier. `now` is the exchange clock's
    monotonic reading."""

    tier: Tier = Tier.STARTER
    rest: dict[str, DecayingCounter] = field(default_factory=dict)
    """By API key."""
    trading: dict[tuple[str, str], DecayingCounter] = field(default_factory=dict)
    """By (account, pair key)."""
    public: dict[str, DecayingCounter] = field(default_factory=dict)
    """By client address."""
    refused: int = 0
    """Calls refused for a rate limit since the last reset: what a client's pacing is judged by."""

    def charge_public(self, client: str, now: float) -> None:
        counter = self.public.setdefault(client, DecayingCounter(PUBLIC_COUNTER, updated=now))
        if not counter.admits(1, now):
            self.refused += 1
            raise TooManyRequests()
        counter.add(1, now)

    def charge_rest(self, api_key: str, method: str, now: float) -> None:
        cost = rest_cost(method)
        if cost == 0:
            return
        counter = self.rest.setdefault(api_key, DecayingCounter(REST_COUNTER[self.tier], updated=now))
        if not counter.admits(cost, now):
            self.refused += 1
            raise ApiRateLimitExceeded()
        counter.add(cost, now)

    def charge_trading(self, account: str, costs: dict[str, int], now: float) -> None:
        """Charge each pair its cost, or none of them if one would pass its threshold."""
        counters = {
            pair: self.trading.setdefault((account, pair), DecayingCounter(TRADING_COUNTER[self.tier], updated=now))
            for pair in costs
        }
        if not all(counters[pair].admits(cost, now) for pair, cost in costs.items()):
            self.refused += 1
            raise OrderRateLimitExceeded()
        for pair, cost in costs.items():
            counters[pair].add(cost, now)

    def check_open_orders(self, open_in_pair: int) -> None:
        if open_in_pair >= OPEN_ORDERS_PER_PAIR[self.tier]:
            raise OrdersLimitExceeded()

    def reset(self) -> None:
        self.rest.clear()
        self.trading.clear()
        self.public.clear()
        self.refused = 0

    def snapshot(self, now: float) -> dict[str, object]:
        """The counters' levels now, for the control plane (keys shortened: they are
        identifiers, not secrets, but long)."""
        return {
            "tier": self.tier.value,
            "refused": self.refused,
            "rest": {key[:8]: round(c.level(now), 4) for key, c in self.rest.items()},
            "trading": {f"{account}:{pair}": round(c.level(now), 4) for (account, pair), c in self.trading.items()},
            "public": {client: round(c.level(now), 4) for client, c in self.public.items()},
            "limits": {
                "rest": REST_COUNTER[self.tier].maximum,
                "trading": TRADING_COUNTER[self.tier].maximum,
                "open_orders_per_pair": OPEN_ORDERS_PER_PAIR[self.tier],
                "public": PUBLIC_COUNTER.maximum,
            },
        }


def trading_costs(exchange: Exchange, account: str, method: str, params: Mapping[str, object]) -> dict[str, int]:
    """What a trading call adds to each pair's counter, by pair key. A call naming no
    known pair or order costs nothing here: its handler will refuse it."""
    if method in ("AddOrder", "AddOrderBatch"):
        pair = _pair_key(params.get("pair"))
        count = _batch_size(params) if method == "AddOrderBatch" else 1
        return {} if pair is None else {pair: count * transaction_cost("add")}
    action = {"AmendOrder": "amend", "EditOrder": "edit"}.get(method, "cancel")
    costs: dict[str, int] = {}
    for order in _touched(exchange, account, method, params):
        cost = transaction_cost(action, exchange.now() - order.opentm)
        costs[order.spec.pair] = costs.get(order.spec.pair, 0) + cost
    return costs


def open_in_pair(exchange: Exchange, account: str, params: Mapping[str, object]) -> int | None:
    """How many orders the account has open in the AddOrder's pair (None: no such pair)."""
    pair = _pair_key(params.get("pair"))
    if pair is None:
        return None
    return sum(1 for order in exchange.open_orders(account) if order.spec.pair == pair)


def _touched(exchange: Exchange, account: str, method: str, params: Mapping[str, object]) -> list[Order]:
    """The live orders a cancel, amend or edit names (CancelAll: all of them)."""
    live = exchange.open_orders(account)
    if method == "CancelAll":
        return live
    named = params.get("txid", params.get("cl_ord_id"))
    if named is None:
        return []
    name = str(named)
    userref = None if "cl_ord_id" in params else as_userref(name)
    if userref is not None:
        return [o for o in live if o.spec.userref == userref]
    return [o for o in live if name in (o.txid, o.spec.cl_ord_id)]


def _pair_key(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return find_pair(value).key
    except KrakenError:
        return None


def _batch_size(params: Mapping[str, object]) -> int:
    """Orders in an AddOrderBatch: a JSON list, or form keys orders[i][...]."""
    orders = params.get("orders")
    if isinstance(orders, list):
        return len(orders)
    return len({m.group(1) for key in params if (m := re.match(r"orders\[(\d+)\]", key))})

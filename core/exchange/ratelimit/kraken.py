"""Kraken's rate counters, shaped client-side so the exchange never has to refuse a call.

Kraken keeps two kinds of counters (docs.kraken.com, "Spot REST Rate Limits" and
"Spot Trading Limits"):

- one REST call counter per API key: +1 per private call, +2 per ledger or trade
  history call; AddOrder and CancelOrder are not counted there. It may not exceed
  the tier's maximum and decays continuously.
- one trading counter per pair, shared by REST, WebSocket and FIX: a fixed count
  per transaction plus a penalty that shrinks with the age of the order touched
  (seconds since it was created or last amended). Reaching the threshold rejects
  the transaction with EOrder:Rate limit exceeded.

A counter of maximum M decaying d per second is a token bucket of capacity M refilled
at d per second. Each bucket here keeps one unit of headroom below the maximum and
refills 2% slower than the documented decay: Kraken decays the REST counter in steps
"every couple of seconds" and requests reach it after uneven network delays, so a
model that is exactly at the limit would sometimes be just over it.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.domain.clock import Clock, SystemClock
from core.domain.config import RateLimitSettings, Tier
from core.exchange.ratelimit.token_bucket import TokenBucketRateLimiter

if TYPE_CHECKING:
    from filelock import AsyncFileLock

OrderAction = Literal["add", "cancel", "amend", "edit"]
CounterKind = Literal["rest", "order"]
CallMix = Literal["query", "orders", "mixed"]


@dataclass(frozen=True)
class CounterLimit:
    """A Kraken counter: refused above `maximum`, decaying `decay_per_s` per second."""

    maximum: float
    decay_per_s: float


@dataclass(frozen=True)
class OrderActionCost:
    """A transaction's fixed count, plus `penalty` while the order is younger than `age_below_s`."""

    fixed: int
    penalties: tuple[tuple[float, int], ...]  # (age_below_s, penalty), youngest bracket first


# The tables, as Kraken documents them.
REST_COUNTER: dict[Tier, CounterLimit] = {
    "starter": CounterLimit(maximum=15, decay_per_s=0.33),
    "intermediate": CounterLimit(maximum=20, decay_per_s=0.5),
    "pro": CounterLimit(maximum=20, decay_per_s=1.0),
}
TRADING_COUNTER: dict[Tier, CounterLimit] = {
    "starter": CounterLimit(maximum=60, decay_per_s=1.0),
    "intermediate": CounterLimit(maximum=125, decay_per_s=2.34),
    "pro": CounterLimit(maximum=180, decay_per_s=3.75),
}
ORDER_ACTION_COSTS: dict[OrderAction, OrderActionCost] = {
    "add": OrderActionCost(fixed=1, penalties=()),
    "amend": OrderActionCost(fixed=1, penalties=((5, 3), (10, 2), (15, 1))),
    "edit": OrderActionCost(fixed=1, penalties=((5, 6), (10, 5), (15, 4), (45, 2), (90, 1))),
    "cancel": OrderActionCost(fixed=0, penalties=((5, 8), (10, 6), (15, 5), (45, 4), (90, 2), (300, 1))),
}
# "Ledger/trade history calls increase the counter by 2": the ledgers, the trades and
# the closed-order history (counting a call that costs 1 as 2 only slows us a little).
HISTORY_METHODS = frozenset({"ClosedOrders", "QueryTrades", "TradesHistory", "Ledgers", "QueryLedgers"})
# "All other API calls increase this counter by 1 (except AddOrder, CancelOrder ...)".
TRADING_ENGINE_METHODS = frozenset({"AddOrder", "CancelOrder"})
# Public endpoints are limited per IP address, not by the key's counter.
PUBLIC_METHODS = frozenset(
    {"Time", "SystemStatus", "Assets", "AssetPairs", "Ticker", "OHLC", "Depth", "Trades", "Spread"}
)

HEADROOM = 1.0
DECAY_SAFETY = 0.98
ORDER_CAP_BURST = 3


def rest_call_cost(method: str) -> int:
    """What one call of a REST method adds to the key's call counter."""
    if method in PUBLIC_METHODS or method in TRADING_ENGINE_METHODS:
        return 0
    return 2 if method in HISTORY_METHODS else 1


def order_action_cost(action: OrderAction, order_age_s: float | None = None) -> int:
    """What a transaction adds to its pair's trading counter.

    An unknown age is taken as the youngest, the costliest: guessing low is what
    gets a key refused.
    """
    cost = ORDER_ACTION_COSTS.get(action)
    if cost is None:
        raise ValueError(f"unknown order action {action!r}; use one of {sorted(ORDER_ACTION_COSTS)}")
    if order_age_s is not None and order_age_s < 0:
        raise ValueError(f"an order's age cannot be negative, got {order_age_s}")
    age = 0.0 if order_age_s is None else order_age_s
    penalty = next((points for below, points in cost.penalties if age < below), 0)
    return cost.fixed + penalty


class KrakenRateLimiter:
    """Paces one API key's calls: its REST counter, and one trading counter per pair.

    `calls_per_minute` and `order_calls_per_minute` (settings kraken.rate_limit) cap
    private calls and order transactions further, per key; they only bind when lower
    than what the tier allows. Private calls keep the REST counter's burst under their
    cap (a command's few reads go at once). Order transactions are paced evenly, one
    every 60/order_calls_per_minute seconds as the seed paced them, after a burst of
    ORDER_CAP_BURST: one trade's entry, stop-loss and take-profit, so a stop never waits
    behind its own entry, while a runaway loop of orders is held to the cap.
    """

    def __init__(
        self,
        tier: Tier,
        *,
        clock: Clock | None = None,
        calls_per_minute: int | None = None,
        order_calls_per_minute: int | None = None,
    ) -> None:
        if tier not in REST_COUNTER:
            raise ValueError(f"unknown Kraken tier {tier!r}; use one of {sorted(REST_COUNTER)}")
        caps = {"calls_per_minute": calls_per_minute, "order_calls_per_minute": order_calls_per_minute}
        for name, value in caps.items():
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.tier: Tier = tier
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._rest_limit = REST_COUNTER[tier]
        self._trading_limit = TRADING_COUNTER[tier]
        self._calls_per_minute = calls_per_minute
        self._order_calls_per_minute = order_calls_per_minute
        self._rest = self._counter_bucket(self._rest_limit)
        self._pairs: dict[str, TokenBucketRateLimiter] = {}
        self._call_cap = self._cap_bucket(calls_per_minute, self._rest_limit.maximum - HEADROOM)
        self._order_cap = self._cap_bucket(order_calls_per_minute, ORDER_CAP_BURST)
        self._shared: Path | None = None
        self._shared_lock: AsyncFileLock | None = None

    def share(self, path: Path) -> None:
        """Pace with every other process of this machine that shares `path` (one file
        per API key): Kraken counts a key's calls whoever sends them, so two tg
        processes pacing themselves alone would together spend the counter twice over
        (found by two `tg run` on one key: EAPI:Rate limit exceeded). Each pacing step
        then takes the file's lock, lowers the buckets to the levels the file holds,
        takes its tokens and writes the levels back: the key's calls from this machine
        take turns at one counter."""
        from filelock import AsyncFileLock  # only a served exchange's limiter shares

        self._shared = path
        self._shared_lock = AsyncFileLock(f"{path}.lock", thread_local=False)

    async def flush(self) -> None:
        """Leave this process's levels (a refusal's lesson included) in the shared file,
        under its lock and merged with the others': the next process starts from them."""
        async with self._synced():
            pass

    @asynccontextmanager
    async def _synced(self) -> AsyncIterator[None]:
        if self._shared is None or self._shared_lock is None:
            yield
            return
        try:
            self._shared.parent.mkdir(parents=True, exist_ok=True)
            await self._shared_lock.acquire()
        except OSError:  # pace alone: the exchange's refusals still teach on_rate_limit_error
            yield
            return
        try:
            self.load(self._shared, now=self._clock.time())
            yield
            self.save(self._shared, now=self._clock.time())
        finally:
            await self._shared_lock.release()

    @classmethod
    def from_settings(cls, settings: RateLimitSettings, *, clock: Clock | None = None) -> KrakenRateLimiter:
        return cls(
            settings.tier,
            clock=clock,
            calls_per_minute=settings.calls_per_minute,
            order_calls_per_minute=settings.order_calls_per_minute,
        )

    async def acquire_call(self, method: str) -> float:
        """Wait until a REST call of `method` fits the key's counter; returns the seconds waited."""
        cost = rest_call_cost(method)
        if cost == 0:
            return 0.0
        async with self._synced():
            waited = 0.0 if self._call_cap is None else await self._call_cap.acquire(1)
            return waited + await self._rest.acquire(cost)

    async def acquire_order(self, pair: str, action: OrderAction, order_age_s: float | None = None) -> float:
        """Wait until an order transaction fits the pair's trading counter; returns the seconds waited.

        `pair` names the pair one way throughout (its Kraken key), since each name gets
        its own counter; `order_age_s` is the age of the order cancelled, amended or edited.
        """
        cost = order_action_cost(action, order_age_s)
        async with self._synced():
            waited = 0.0 if self._order_cap is None else await self._order_cap.acquire(1)
            if cost:
                waited += await self._pair_bucket(pair).acquire(cost)
            return waited

    def on_rate_limit_error(self, kind: CounterKind, pair: str | None = None) -> float:
        """The exchange refused a call anyway, so something else spends this key's counter:
        take the counter as full and pay it down before the next call.

        Returns the seconds until the next one-unit call may go.
        """
        if kind == "rest":
            bucket, limit = self._rest, self._rest_limit
        elif kind == "order":
            if pair is None:
                raise ValueError("an order rate-limit error needs the pair it was refused on")
            bucket, limit = self._pair_bucket(pair), self._trading_limit
        else:
            raise ValueError(f"unknown counter kind {kind!r}; use 'rest' or 'order'")
        bucket.drain(bucket.capacity - limit.maximum)
        return (1 - bucket.available_tokens) / bucket.rate

    def levels(self) -> dict[str, Any]:
        """What is left on each counter now: saved by one process, it starts the next one
        where the exchange's counters stand instead of at full."""
        return {
            "rest": self._rest.available_tokens,
            "pairs": {pair: bucket.available_tokens for pair, bucket in self._pairs.items()},
        }

    def restore(self, levels: dict[str, Any], *, elapsed_s: float) -> None:
        """Lower the counters to `levels`, saved `elapsed_s` ago (they refilled meanwhile)."""
        elapsed = max(0.0, elapsed_s)
        self._rest.drain(float(levels.get("rest", self._rest.capacity)) + elapsed * self._rest.rate)
        for pair, level in dict(levels.get("pairs", {})).items():
            bucket = self._pair_bucket(pair)
            bucket.drain(float(level) + elapsed * bucket.rate)

    def save(self, path: Path, *, now: float) -> None:
        """Write `levels()` to `path` (atomically), stamped with the wall-clock `now`."""
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps({"saved_at": now, **self.levels()}))
            temporary.replace(path)
        except OSError:
            pass  # the next process then starts at full and learns from the exchange

    def load(self, path: Path, *, now: float) -> None:
        """Start from the levels another process of this key saved in `path`, if any."""
        try:
            saved = json.loads(path.read_text())
            self.restore(saved, elapsed_s=now - float(saved["saved_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return

    def allowed_rate(self, mix: CallMix, *, cancel_age_s: float = 0.0) -> float:
        """The highest sustained calls per second Kraken allows this key for a mix of calls.

        "query": private calls that count 1. "orders": AddOrder then CancelOrder of that
        order after `cancel_age_s`, on one pair. "mixed": AddOrder, a QueryOrders to
        confirm it, then the CancelOrder, on one pair. The configured caps apply.
        """
        queries = self._rest_limit.decay_per_s
        if self._calls_per_minute is not None:
            queries = min(queries, self._calls_per_minute / 60)
        order_cost = order_action_cost("add") + order_action_cost("cancel", cancel_age_s)
        order_pairs = self._trading_limit.decay_per_s / order_cost
        if self._order_calls_per_minute is not None:
            order_pairs = min(order_pairs, self._order_calls_per_minute / 60 / 2)
        return _of_mix(mix, queries, order_pairs)

    def allowed_calls(self, mix: CallMix, elapsed_s: float) -> float:
        """The most calls of a mix Kraken allows in `elapsed_s` from full counters: what
        the counters hold at once plus what they decay meanwhile (cancels sent at once,
        the costliest age). A limiter that never gets refused stays at or under it."""
        queries = self._rest_limit.maximum + self._rest_limit.decay_per_s * elapsed_s
        if self._call_cap is not None:
            queries = min(queries, self._call_cap.capacity + self._call_cap.rate * elapsed_s)
        order_cost = order_action_cost("add") + order_action_cost("cancel", 0.0)
        order_pairs = (self._trading_limit.maximum + self._trading_limit.decay_per_s * elapsed_s) / order_cost
        if self._order_cap is not None:
            order_pairs = min(order_pairs, (self._order_cap.capacity + self._order_cap.rate * elapsed_s) / 2)
        return _of_mix(mix, queries, order_pairs)

    def _pair_bucket(self, pair: str) -> TokenBucketRateLimiter:
        bucket = self._pairs.get(pair)
        if bucket is None:
            bucket = self._pairs[pair] = self._counter_bucket(self._trading_limit)
        return bucket

    def _counter_bucket(self, limit: CounterLimit) -> TokenBucketRateLimiter:
        return TokenBucketRateLimiter(limit.decay_per_s * DECAY_SAFETY, limit.maximum - HEADROOM, clock=self._clock)

    def _cap_bucket(self, per_minute: int | None, burst: float) -> TokenBucketRateLimiter | None:
        """A cap counts calls, not counter units."""
        if per_minute is None:
            return None
        return TokenBucketRateLimiter(per_minute / 60, burst, clock=self._clock)


def _of_mix(mix: CallMix, queries: float, order_pairs: float) -> float:
    """Calls of a mix from its queries and its order pairs (AddOrder and CancelOrder):
    "mixed" is AddOrder, QueryOrders, CancelOrder."""
    if mix == "query":
        return queries
    if mix == "orders":
        return 2 * order_pairs
    if mix == "mixed":
        return 3 * min(queries, order_pairs)
    raise ValueError(f"unknown call mix {mix!r}; use 'query', 'orders' or 'mixed'")

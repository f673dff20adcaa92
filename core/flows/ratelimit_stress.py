"""`tg ratelimit-stress`: many concurrent calls through the client at a sandbox that
enforces Kraken's counters, to show the limiter keeps every call below the thresholds
while using the rate they allow.

Each request is exactly one call to the exchange (the client's read retries are off,
so a refusal is never hidden by a resend). The mixes are Kraken's two counters alone
and together: "query" is Balance, "orders" an AddOrder of a resting limit order and
the CancelOrder of it, "mixed" AddOrder, QueryOrders of it, then CancelOrder.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, TypeVar, get_args

import httpx

from core.domain.clock import Clock
from core.domain.config import RateLimitSettings, Tier
from core.domain.enums import OrderType, Side
from core.domain.errors import ExchangeError, InputError, RateLimitExceededError
from core.exchange import Credentials, KrakenClient, PairInfo
from core.exchange.ratelimit import KrakenRateLimiter, TokenBucketRateLimiter
from core.exchange.ratelimit.kraken import CallMix

LimiterKind = Literal["kraken", "token-bucket", "none"]
Step = Literal["balance", "add", "query", "cancel"]

TIERS: tuple[Tier, ...] = get_args(Tier)
MIXES: tuple[CallMix, ...] = get_args(CallMix)
LIMITERS: tuple[LimiterKind, ...] = get_args(LimiterKind)
CYCLES: dict[CallMix, tuple[Step, ...]] = {
    "query": ("balance",),
    "orders": ("add", "cancel"),
    "mixed": ("add", "query", "cancel"),
}
SYMBOL = "BTC/USDT"
RESTING_DISCOUNT = Decimal("0.5")  # a buy at half the bid rests for the whole run
TRADING_STEPS = frozenset({"add", "cancel"})


@dataclass(frozen=True)
class StressTarget:
    """Where the requests go: a sandbox in-process (transport) or served (URL)."""

    base_url: str
    credentials: Credentials | None
    clock: Clock
    transport: httpx.AsyncBaseTransport | None = None


@dataclass(frozen=True)
class StressPlan:
    requests: int = 1000
    concurrency: int = 20
    tier: Tier = "starter"
    mix: CallMix = "query"
    limiter: LimiterKind = "kraken"

    @classmethod
    def from_options(cls, *, requests: int, concurrency: int, tier: str, mix: str, limiter: str) -> StressPlan:
        """The plan the command line asks for, or the InputError saying what is wrong with it."""
        if requests < 1:
            raise InputError(f"--requests must be at least 1, got {requests}")
        if concurrency < 1:
            raise InputError(f"--concurrency must be at least 1, got {concurrency}")
        return cls(
            requests=requests,
            concurrency=concurrency,
            tier=_choice("--tier", tier, TIERS),
            mix=_choice("--mix", mix, MIXES),
            limiter=_choice("--limiter", limiter, LIMITERS),
        )


_Choice = TypeVar("_Choice", bound=str)


def _choice(option: str, value: str, choices: tuple[_Choice, ...]) -> _Choice:
    for choice in choices:
        if choice == value:
            return choice
    raise InputError(f"{option} must be one of {', '.join(choices)}, not {value!r}")


@dataclass(frozen=True)
class StressReport:
    """What a stress run saw. `allowed_rate` is the highest sustained rate Kraken allows
    the tier for the mix with every cancel sent at once (the costliest age); a shaper
    whose queue delays cancels pays smaller penalties and may pass it."""

    plan: StressPlan
    violations: int
    """Rate-limit refusals the exchange answered."""
    errors: list[str]
    """Other failures, one line each: with a limiter on, any is a failed stress."""
    elapsed_s: float
    accepted: int
    allowed_rate: float
    allowed_calls: float
    """What Kraken would allow in `elapsed_s` from full counters (burst and decay)."""
    waits_s: list[float] = field(repr=False)

    @property
    def achieved_rate(self) -> float | None:
        """Calls the exchange accepted per second; None when no time passed at all."""
        return self.accepted / self.elapsed_s if self.elapsed_s > 0 else None

    @property
    def utilization(self) -> float | None:
        """Accepted calls as a share of what Kraken allows over the same time, the counters'
        burst included: at most 1 for any limiter the exchange never refused."""
        return self.accepted / self.allowed_calls if self.allowed_calls > 0 else None

    @property
    def failed(self) -> bool:
        """A limiter was on and the exchange refused or failed a call anyway."""
        return self.plan.limiter != "none" and bool(self.violations or self.errors)

    def to_dict(self) -> dict[str, object]:
        return {
            "requests": self.plan.requests,
            "violations": self.violations,
            "elapsed_s": self.elapsed_s,
            "achieved_rate": self.achieved_rate,
            "allowed_rate": self.allowed_rate,
            "allowed_calls": self.allowed_calls,
            "utilization": self.utilization,
            "wait_p50_s": percentile(self.waits_s, 50),
            "wait_p99_s": percentile(self.waits_s, 99),
            "wait_max_s": max(self.waits_s),
            "tier": self.plan.tier,
            "mix": self.plan.mix,
            "limiter": self.plan.limiter,
        }


def percentile(values: list[float], p: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


@dataclass
class _Tally:
    left: int
    violations: int = 0
    accepted: int = 0
    errors: list[str] = field(default_factory=list)
    waits_s: list[float] = field(default_factory=list)


Shaper = Callable[[Step], Awaitable[float]]
"""Holds a call back before the client sends it; returns the seconds it waited."""


class _TokenBuckets:
    """The plain limiter the seed had: calls_per_minute for calls, order_calls_per_minute
    for order transactions, a second's worth of burst, blind to Kraken's counters."""

    def __init__(self, limits: RateLimitSettings, clock: Clock) -> None:
        self._calls = self._bucket(limits.calls_per_minute, clock)
        self._orders = self._bucket(limits.order_calls_per_minute, clock)

    @staticmethod
    def _bucket(per_minute: int, clock: Clock) -> TokenBucketRateLimiter:
        rate = per_minute / 60
        return TokenBucketRateLimiter(rate, max(1.0, rate), clock=clock)

    async def acquire(self, step: Step) -> float:
        return await (self._orders if step in TRADING_STEPS else self._calls).acquire()


class _Stress:
    def __init__(
        self, plan: StressPlan, client: KrakenClient, shaper: Shaper | None, on_request: Callable[[], None] | None
    ) -> None:
        self._plan = plan
        self._client = client
        self._shaper = shaper
        self._on_request = on_request
        self._tally = _Tally(left=plan.requests)

    async def run(self, pair: PairInfo, price: Decimal) -> _Tally:
        await asyncio.gather(*(self._worker(pair, price) for _ in range(self._plan.concurrency)))
        return self._tally

    async def _worker(self, pair: PairInfo, price: Decimal) -> None:
        """Cycles of the mix until the budget of requests is spent; a cycle whose order
        was not placed ends there, since its query and cancel have nothing to name."""
        tally = self._tally
        while tally.left > 0:
            txid = ""
            for step in CYCLES[self._plan.mix]:
                if tally.left == 0:
                    return
                tally.left -= 1
                placed = await self._request(step, pair, price, txid)
                if step == "add":
                    if placed is None:
                        break
                    txid = placed

    async def _request(self, step: Step, pair: PairInfo, price: Decimal, txid: str) -> str | None:
        """One call: None when it failed, else what _call returned."""
        tally = self._tally
        placed: str | None = None
        with self._client.measure() as costs:
            waited = 0.0 if self._shaper is None else await self._shaper(step)
            try:
                placed = await self._call(step, pair, price, txid)
                tally.accepted += 1
            except RateLimitExceededError:
                pass  # counted by the client, in costs
            except ExchangeError as exc:
                tally.errors.append(f"{step}: {exc}")
        tally.violations += costs.rate_limit_errors
        tally.waits_s.append(waited + costs.rate_limit_wait_s + costs.retry_wait_s)
        if self._on_request is not None:
            self._on_request()
        return placed

    async def _call(self, step: Step, pair: PairInfo, price: Decimal, txid: str) -> str:
        """The txid an add placed; "" for the other calls."""
        client = self._client
        if step == "add":
            return (await client.add_order(pair.symbol, Side.BUY, OrderType.LIMIT, pair.ordermin, price)).txid
        if step == "balance":
            await client.balance()
        elif step == "query":
            await client.query_orders([txid])
        else:
            await client.cancel_order(txid)
        return ""


async def run_stress(
    plan: StressPlan,
    target: StressTarget,
    limits: RateLimitSettings,
    *,
    on_request: Callable[[], None] | None = None,
    shaper: Shaper | None = None,
) -> StressReport:
    """Fire `plan.requests` calls, `plan.concurrency` at a time, at `target`.

    `limits` gives the configured caps (calls_per_minute, order_calls_per_minute);
    the tier is the plan's, which must be the one the sandbox enforces. `shaper`, with
    limiter "none", holds calls back instead: another limiter to compare with.
    """
    clock = target.clock
    if shaper is not None and plan.limiter != "none":
        raise ValueError("a shaper replaces the limiter: run it with limiter 'none'")
    kraken: KrakenRateLimiter | None = None
    if plan.limiter == "kraken":
        kraken = KrakenRateLimiter.from_settings(limits.model_copy(update={"tier": plan.tier}), clock=clock)
    elif plan.limiter == "token-bucket":
        shaper = _TokenBuckets(limits, clock).acquire
    async with KrakenClient(
        target.base_url,
        target.credentials,
        transport=target.transport,
        clock=clock,
        retry_attempts=1,
        rate_limiter=kraken,
    ) as client:
        pair = await client.resolve_pair(SYMBOL)
        price = pair.round_price((await client.ticker(SYMBOL)).bid * RESTING_DISCOUNT)
        started = clock.monotonic()
        tally = await _Stress(plan, client, shaper, on_request).run(pair, price)
        elapsed = clock.monotonic() - started
    return StressReport(
        plan=plan,
        violations=tally.violations,
        errors=tally.errors,
        elapsed_s=elapsed,
        accepted=tally.accepted,
        allowed_rate=KrakenRateLimiter(plan.tier).allowed_rate(plan.mix),
        allowed_calls=KrakenRateLimiter(plan.tier).allowed_calls(plan.mix, elapsed),
        waits_s=tally.waits_s,
    )

"""No schedule of concurrent requests through the client and KrakenRateLimiter makes
the sandbox's own counters (simulator/ratelimits.py, in-process) pass a threshold:
hypothesis draws the schedules, each run on its own fast-forwarding event loop with
the sandbox's clock following it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

import httpx
import looptime
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.clock import LoopClock
from core.domain.enums import OrderType, Side
from core.domain.errors import RateLimitExceededError
from core.exchange import Credentials, KrakenClient
from core.exchange.ratelimit import KrakenRateLimiter
from simulator.app import create_app
from simulator.embedded import SANDBOX_EPOCH, EmbeddedExchange
from simulator.exchange import Exchange
from simulator.ratelimits import RateLimits, Tier
from tests.virtual_time import elapse

Kind = Literal["balance", "history", "open", "order"]
SYMBOLS = ("BTC/USDT", "ETH/USD")

requests = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10_000).map(lambda ms: ms / 1000),  # arrival, s
        st.sampled_from(["balance", "history", "open", "order", "order"]),
        st.sampled_from(SYMBOLS),
        st.sampled_from([0.0, 0.0, 3.0, 7.0, 12.0, 30.0, 60.0, 120.0, 400.0]),  # order age at cancel, s
    ),
    min_size=5,
    max_size=60,
)


@dataclass
class Observed:
    refusals: int = 0
    over: list[str] = field(default_factory=list)
    cancels: int = 0


def check_counters(limits: RateLimits, now: float, observed: Observed) -> None:
    for key, counter in limits.rest.items():
        if counter.level(now) > counter.limit.maximum:
            observed.over.append(f"rest {key[:6]} at {counter.level(now)}")
    for pair, counter in limits.trading.items():
        if counter.level(now) > counter.limit.maximum:
            observed.over.append(f"trading {pair} at {counter.level(now)}")


async def run_schedule(tier: str, schedule: list[tuple[float, Kind, str, float]]) -> Observed:
    clock = LoopClock(SANDBOX_EPOCH)
    exchange = Exchange.create(clock)
    key = exchange.create_api_key()
    app = create_app(exchange, tier=Tier(tier))
    limits = app.sandbox.limits
    assert limits is not None
    observed = Observed()
    async with KrakenClient(
        EmbeddedExchange.base_url,
        Credentials(api_key=key.key, api_secret=key.secret),
        transport=httpx.ASGITransport(app=app),
        clock=clock,
        retry_attempts=1,  # a refusal must show, not be retried away
        rate_limiter=KrakenRateLimiter(tier, clock=clock),  # type: ignore[arg-type]
    ) as client:
        pairs = {symbol: await client.resolve_pair(symbol) for symbol in SYMBOLS}
        prices = {s: p.round_price((await client.ticker(s)).bid / 2) for s, p in pairs.items()}

        async def request(arrival: float, kind: Kind, symbol: str, age: float) -> None:
            await elapse(arrival)
            try:
                await call(kind, symbol, age)
            except RateLimitExceededError:
                return  # counted by measure(); the rest of this request cannot follow
            check_counters(limits, clock.monotonic(), observed)

        async def call(kind: Kind, symbol: str, age: float) -> None:
            if kind == "balance":
                await client.balance()
            elif kind == "history":
                await client.closed_orders()
            elif kind == "open":
                await client.open_orders()
            else:
                pair = pairs[symbol]
                ack = await client.add_order(symbol, Side.BUY, OrderType.LIMIT, pair.ordermin, prices[symbol])
                check_counters(limits, clock.monotonic(), observed)
                await elapse(age)
                await client.cancel_order(ack.txid)
                observed.cancels += 1

        with client.measure() as costs:
            await asyncio.gather(*(request(*item) for item in schedule))
        observed.refusals = costs.rate_limit_errors
    return observed


def run_virtual(tier: str, schedule: list[tuple[float, Kind, str, float]]) -> Observed:
    loop = looptime.new_event_loop(start=0, idle_timeout=1.0)
    try:
        return loop.run_until_complete(run_schedule(tier, schedule))
    finally:
        loop.close()


@settings(max_examples=40, deadline=None)
@given(tier=st.sampled_from([t.value for t in Tier]), schedule=requests)
def test_no_schedule_makes_the_sandbox_refuse_or_its_counters_pass_a_threshold(
    tier: str, schedule: list[tuple[float, Kind, str, float]]
) -> None:
    observed = run_virtual(tier, schedule)

    assert observed.refusals == 0
    assert observed.over == []
    assert observed.cancels == sum(1 for _, kind, _, _ in schedule if kind == "order")


def test_without_the_limiter_the_same_kind_of_schedule_is_refused() -> None:
    """The property above can fail: the sandbox does refuse a burst the limiter would pace."""

    async def burst() -> int:
        clock = LoopClock(SANDBOX_EPOCH)
        exchange = Exchange.create(clock)
        key = exchange.create_api_key()
        app = create_app(exchange, tier=Tier.STARTER)
        async with KrakenClient(
            EmbeddedExchange.base_url,
            Credentials(api_key=key.key, api_secret=key.secret),
            transport=httpx.ASGITransport(app=app),
            clock=clock,
            retry_attempts=1,
        ) as client:
            with client.measure() as costs:
                await asyncio.gather(*(client.balance() for _ in range(20)), return_exceptions=True)
            return costs.rate_limit_errors

    loop = looptime.new_event_loop(start=0, idle_timeout=1.0)
    try:
        assert loop.run_until_complete(burst()) == 5  # 15 allowed, then refused
    finally:
        loop.close()

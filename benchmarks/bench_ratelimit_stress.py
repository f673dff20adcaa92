"""`tg ratelimit-stress` for every tier and mix, KrakenRateLimiter against two named
baselines, each holding back the calls of the same client to the same sandbox:

- aiolimiter shaping at the same nominal rate (one AsyncLimiter per Kraken counter,
  its documented maximum as the burst and its decay as the rate, one unit per call,
  as a plain limiter counts);
- ccxt's own Kraken rate limiter: the throttler ccxt.async_support.kraken runs with
  enableRateLimit (a leaky bucket refilled one token per `rateLimit` ms, capacity 1),
  charged each endpoint's cost from ccxt's Kraken API table (Balance and QueryOrders
  3, AddOrder and CancelOrder 0: ccxt leaves the trading counter to the exchange). Its
  throttler reads the wall clock; here it reads the event loop's, as everything else
  does, or virtual time would leave it waiting on real seconds; and it polls its
  bucket every 50 ms rather than every 1 ms (POLL_S).

In-process sandbox, virtual time (looptime).

    python benchmarks/bench_ratelimit_stress.py [--requests N] [--concurrency C]

Targets (issue 4): 0 violations and utilization >= 0.95 for every tier and mix.
calls/s is what the sandbox accepted per second, allowed/s the sustained rate Kraken
allows the tier for the mix.
Utilization is accepted calls per second over the sustained rate Kraken allows, so the
opening burst can lift it a little above 1; with violations it only says how many
calls got through, not that the limits were kept.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import ccxt.async_support
import looptime
from aiolimiter import AsyncLimiter
from ccxt.async_support.base import throttler as ccxt_throttler

from cli.stress import sandbox_target
from core.domain.config import RateLimitSettings
from core.exchange.ratelimit.kraken import REST_COUNTER, TRADING_COUNTER
from core.flows.ratelimit_stress import MIXES, TIERS, Shaper, Step, StressPlan, StressReport, run_stress


class RoundedLimiter(AsyncLimiter):
    """aiolimiter with its level rounded to 1e-9, the tolerance TokenBucketRateLimiter
    keeps too. Unrounded, a float residue makes it wake itself at the current instant
    forever under looptime (time cannot move while a callback is due): it never ends."""

    def _leak(self) -> None:
        super()._leak()
        self._level = round(self._level, 9)


def aiolimiter_shaper(tier: str) -> Shaper:
    """One AsyncLimiter per counter: Kraken's figures, Kraken's costs unknown to it."""
    rest, trading = REST_COUNTER[tier], TRADING_COUNTER[tier]  # type: ignore[index]
    limiters = {
        "rest": RoundedLimiter(rest.maximum, rest.maximum / rest.decay_per_s),
        "trading": RoundedLimiter(trading.maximum, trading.maximum / trading.decay_per_s),
    }

    async def shape(step: Step) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await limiters["trading" if step in ("add", "cancel") else "rest"].acquire()
        return loop.time() - started

    return shape


CCXT_ENDPOINTS: dict[Step, str] = {
    "balance": "Balance",
    "add": "AddOrder",
    "query": "QueryOrders",
    "cancel": "CancelOrder",
}


POLL_S = 0.05
"""How often ccxt's throttler looks at its bucket while a call waits (ccxt's default is
1 ms, which costs a looptime loop a minute of real time per few hundred calls): the
bucket and its costs set the rate, this only when, within 50 ms, a due call goes."""


def ccxt_shaper(tier: str) -> Shaper:
    """ccxt's Kraken throttler and costs; ccxt knows no tiers, so `tier` changes nothing."""
    exchange = ccxt.async_support.kraken({"enableRateLimit": True, "tokenBucket": {"delay": POLL_S}})
    costs = {step: float(exchange.api["private"]["post"][name]["cost"]) for step, name in CCXT_ENDPOINTS.items()}

    async def shape(step: Step) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await exchange.throttle(costs[step])
        return loop.time() - started

    return shape


@contextmanager
def on_loop_time() -> Iterator[None]:
    """ccxt's throttler on the running loop's clock (virtual under looptime), in ms as it counts."""
    with mock.patch.object(ccxt_throttler, "time", lambda: asyncio.get_running_loop().time()):
        yield


@dataclass(frozen=True)
class Contender:
    name: str
    limiter: str
    shaper: Callable[[str], Shaper] | None = None


CONTENDERS = (
    Contender("KrakenRateLimiter", "kraken"),
    Contender("aiolimiter (baseline)", "none", aiolimiter_shaper),
    Contender("ccxt (baseline)", "none", ccxt_shaper),
)


def run(plan: StressPlan, shaper: Shaper | None) -> tuple[StressReport, float]:
    async def stress() -> StressReport:
        return await run_stress(plan, sandbox_target(plan.tier), RateLimitSettings(), shaper=shaper)

    started = time.perf_counter()
    with (
        on_loop_time(),
        asyncio.Runner(loop_factory=lambda: looptime.new_event_loop(start=0, idle_timeout=1.0)) as runner,
    ):
        report = runner.run(stress())
    return report, time.perf_counter() - started


def figure(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    print(f"{args.requests} requests, concurrency {args.concurrency}, in-process sandbox, virtual time\n")
    header = (
        f"{'tier':<13}{'mix':<8}{'limiter':<23}{'violations':>11}{'calls/s':>9}{'allowed/s':>11}"
        f"{'utilization':>13}{'p99 wait s':>12}{'wall s':>8}"
    )
    print(header)
    print("-" * len(header))
    for tier in TIERS:
        for mix in MIXES:
            for contender in CONTENDERS:
                plan = StressPlan.from_options(
                    requests=args.requests, concurrency=args.concurrency, tier=tier, mix=mix, limiter=contender.limiter
                )
                shaper = contender.shaper(tier) if contender.shaper is not None else None
                report, wall = run(plan, shaper)
                summary = report.to_dict()
                print(
                    f"{tier:<13}{mix:<8}{contender.name:<23}{report.violations:>11}"
                    f"{figure(report.achieved_rate, '.3f'):>9}{report.allowed_rate:>11.3f}"
                    f"{figure(report.utilization, '.3f'):>13}{summary['wait_p99_s']:>12.1f}{wall:>8.2f}"
                )


if __name__ == "__main__":
    main()

"""`tg ratelimit-stress` for every tier and mix, KrakenRateLimiter against the named
baseline: aiolimiter shaping at the same nominal rate (one AsyncLimiter per Kraken
counter, its documented maximum as the burst and its decay as the rate, one unit per
call, as a plain limiter counts). In-process sandbox, virtual time (looptime).

    python benchmarks/bench_ratelimit_stress.py [--requests N] [--concurrency C]

Targets (issue 4): 0 violations and utilization >= 0.95 for every tier and mix.
Utilization is accepted calls per second over the sustained rate Kraken allows, so the
opening burst can lift it a little above 1; with violations it only says how many
calls got through, not that the limits were kept.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import looptime
from aiolimiter import AsyncLimiter

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


@dataclass(frozen=True)
class Contender:
    name: str
    limiter: str
    shaper: Callable[[str], Shaper] | None = None


CONTENDERS = (
    Contender("KrakenRateLimiter", "kraken"),
    Contender("aiolimiter (baseline)", "none", aiolimiter_shaper),
)


def run(plan: StressPlan, shaper: Shaper | None) -> tuple[StressReport, float]:
    async def stress() -> StressReport:
        return await run_stress(plan, sandbox_target(plan.tier), RateLimitSettings(), shaper=shaper)

    started = time.perf_counter()
    with asyncio.Runner(loop_factory=lambda: looptime.new_event_loop(start=0, idle_timeout=1.0)) as runner:
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
        f"{'tier':<13}{'mix':<8}{'limiter':<23}{'violations':>11}{'utilization':>13}{'p99 wait s':>12}{'wall s':>8}"
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
                    f"{figure(report.utilization, '.3f'):>13}{summary['wait_p99_s']:>12.1f}{wall:>8.2f}"
                )


if __name__ == "__main__":
    main()

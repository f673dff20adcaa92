"""TokenBucketRateLimiter against aiolimiter.AsyncLimiter (the named baseline), side by side
in one process.

    python benchmarks/bench_ratelimit.py [--calls N] [--repeats R]

- uncontended: ns per acquire() when the bucket never runs dry (the path every REST
  call takes while tg is within its limits); target: at most 1.5x aiolimiter's.
- contended: 50 tasks share a limiter of burst 50 at 200 000 and 1 000 000 grants/s, in
  real time: grants per wall second, how close that is to the configured rate, and CPU
  time per grant (the bookkeeping of queueing and waking waiters).

There is no looptime figure: under looptime aiolimiter can spin forever once its level
carries a float residue (it sets a timer for a sub-nanosecond shortfall, which fires
without moving the loop's microsecond clock).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

from core.exchange.ratelimit import TokenBucketRateLimiter

TASKS = 50
RATES = (200_000.0, 1_000_000.0)

Acquire = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Contender:
    name: str
    make: Callable[[float, float], Acquire]  # (rate per second, burst) -> acquire


def ours(rate: float, burst: float) -> Acquire:
    return TokenBucketRateLimiter(rate, burst).acquire


def aiolimiter(rate: float, burst: float) -> Acquire:
    return AsyncLimiter(burst, burst / rate).acquire


CONTENDERS = (
    Contender("aiolimiter.AsyncLimiter (baseline)", aiolimiter),
    Contender("TokenBucketRateLimiter", ours),
)


async def uncontended_ns(make: Callable[[float, float], Acquire], calls: int) -> float:
    acquire = make(1e15, 1e15)
    started = time.perf_counter_ns()
    for _ in range(calls):
        await acquire()
    return (time.perf_counter_ns() - started) / calls


async def empty_loop_ns(calls: int) -> float:
    async def nothing() -> None:
        return None

    started = time.perf_counter_ns()
    for _ in range(calls):
        await nothing()
    return (time.perf_counter_ns() - started) / calls


async def contended(make: Callable[[float, float], Acquire], rate: float, grants_per_task: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) for TASKS tasks each taking `grants_per_task` tokens."""
    acquire = make(rate, TASKS)

    async def worker() -> None:
        for _ in range(grants_per_task):
            await acquire()

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(TASKS)))
    return time.perf_counter() - wall, time.process_time() - cpu


def contended_runs(
    make: Callable[[float, float], Acquire], rate: float, grants_per_task: int, repeats: int
) -> list[tuple[float, float]]:
    return [asyncio.run(contended(make, rate, grants_per_task)) for _ in range(repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000, help="acquire() calls per uncontended run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure; the best is kept")
    args = parser.parse_args()

    print(f"uncontended acquire(), best of {args.repeats} x {args.calls:,} calls")
    floor = min(asyncio.run(empty_loop_ns(args.calls)) for _ in range(args.repeats))
    print(f"  {'await of an empty coroutine (floor)':<38} {floor:8.1f} ns/call")
    uncontended = {
        c.name: min(asyncio.run(uncontended_ns(c.make, args.calls)) for _ in range(args.repeats)) for c in CONTENDERS
    }
    baseline = uncontended[CONTENDERS[0].name]
    for name, ns in uncontended.items():
        print(f"  {name:<38} {ns:8.1f} ns/call   x{ns / baseline:.2f} of baseline")

    grants = 2_000
    total = TASKS * grants
    for rate in RATES:
        print(f"\ncontended, real time: {TASKS} tasks x {grants:,} grants, rate {rate:,.0f}/s, burst {TASKS}")
        runs = {c.name: contended_runs(c.make, rate, grants, args.repeats) for c in CONTENDERS}
        best = {name: (min(w for w, _ in r), min(c for _, c in r)) for name, r in runs.items()}
        base_cpu = best[CONTENDERS[0].name][1]
        for name, (wall, cpu) in best.items():
            throughput = total / wall
            print(
                f"  {name:<38} {throughput:10,.0f} grants/s ({throughput / rate:5.1%} of the rate)"
                f"   {cpu / total * 1e6:5.2f} us CPU/grant   x{cpu / base_cpu:.2f} of baseline CPU"
            )


if __name__ == "__main__":
    main()

"""TokenBucketRateLimiter against aiolimiter.AsyncLimiter (the named baseline), side by side
in one process.

    python benchmarks/bench_ratelimit.py [--calls N] [--repeats R]

- uncontended: ns per acquire() when the bucket never runs dry (the path every REST
  call takes when tg is within its limits); target: at most 1.5x aiolimiter's.
- contended, real time: 50 tasks share a 200 000/s limiter of burst 50; grants per
  second of wall time and how close that comes to the configured rate.
- contended, virtual time (looptime): 50 tasks share a 10/s limiter; wall-clock
  microseconds of bookkeeping per grant, the waits themselves being fast-forwarded.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import looptime
from aiolimiter import AsyncLimiter

from core.ratelimit import TokenBucketRateLimiter

TASKS = 50
FAST_RATE = 200_000.0
VIRTUAL_RATE = 10.0

Acquire = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Contender:
    name: str
    make: Callable[[float, float], Acquire]  # (rate per second, burst) -> acquire


def ours(rate: float, burst: float) -> Acquire:
    return TokenBucketRateLimiter(rate, burst).acquire


def aiolimiter(rate: float, burst: float) -> Acquire:
    return AsyncLimiter(burst, burst / rate).acquire


CONTENDERS = (Contender("aiolimiter.AsyncLimiter (baseline)", aiolimiter), Contender("TokenBucketRateLimiter", ours))


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
    """(wall seconds, loop seconds) for TASKS tasks each taking `grants_per_task` tokens."""
    acquire = make(rate, TASKS)
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        for _ in range(grants_per_task):
            await acquire()

    wall, loop_start = time.perf_counter(), loop.time()
    await asyncio.gather(*(worker() for _ in range(TASKS)))
    return time.perf_counter() - wall, loop.time() - loop_start


def best_of(repeats: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeats))


def run_virtual(main: Awaitable[tuple[float, float]]) -> tuple[float, float]:
    loop = looptime.new_event_loop(start=0)
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000, help="acquire() calls per uncontended run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure; the best is kept")
    args = parser.parse_args()

    print(f"uncontended acquire(), best of {args.repeats} x {args.calls:,} calls")
    floor = best_of(args.repeats, lambda: asyncio.run(empty_loop_ns(args.calls)))
    print(f"  {'await of an empty coroutine (floor)':<38} {floor:8.1f} ns/call")
    uncontended = {
        c.name: best_of(args.repeats, lambda c=c: asyncio.run(uncontended_ns(c.make, args.calls)))
        for c in CONTENDERS
    }
    baseline = uncontended[CONTENDERS[0].name]
    for name, ns in uncontended.items():
        print(f"  {name:<38} {ns:8.1f} ns/call   x{ns / baseline:.2f} of baseline")

    grants = 2_000
    total = TASKS * grants
    print(f"\ncontended, real time: {TASKS} tasks x {grants:,} grants, rate {FAST_RATE:,.0f}/s, burst {TASKS}")
    walls = {}
    for c in CONTENDERS:
        walls[c.name] = best_of(args.repeats, lambda c=c: asyncio.run(contended(c.make, FAST_RATE, grants))[0])
    for name, wall in walls.items():
        throughput = total / wall
        print(
            f"  {name:<38} {throughput:10,.0f} grants/s   {throughput / FAST_RATE:5.1%} of the rate"
            f"   x{walls[CONTENDERS[0].name] / wall:.2f} baseline throughput"
        )

    grants = 200
    total = TASKS * grants
    print(f"\ncontended, virtual time (looptime): {TASKS} tasks x {grants} grants, rate {VIRTUAL_RATE:g}/s")
    costs = {}
    for c in CONTENDERS:
        costs[c.name] = best_of(
            args.repeats, lambda c=c: run_virtual(contended(c.make, VIRTUAL_RATE, grants))[0]
        )
        _, virtual = run_virtual(contended(c.make, VIRTUAL_RATE, grants))
        print(
            f"  {c.name:<38} {costs[c.name] / total * 1e6:8.1f} us wall per grant"
            f"   {virtual:8.1f} s virtual (ideal {(total - TASKS) / VIRTUAL_RATE:.1f} s)"
        )
    ratio = costs[CONTENDERS[1].name] / costs[CONTENDERS[0].name]
    print(f"  TokenBucketRateLimiter bookkeeping x{ratio:.2f} of baseline")


if __name__ == "__main__":
    main()

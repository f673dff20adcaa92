"""Two processes of one API key pace at one counter (KrakenRateLimiter.share): Kraken
counts a key's calls whoever sends them, and two `tg run` sharing a key, each pacing
alone, were refused with EAPI:Rate limit exceeded. Each "process" here is a limiter of
its own, as a process has, sharing the levels file as two processes would, in virtual
time; their calls are held against Kraken's counter as the docs define it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.domain.clock import LoopClock
from core.exchange.ratelimit import KrakenRateLimiter
from tests.ratelimit.ratelimit_reference import KRAKEN_REST, KRAKEN_TRADING, counter_peaks

virtual_time = pytest.mark.looptime(idle_timeout=0.1)
EPOCH = 1_767_225_600.0
PAIR = "XXBTZUSD"


def processes(count: int, shared: Path | None) -> list[KrakenRateLimiter]:
    limiters = [KrakenRateLimiter("starter", clock=LoopClock(EPOCH)) for _ in range(count)]
    if shared is not None:
        for limiter in limiters:
            limiter.share(shared)
    return limiters


async def calls_of(limiters: list[KrakenRateLimiter], each: int) -> list[tuple[float, float]]:
    grants: list[tuple[float, float]] = []

    async def process(limiter: KrakenRateLimiter) -> None:
        for _ in range(each):
            await limiter.acquire_call("Balance")
            grants.append((asyncio.get_running_loop().time(), 1))

    await asyncio.gather(*(process(limiter) for limiter in limiters))
    return grants


@virtual_time
async def test_two_processes_of_a_key_never_overfill_its_counter(tmp_path: Path) -> None:
    maximum, decay = KRAKEN_REST["starter"]
    grants = await calls_of(processes(2, tmp_path / "key.json"), 40)

    assert len(grants) == 80 and max(counter_peaks(grants, decay)) <= maximum
    await processes(1, tmp_path / "key.json")[0].flush()  # a third process starts from what they left


@virtual_time
async def test_pacing_alone_two_processes_would_overfill_it(tmp_path: Path) -> None:
    """What the sharing prevents: each alone within the counter, together over it."""
    maximum, decay = KRAKEN_REST["starter"]
    grants = await calls_of(processes(2, None), 40)
    assert max(counter_peaks(grants, decay)) > maximum


@virtual_time
async def test_a_process_starts_where_the_last_left_the_counter(tmp_path: Path) -> None:
    [first] = processes(1, tmp_path / "key.json")
    for _ in range(14):  # the starter counter's room, one unit of headroom kept
        assert await first.acquire_call("Balance") == 0
    [second] = processes(1, tmp_path / "key.json")
    assert await second.acquire_call("Balance") > 2  # it waits for the counter's decay


@virtual_time
async def test_order_transactions_share_the_pairs_trading_counter(tmp_path: Path) -> None:
    maximum, decay = KRAKEN_TRADING["starter"]
    grants: list[tuple[float, float]] = []

    async def process(limiter: KrakenRateLimiter) -> None:
        for _ in range(40):
            await limiter.acquire_order(PAIR, "add")
            grants.append((asyncio.get_running_loop().time(), 1))

    await asyncio.gather(*(process(limiter) for limiter in processes(2, tmp_path / "key.json")))
    assert max(counter_peaks(grants, decay)) <= maximum

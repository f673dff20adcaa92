"""TokenBucketRateLimiter: the seed plan's scenarios (Critical Risk #3) plus fairness,
cancellation and penalties, all in virtual time (looptime or VirtualClock)."""

from __future__ import annotations

import asyncio

import looptime
import pytest

from core.domain.clock import VirtualClock
from core.domain.errors import RateLimiterError
from core.exchange.ratelimit import TokenBucketRateLimiter
from tests.virtual_time import elapse

# Fast-forwarded loop time; a limiter that deadlocks fails the test instead of hanging it.
virtual_time = pytest.mark.looptime(idle_timeout=0.1)


def now() -> float:
    return asyncio.get_running_loop().time()


async def timed_acquire(
    limiter: TokenBucketRateLimiter, tokens: float, log: list[tuple[str, float]], name: str
) -> float:
    waited = await limiter.acquire(tokens)
    log.append((name, now()))
    return waited


@virtual_time
class TestSeedScenarios:
    async def test_concurrent_token_acquisition(self) -> None:
        limiter = TokenBucketRateLimiter(rate=10, capacity=10)

        waits = await asyncio.gather(*(limiter.acquire(1) for _ in range(20)))

        assert waits[:10] == [0.0] * 10
        assert waits[10:] == pytest.approx([0.1 * k for k in range(1, 11)], abs=1e-6)
        assert now() == pytest.approx(1.0, abs=1e-6)

    async def test_capacity_overflow_after_long_idle(self) -> None:
        limiter = TokenBucketRateLimiter(rate=10, capacity=10)
        await elapse(10)

        assert limiter.available_tokens == 10
        assert await limiter.acquire(10) == 0.0
        assert await limiter.acquire(1) == pytest.approx(0.1, abs=1e-6)

    async def test_refill_accuracy_over_time(self) -> None:
        limiter = TokenBucketRateLimiter(rate=10, capacity=100)
        assert await limiter.acquire(100) == 0.0

        await elapse(0.35)
        assert limiter.available_tokens == pytest.approx(3.5, abs=1e-6)
        await elapse(4.65)

        assert await limiter.acquire(50) == 0.0
        assert limiter.available_tokens == pytest.approx(0.0, abs=1e-6)

    async def test_burst_then_sustained_rate(self) -> None:
        limiter = TokenBucketRateLimiter(rate=10, capacity=20)

        burst_start = now()
        assert await asyncio.gather(*(limiter.acquire(1) for _ in range(20))) == [0.0] * 20
        assert now() == burst_start

        sustained_start = now()
        waits = await asyncio.gather(*(limiter.acquire(1) for _ in range(100)))
        sustained_time = now() - sustained_start

        assert 9.0 <= sustained_time <= 11.0
        assert sustained_time == pytest.approx(10.0, abs=1e-6)
        assert waits == pytest.approx([0.1 * k for k in range(1, 101)], abs=1e-6)


@virtual_time
class TestFairness:
    async def test_large_request_at_the_head_is_not_starved_by_small_ones(self) -> None:
        limiter = TokenBucketRateLimiter(rate=1, capacity=5)
        await limiter.acquire(5)
        log: list[tuple[str, float]] = []

        big = asyncio.create_task(timed_acquire(limiter, 5, log, "big"))
        await elapse(0.5)
        small = [asyncio.create_task(timed_acquire(limiter, 1, log, f"small{i}")) for i in range(3)]
        await asyncio.gather(big, *small)

        assert [name for name, _ in log] == ["big", "small0", "small1", "small2"]
        assert [at for _, at in log] == pytest.approx([5.0, 6.0, 7.0, 8.0], abs=1e-6)

    async def test_arrivals_are_served_in_order_whatever_their_size(self) -> None:
        limiter = TokenBucketRateLimiter(rate=2, capacity=4)
        await limiter.acquire(4)
        log: list[tuple[str, float]] = []
        sizes = {"a": 1, "b": 4, "c": 0.5, "d": 3}

        await asyncio.gather(*(timed_acquire(limiter, size, log, name) for name, size in sizes.items()))

        assert [name for name, _ in log] == ["a", "b", "c", "d"]
        assert [at for _, at in log] == pytest.approx([0.5, 2.5, 2.75, 4.25], abs=1e-6)

    async def test_newcomer_queues_behind_waiters_even_when_tokens_are_there(self) -> None:
        limiter = TokenBucketRateLimiter(rate=1, capacity=10)
        await limiter.acquire(8)
        head = asyncio.create_task(limiter.acquire(5))
        await elapse(1)  # 3 tokens now: enough for a 1-token newcomer, not for the head

        newcomer_wait = await limiter.acquire(1)

        assert await head == pytest.approx(3.0, abs=1e-6)
        assert newcomer_wait == pytest.approx(3.0, abs=1e-6)  # served at 4 s, after the head


@virtual_time
class TestCancellation:
    async def test_cancelled_head_takes_no_tokens_and_frees_the_queue(self) -> None:
        limiter = TokenBucketRateLimiter(rate=1, capacity=5)
        await limiter.acquire(5)
        log: list[tuple[str, float]] = []
        head = asyncio.create_task(timed_acquire(limiter, 3, log, "head"))
        behind = asyncio.create_task(timed_acquire(limiter, 2, log, "behind"))
        await elapse(1)

        head.cancel()
        await behind

        assert head.cancelled()
        assert [name for name, _ in log] == ["behind"]
        assert log[0][1] == pytest.approx(2.0, abs=1e-6)
        assert limiter.available_tokens == pytest.approx(0.0, abs=1e-6)
        await elapse(3)
        assert limiter.available_tokens == pytest.approx(3.0, abs=1e-6)

    async def test_cancelled_waiter_in_the_middle_is_skipped(self) -> None:
        limiter = TokenBucketRateLimiter(rate=1, capacity=5)
        await limiter.acquire(5)
        log: list[tuple[str, float]] = []
        first = asyncio.create_task(timed_acquire(limiter, 3, log, "first"))
        middle = asyncio.create_task(timed_acquire(limiter, 2, log, "middle"))
        last = asyncio.create_task(timed_acquire(limiter, 1, log, "last"))
        await elapse(0.5)

        middle.cancel()
        await asyncio.gather(first, last)

        assert middle.cancelled()
        assert [name for name, _ in log] == ["first", "last"]
        assert [at for _, at in log] == pytest.approx([3.0, 4.0], abs=1e-6)

    async def test_waiter_cancelled_just_as_its_turn_comes_passes_the_turn_on(self) -> None:
        limiter = TokenBucketRateLimiter(rate=1, capacity=5)
        await limiter.acquire(5)
        log: list[tuple[str, float]] = []
        queued: list[asyncio.Task[float]] = []

        async def first_then_cancel_second() -> None:
            await limiter.acquire(3)
            queued[0].cancel()  # its turn was handed over at this instant; it has not run yet

        first = asyncio.create_task(first_then_cancel_second())
        second = asyncio.create_task(timed_acquire(limiter, 2, log, "second"))
        third = asyncio.create_task(timed_acquire(limiter, 1, log, "third"))
        queued.append(second)
        await asyncio.gather(first, third)

        assert second.cancelled()
        assert [name for name, _ in log] == ["third"]
        assert log[0][1] == pytest.approx(4.0, abs=1e-6)

    async def test_sleeping_head_cancelled_then_queue_keeps_serving(self) -> None:
        limiter = TokenBucketRateLimiter(rate=10, capacity=10)
        await limiter.acquire(10)
        doomed = [asyncio.create_task(limiter.acquire(10)) for _ in range(3)]
        await asyncio.sleep(0)
        for task in doomed:
            task.cancel()

        assert await limiter.acquire(1) == pytest.approx(0.1, abs=1e-6)
        assert all(task.cancelled() for task in doomed)


@virtual_time
class TestRefusals:
    async def test_request_larger_than_capacity_raises_at_once(self) -> None:
        limiter = TokenBucketRateLimiter(rate=10, capacity=10)

        with pytest.raises(RateLimiterError, match="capacity 10.0"):
            await limiter.acquire(10.5)

        assert now() == 0.0
        assert limiter.available_tokens == 10

    @pytest.mark.parametrize("tokens", [0, -1, float("nan")])
    async def test_non_positive_request_is_a_value_error(self, tokens: float) -> None:
        limiter = TokenBucketRateLimiter(rate=10, capacity=10)

        with pytest.raises(ValueError, match="positive"):
            await limiter.acquire(tokens)

    @pytest.mark.parametrize(("rate", "capacity"), [(0, 1), (1, 0), (-1, 1)])
    async def test_bucket_needs_positive_rate_and_capacity(self, rate: float, capacity: float) -> None:
        with pytest.raises(ValueError, match="positive"):
            TokenBucketRateLimiter(rate=rate, capacity=capacity)


@virtual_time
class TestPenalties:
    async def test_penalty_is_a_debt_paid_before_the_next_grant(self) -> None:
        limiter = TokenBucketRateLimiter(rate=1, capacity=5)
        limiter.penalize(7)

        assert limiter.available_tokens == pytest.approx(-2.0)
        assert await limiter.acquire(1) == pytest.approx(3.0, abs=1e-6)

    async def test_penalty_while_a_waiter_sleeps_extends_its_wait(self) -> None:
        limiter = TokenBucketRateLimiter(rate=1, capacity=5)
        await limiter.acquire(5)
        waiter = asyncio.create_task(limiter.acquire(2))
        await elapse(1)

        limiter.penalize(3)

        assert await waiter == pytest.approx(5.0, abs=1e-6)

    async def test_drain_lowers_but_never_raises_the_level(self) -> None:
        limiter = TokenBucketRateLimiter(rate=1, capacity=5)
        limiter.drain(2)
        assert limiter.available_tokens == 2
        limiter.drain(4)
        assert limiter.available_tokens == 2
        limiter.drain(-1)
        assert await limiter.acquire(1) == pytest.approx(2.0, abs=1e-6)

    async def test_negative_penalty_is_refused(self) -> None:
        limiter = TokenBucketRateLimiter(rate=1, capacity=5)
        with pytest.raises(ValueError, match="negative"):
            limiter.penalize(-1)


class TestUncontendedPath:
    def test_acquire_with_tokens_available_completes_without_suspending(self) -> None:
        limiter = TokenBucketRateLimiter(rate=1, capacity=5, clock=VirtualClock())
        coroutine = limiter.acquire(2)

        with pytest.raises(StopIteration) as finished:
            coroutine.send(None)

        assert finished.value.value == 0.0
        assert limiter.available_tokens == 3


class TestBuiltBeforeTheLoop:
    def test_bucket_built_outside_a_loop_starts_full_inside_a_fast_forwarded_one(self) -> None:
        # SystemClock reads real monotonic time here and the loop's (from 0) inside.
        limiter = TokenBucketRateLimiter(rate=10, capacity=10)
        loop = looptime.new_event_loop(start=0, idle_timeout=0.1)

        async def burst_then_one() -> list[float]:
            return [await limiter.acquire(10), await limiter.acquire(1)]

        try:
            waits = loop.run_until_complete(burst_then_one())
        finally:
            loop.close()

        assert waits == [0.0, pytest.approx(0.1, abs=1e-6)]


class TestVirtualClock:
    async def test_sequential_waits_advance_the_virtual_clock_exactly(self) -> None:
        clock = VirtualClock()
        limiter = TokenBucketRateLimiter(rate=4, capacity=2, clock=clock)

        waits = [await limiter.acquire(1) for _ in range(6)]

        assert waits == pytest.approx([0.0, 0.0, 0.25, 0.25, 0.25, 0.25], abs=1e-9)
        assert clock.monotonic() == pytest.approx(1.0, abs=1e-9)

    async def test_refill_follows_clock_advances(self) -> None:
        clock = VirtualClock()
        limiter = TokenBucketRateLimiter(rate=2, capacity=10, clock=clock)
        await limiter.acquire(10)

        clock.advance(3)

        assert limiter.available_tokens == pytest.approx(6.0)
        assert await limiter.acquire(6) == 0.0

"""Properties of TokenBucketRateLimiter over random concurrent schedules, each run on
its own fast-forwarding (looptime) event loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import looptime
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.exchange.ratelimit import TokenBucketRateLimiter
from tests.ratelimit.ratelimit_reference import Request, counter_at, counter_peaks, fifo_bucket_grants
from tests.virtual_time import elapse

TOLERANCE = 1e-6  # tokens
TICKS = 5e-6  # seconds: looptime keeps whole microseconds; a grant may land a tick or two late

schedules = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=20_000).map(lambda ms: ms / 1000),  # arrival, s
        st.sampled_from([0.5, 1, 1, 1, 2, 3, 5, 8]),  # tokens
        st.booleans(),  # to be cancelled if still waiting at the cancel time
    ),
    min_size=1,
    max_size=40,
)
buckets = st.tuples(st.sampled_from([0.33, 1.0, 2.34, 10.0]), st.sampled_from([8, 15, 20]))


@dataclass
class Outcome:
    arrivals: list[tuple[int, Request]]  # in the order the requests reached the limiter
    grants: list[tuple[int, float, float]]  # (request, time, tokens), in grant order
    cancelled: set[int]
    end: float
    tokens_at_end: float


async def run_schedule(
    rate: float, capacity: float, schedule: list[tuple[float, float, bool]], cancel_at: float | None
) -> Outcome:
    limiter = TokenBucketRateLimiter(rate, capacity)
    loop = asyncio.get_running_loop()
    outcome = Outcome([], [], set(), 0.0, 0.0)

    async def client(index: int, arrival: float, tokens: float) -> None:
        await elapse(arrival)
        outcome.arrivals.append((index, Request(loop.time(), tokens)))
        await limiter.acquire(tokens)
        outcome.grants.append((index, loop.time(), tokens))

    tasks = [asyncio.create_task(client(i, arrival, tokens)) for i, (arrival, tokens, _) in enumerate(schedule)]
    if cancel_at is not None:
        await elapse(cancel_at)
        for index, (task, (_, _, doomed)) in enumerate(zip(tasks, schedule, strict=True)):
            if doomed and not task.done():
                task.cancel()
                outcome.cancelled.add(index)
    await asyncio.gather(*tasks, return_exceptions=True)
    outcome.end = loop.time()
    outcome.tokens_at_end = limiter.available_tokens
    return outcome


def run_virtual(
    rate: float, capacity: float, schedule: list[tuple[float, float, bool]], cancel_at: float | None = None
) -> Outcome:
    loop = looptime.new_event_loop(start=0, idle_timeout=0.1)
    try:
        return loop.run_until_complete(run_schedule(rate, capacity, schedule, cancel_at))
    finally:
        loop.close()


@settings(max_examples=60, deadline=None)
@given(bucket=buckets, schedule=schedules)
def test_grants_never_overdraw_and_come_fifo_as_early_as_possible(
    bucket: tuple[float, float], schedule: list[tuple[float, float, bool]]
) -> None:
    rate, capacity = bucket

    outcome = run_virtual(rate, capacity, schedule)

    taken = [(at, tokens) for _, at, tokens in outcome.grants]
    assert len(taken) == len(schedule)
    assert max(counter_peaks(taken, rate)) <= capacity + TOLERANCE
    assert [index for index, _, _ in outcome.grants] == [index for index, _ in outcome.arrivals]
    expected = fifo_bucket_grants([request for _, request in outcome.arrivals], rate, capacity)
    assert [at for _, at, _ in outcome.grants] == pytest.approx(expected, abs=TICKS)


@settings(max_examples=60, deadline=None)
@given(
    bucket=buckets,
    schedule=schedules,
    cancel_at=st.integers(min_value=0, max_value=30_000).map(lambda ms: ms / 1000),
)
def test_cancelled_waiters_take_nothing_and_block_no_one(
    bucket: tuple[float, float], schedule: list[tuple[float, float, bool]], cancel_at: float
) -> None:
    rate, capacity = bucket

    outcome = run_virtual(rate, capacity, schedule, cancel_at)

    granted = [index for index, _, _ in outcome.grants]
    assert sorted(granted) == sorted(set(range(len(schedule))) - outcome.cancelled)
    arrived_in_line = [index for index, _ in outcome.arrivals if index not in outcome.cancelled]
    assert granted == arrived_in_line
    taken = [(at, tokens) for _, at, tokens in outcome.grants]
    if taken:
        assert max(counter_peaks(taken, rate)) <= capacity + TOLERANCE
    expected_tokens = capacity - counter_at(taken, rate, outcome.end)
    assert outcome.tokens_at_end == pytest.approx(expected_tokens, abs=TOLERANCE)

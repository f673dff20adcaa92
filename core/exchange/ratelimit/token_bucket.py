"""A first-come-first-served token bucket on an injected clock.

Why not aiolimiter: its waiters are served smallest request first, so a large
request (a Kraken cancel costs up to 8) can starve behind a stream of small ones; it
reads the loop's clock directly, so a VirtualClock cannot drive it; and under looptime
it can spin forever once its level carries a float residue (see _MIN_SLEEP_S).
"""

from __future__ import annotations

import asyncio
from collections import deque

from core.domain.clock import Clock, SystemClock
from core.domain.errors import RateLimiterError

# Refill arithmetic in floats leaves a request short by ~1e-16 after sleeping the
# exact deficit; a shortfall this small is rounding, not a reason to sleep again.
_ROUNDING = 1e-9
# The event loop runs a timer due within its clock's resolution (1 ns) at once, and
# looptime keeps whole microseconds: a shorter sleep would not move the clock, and the
# waiter would spin forever on a shortfall it can never refill.
_MIN_SLEEP_S = 1e-6


class TokenBucketRateLimiter:
    """Up to `capacity` tokens, refilled continuously at `rate` tokens per second.

    The bucket starts full. Waiters are served strictly in arrival order; a waiter
    cancelled while queued takes no tokens and hands its turn to the next one.
    """

    __slots__ = ("_capacity", "_clock", "_last", "_monotonic", "_rate", "_tokens", "_waiters")

    def __init__(self, rate: float, capacity: float, *, clock: Clock | None = None) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError(f"rate and capacity must be positive, got rate={rate} capacity={capacity}")
        self._rate = float(rate)
        self._capacity = float(capacity)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._monotonic = self._clock.monotonic
        self._tokens = self._capacity
        self._last = self._monotonic()
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def capacity(self) -> float:
        return self._capacity

    @property
    def available_tokens(self) -> float:
        """Tokens in the bucket now; negative while a penalty is being paid off."""
        elapsed = max(0.0, self._monotonic() - self._last)
        return min(self._capacity, self._tokens + elapsed * self._rate)

    async def acquire(self, tokens: float = 1) -> float:
        """Take `tokens`, waiting for them if needed; returns the seconds waited."""
        if not tokens > 0:
            raise ValueError(f"tokens must be positive, got {tokens}")
        if tokens > self._capacity:
            raise RateLimiterError(
                f"a request for {tokens} tokens can never be served by a bucket of capacity "
                f"{self._capacity}; split the request or raise the capacity"
            )
        if not self._waiters:
            # _refill() inlined, without min(): this is the path every call takes while within
            # limits, and the method call and min() add ~150 ns to its ~500.
            now = self._monotonic()
            elapsed = now - self._last
            self._last = now
            if elapsed > 0:
                level = self._tokens + elapsed * self._rate
                self._tokens = level if level < self._capacity else self._capacity
            if self._tokens >= tokens:
                self._tokens -= tokens
                return 0.0
        return await self._wait_in_line(tokens)

    def penalize(self, tokens: float) -> None:
        """Remove tokens without waiting: the exchange counted calls this bucket did not see."""
        if tokens < 0:
            raise ValueError(f"a penalty cannot be negative, got {tokens}")
        self._refill()
        self._tokens -= tokens

    def drain(self, level: float = 0.0) -> None:
        """Lower the bucket to at most `level` tokens; below zero is a debt the refill pays first."""
        self._refill()
        self._tokens = min(self._tokens, level)

    def _refill(self) -> None:
        # SystemClock reads real monotonic time outside an event loop and the loop's time
        # inside one, so a bucket built before the loop ran may see its clock jump, even
        # backwards (looptime starts at 0): time that ran backwards refills nothing.
        now = self._monotonic()
        elapsed = now - self._last
        self._last = now
        if elapsed > 0:
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)

    async def _wait_in_line(self, tokens: float) -> float:
        start = self._monotonic()
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            if self._waiters[0] is not turn:
                await turn
            while True:
                self._refill()
                shortfall = tokens - self._tokens
                if shortfall <= _ROUNDING:
                    break
                await self._clock.sleep(max(shortfall / self._rate, _MIN_SLEEP_S))
            self._tokens -= tokens
        finally:
            self._leave_line(turn)
        return self._monotonic() - start

    def _leave_line(self, turn: asyncio.Future[None]) -> None:
        if self._waiters[0] is turn:
            self._waiters.popleft()
            if self._waiters and not self._waiters[0].done():
                self._waiters[0].set_result(None)
        else:
            self._waiters.remove(turn)

"""Time, injected: everything time-dependent takes a Clock so tests and simulations
control it.

- SystemClock is real time. Its monotonic reading follows the running event loop,
  so under a fast-forwarding loop (looptime) concurrent sleeps are exact and instant.
- VirtualClock moves only when told: advance() jumps, sleep() advances by the
  delay. It suits sequential flows (a simulated trade cycle, a replay).
- SkippableSystemClock is real time that a served sandbox's control plane can jump
  forward, so `tg simulate --url` can run its market on.
- LoopClock reads wall time from the event loop too, for concurrent virtual-time
  runs (tg ratelimit-stress) where the exchange's clock must follow tg's waits.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the Unix epoch."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards, for measuring intervals."""

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds` of this clock's time."""


def _loop_time() -> float | None:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return None


class SystemClock:
    """Real time; monotonic time is the event loop's when one runs."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        loop_time = _loop_time()
        return time.monotonic() if loop_time is None else loop_time

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SkippableSystemClock(SystemClock):
    """Real time that can also jump ahead and stand still: a served sandbox follows the
    wall clock, and its control plane can still move its market (and its counters'
    decay) forward, or freeze it so that nothing moves but by `advance`.

    `start` sets where it reads now (default: the wall clock's now); `frozen` starts it
    standing still. Frozen, `sleep` moves it as a VirtualClock's does."""

    def __init__(self, start: float | None = None, *, frozen: bool = False) -> None:
        self._skipped = 0.0 if start is None else start - super().time()
        self._mono_skipped = 0.0
        self._frozen: tuple[float, float] | None = None
        """While frozen, the readings it holds (exactly `start` when frozen from it)."""
        if frozen:
            self._frozen = (super().time() + self._skipped if start is None else start, self.monotonic())

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def time(self) -> float:
        return self._frozen[0] if self._frozen is not None else super().time() + self._skipped

    def monotonic(self) -> float:
        return self._frozen[1] if self._frozen is not None else super().monotonic() + self._mono_skipped

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        if self._frozen is not None:
            self._frozen = (self._frozen[0] + seconds, self._frozen[1] + seconds)
        else:
            self._skipped += seconds
            self._mono_skipped += seconds

    def freeze(self) -> None:
        """Stand still from now on (again: no change)."""
        if self._frozen is None:
            self._frozen = (self.time(), self.monotonic())

    def release(self) -> None:
        """Run with the wall clock again, on from where it stood (no jump)."""
        if self._frozen is None:
            return
        held_time, held_mono = self._frozen
        self._frozen = None
        self._skipped = held_time - super().time()
        self._mono_skipped = held_mono - super().monotonic()

    async def sleep(self, seconds: float) -> None:
        if self._frozen is None:
            await super().sleep(seconds)
            return
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


class VirtualClock:
    """Time that moves only when advanced; sleeping advances it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._epoch = float(start)
        self._elapsed = 0.0

    def time(self) -> float:
        return self._epoch + self._elapsed

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._elapsed += seconds

    def set_time(self, epoch_seconds: float) -> None:
        """Move to an absolute time, never backwards."""
        self.advance(max(0.0, epoch_seconds - self.time()))

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


class LoopClock:
    """Both readings follow the running event loop, wall time included, so under a
    fast-forwarding loop (looptime) the sandbox's market, its order ages and its rate
    counters move with the client's virtual waits, exactly and instantly."""

    def __init__(self, epoch: float) -> None:
        self._epoch = epoch

    def time(self) -> float:
        return self._epoch + self.monotonic()

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

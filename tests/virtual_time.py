"""Waiting in tests, on virtual time only.

A test that lets time pass calls `elapse`, never `asyncio.sleep` with a duration: it
refuses to run on a loop whose time is the wall clock, so a test that lost its
`looptime` mark fails at once instead of quietly sleeping (slow, and flaky).
"""

from __future__ import annotations

import asyncio

import looptime


class RealTimeLoopError(AssertionError):
    """The test would sleep on the wall clock."""


async def elapse(seconds: float) -> None:
    """Let `seconds` of loop time pass: instantly, under a fast-forwarding loop."""
    loop = asyncio.get_running_loop()
    if not (isinstance(loop, looptime.LoopTimeEventLoop) and loop.looptime_on):
        raise RealTimeLoopError(f"elapse({seconds}) on a real-time loop: mark the test with @pytest.mark.looptime")
    await asyncio.sleep(seconds)

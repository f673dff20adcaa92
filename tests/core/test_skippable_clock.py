"""The served sandbox's clock: real time that jumps ahead, and stands still when frozen."""

from __future__ import annotations

from core.domain.clock import SkippableSystemClock


def test_frozen_from_a_start_it_reads_exactly_that_until_advanced() -> None:
    clock = SkippableSystemClock(1_767_225_600.0, frozen=True)
    held = clock.monotonic()

    assert clock.time() == clock.time() == 1_767_225_600.0
    clock.advance(90)
    assert (clock.time(), clock.monotonic()) == (1_767_225_690.0, held + 90)


def test_released_it_runs_on_from_where_it_stood_and_freezes_again() -> None:
    clock = SkippableSystemClock(1_767_225_600.0, frozen=True)
    clock.release()
    assert not clock.frozen
    running = clock.time()
    assert 1_767_225_600.0 <= running < 1_767_225_601.0
    clock.freeze()
    stood = clock.time()
    assert stood >= running and clock.time() == stood


async def test_frozen_sleeping_moves_it_at_once() -> None:
    clock = SkippableSystemClock(1_767_225_600.0, frozen=True)
    await clock.sleep(30)
    assert clock.time() == 1_767_225_630.0

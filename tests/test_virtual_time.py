"""The tests' only way to let time pass refuses the wall clock."""

from __future__ import annotations

import asyncio

import pytest

from tests.virtual_time import RealTimeLoopError, elapse


def test_elapse_refuses_a_real_time_loop() -> None:
    with pytest.raises(RealTimeLoopError, match="looptime"):
        asyncio.run(elapse(3600))


@pytest.mark.looptime
async def test_elapse_moves_virtual_time_only() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await elapse(3600)
    assert loop.time() - started == pytest.approx(3600)

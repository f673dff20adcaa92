"""Buses made per test and closed afterwards, so no worker outlives its test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from core.decision.bus import MessageBus
from core.domain.clock import Clock
from tests.bus.bus_recorders import MakeBus


@pytest.fixture
async def make_bus() -> AsyncIterator[MakeBus]:
    made: list[MessageBus] = []

    def make(config: Mapping[str, Any] | None = None, *, clock: Clock | None = None) -> MessageBus:
        made.append(MessageBus(config, clock=clock))
        return made[-1]

    yield make
    for bus in made:  # a failed test can leave a handler stuck at its gate: bound the wait
        async with asyncio.timeout(2):
            await bus.close(timeout=1)


@pytest.fixture
def bus(make_bus: MakeBus) -> MessageBus:
    return make_bus()

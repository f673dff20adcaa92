"""Handlers that record what reached them, and a message builder, for the bus tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.decision.bus import Message, MessageBus, MessageTopic, create_message
from core.domain.clock import Clock
from tests.virtual_time import elapse

MakeBus = Callable[..., MessageBus]


def indexed(
    i: int,
    topic: MessageTopic = MessageTopic.TA_SIGNALS,
    *,
    ttl_seconds: float | None = None,
    clock: Clock | None = None,
) -> Message:
    return create_message(topic, "test", {"i": i}, ttl_seconds=ttl_seconds, clock=clock)


class Recorder:
    """Records each message's payload index in arrival order. With a `gate`, every
    call waits for it to open; with a `delay`, every call sleeps (use under looptime)."""

    def __init__(self, *, gate: asyncio.Event | None = None, delay: float = 0.0) -> None:
        self.gate = gate
        self.delay = delay
        self.received: list[int] = []
        self.started = asyncio.Event()
        self.cancelled = False

    async def __call__(self, message: Message) -> None:
        self.started.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.delay:
                await elapse(self.delay)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.received.append(message.payload["i"])

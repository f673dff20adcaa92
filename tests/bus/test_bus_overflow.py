"""What happens when a subscriber falls behind a bounded queue: block, drop_oldest,
drop_newest, and bad configuration."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.decision.bus import BusConfig, Message, MessageBus, MessageTopic, OverflowPolicy
from core.domain.errors import ConfigError
from tests.bus.bus_recorders import MakeBus, Recorder, indexed

pytestmark = pytest.mark.looptime  # a deadlock hits its asyncio.timeout at once, not a hang


async def fill(bus: MessageBus, stuck: Recorder, count: int) -> list[int]:
    """Publish `count` messages once the stuck subscriber holds the first in its handler;
    return what each publish reported."""
    queued = [await bus.publish(indexed(0))]
    await stuck.started.wait()
    for i in range(1, count):
        queued.append(await bus.publish(indexed(i)))
    return queued


async def settle() -> None:
    """Let every ready task run (no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_block_makes_the_publisher_wait_and_loses_nothing(make_bus: MakeBus) -> None:
    bus = make_bus({"max_queue_size": 2, "overflow_policy": "block"})
    gate = asyncio.Event()
    stuck, free = Recorder(gate=gate), Recorder()
    await bus.subscribe("stuck", MessageTopic.TA_SIGNALS, stuck)
    await bus.subscribe("free", MessageTopic.TA_SIGNALS, free)
    await fill(bus, stuck, 3)  # one in the handler, two queued: full

    blocked = asyncio.create_task(bus.publish(indexed(3)))
    await settle()

    assert not blocked.done()
    assert free.received == [0, 1, 2, 3]  # the free one is not held back
    assert bus.stats()["stuck"].queued == 3
    gate.set()
    assert await blocked == 2
    await bus.drain()
    assert stuck.received == [0, 1, 2, 3]
    assert bus.stats()["stuck"].dropped == 0


async def test_blocked_publishers_go_in_the_order_they_published(make_bus: MakeBus) -> None:
    bus = make_bus({"max_queue_size": 1})
    gate = asyncio.Event()
    stuck = Recorder(gate=gate)
    await bus.subscribe("stuck", MessageTopic.TA_SIGNALS, stuck)
    await fill(bus, stuck, 2)

    blocked = [asyncio.create_task(bus.publish(indexed(i))) for i in range(2, 6)]
    await settle()
    late = asyncio.create_task(bus.publish(indexed(6)))
    await settle()
    assert not any(task.done() for task in (*blocked, late))

    gate.set()
    await asyncio.gather(*blocked, late)
    await bus.drain()
    assert stuck.received == list(range(7))


async def test_drop_newest_discards_what_does_not_fit_and_counts_it(make_bus: MakeBus) -> None:
    bus = make_bus({"max_queue_size": 2, "overflow_policy": "drop_newest"})
    gate = asyncio.Event()
    stuck = Recorder(gate=gate)
    await bus.subscribe("stuck", MessageTopic.TA_SIGNALS, stuck)

    assert await fill(bus, stuck, 5) == [1, 1, 1, 0, 0]
    gate.set()
    await bus.drain()

    assert stuck.received == [0, 1, 2]
    assert bus.stats()["stuck"].dropped == 2


async def test_drop_oldest_keeps_the_newest_and_counts_the_rest(make_bus: MakeBus) -> None:
    bus = make_bus({"max_queue_size": 2, "overflow_policy": "drop_oldest"})
    gate = asyncio.Event()
    stuck = Recorder(gate=gate)
    await bus.subscribe("stuck", MessageTopic.TA_SIGNALS, stuck)

    assert await fill(bus, stuck, 5) == [1, 1, 1, 1, 1]
    gate.set()
    await bus.drain()

    assert stuck.received == [0, 3, 4]
    stats = bus.stats()["stuck"]
    assert (stats.delivered, stats.dropped, stats.queued) == (3, 2, 0)


async def test_a_handler_publishing_into_its_own_full_queue_does_not_deadlock(make_bus: MakeBus) -> None:
    bus = make_bus({"max_queue_size": 1})
    seen: list[int] = []

    async def fan_out(message: Message) -> None:
        seen.append(message.payload["i"])
        if message.payload["i"] == 0:
            for i in range(1, 4):
                await bus.publish(indexed(i))

    await bus.subscribe("echo", MessageTopic.TA_SIGNALS, fan_out)
    await bus.publish(indexed(0))
    async with asyncio.timeout(1):
        await bus.drain()

    assert seen == [0, 1, 2, 3]
    assert bus.stats()["echo"].failed == 0


async def test_unsubscribing_releases_a_blocked_publisher(make_bus: MakeBus) -> None:
    bus = make_bus({"max_queue_size": 1})
    gate = asyncio.Event()
    stuck = Recorder(gate=gate)
    await bus.subscribe("stuck", MessageTopic.TA_SIGNALS, stuck)
    await fill(bus, stuck, 2)
    blocked = asyncio.create_task(bus.publish(indexed(2)))
    await settle()

    async with asyncio.timeout(1):
        await bus.unsubscribe("stuck")
        assert await blocked == 0
    assert stuck.received == []


async def test_a_cancelled_publisher_withdraws_its_message_from_every_full_queue(
    make_bus: MakeBus,
) -> None:
    bus = make_bus({"max_queue_size": 1})
    gate = asyncio.Event()
    first, second = Recorder(gate=gate), Recorder(gate=gate)
    await bus.subscribe("first", MessageTopic.TA_SIGNALS, first)
    await bus.subscribe("second", MessageTopic.TA_SIGNALS, second)
    await fill(bus, first, 2)
    await second.started.wait()
    blocked = asyncio.create_task(bus.publish(indexed(2)))
    await settle()

    blocked.cancel()
    await settle()
    assert blocked.cancelled()
    assert {sid: s.queued for sid, s in bus.stats().items()} == {"first": 1, "second": 1}
    gate.set()
    async with asyncio.timeout(1):
        await bus.publish(indexed(3))
        await bus.drain()
    assert first.received == second.received == [0, 1, 3]


def test_defaults_lose_nothing() -> None:
    config = BusConfig()
    assert config.overflow_policy is OverflowPolicy.BLOCK
    assert config.max_queue_size == 0
    assert config.max_history_size == 1000


@pytest.mark.parametrize(
    "config",
    [
        {"max_queue_size": -1},
        {"max_history_size": -5},
        {"overflow_policy": "drop_everything"},
        {"max_history": 10},
    ],
)
def test_bad_configuration_is_a_config_error(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="message bus configuration"):
        MessageBus(config)

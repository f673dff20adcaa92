"""Subscribing, unsubscribing, draining and closing."""

from __future__ import annotations

import asyncio

import pytest

from core.decision.bus import Message, MessageBus, MessageTopic
from tests.bus.bus_recorders import Recorder, indexed

pytestmark = pytest.mark.looptime  # a deadlock hits its asyncio.timeout at once, not a hang


async def test_unsubscribe_stops_delivery(bus: MessageBus) -> None:
    recorder, other = Recorder(), Recorder()
    await bus.subscribe("s", MessageTopic.TA_SIGNALS, recorder)
    await bus.subscribe("other", MessageTopic.TA_SIGNALS, other)
    for i in range(3):
        await bus.publish(indexed(i))
    await bus.drain()

    async with asyncio.timeout(1):
        await bus.unsubscribe("s")
    for i in range(3, 6):
        assert await bus.publish(indexed(i)) == 1
    await bus.drain()

    assert recorder.received == [0, 1, 2]
    assert other.received == list(range(6))
    assert "s" not in bus.stats()


async def test_unsubscribing_one_topic_keeps_the_others(bus: MessageBus) -> None:
    recorder = Recorder()
    await bus.subscribe("s", MessageTopic.TA_SIGNALS, recorder)
    await bus.subscribe("s", MessageTopic.REGIME_UPDATES, recorder)

    await bus.unsubscribe("s", MessageTopic.TA_SIGNALS)
    await bus.publish(indexed(1, MessageTopic.TA_SIGNALS))
    await bus.publish(indexed(2, MessageTopic.REGIME_UPDATES))
    await bus.drain()

    assert recorder.received == [2]
    assert bus.stats()["s"].delivered == 1


async def test_unsubscribing_a_topic_discards_its_queued_messages(bus: MessageBus) -> None:
    gate = asyncio.Event()
    recorder = Recorder(gate=gate)
    await bus.subscribe("s", MessageTopic.TA_SIGNALS, recorder)
    await bus.subscribe("s", MessageTopic.REGIME_UPDATES, recorder)
    await bus.publish(indexed(0, MessageTopic.REGIME_UPDATES))
    await recorder.started.wait()
    await bus.publish(indexed(1, MessageTopic.TA_SIGNALS))
    await bus.publish(indexed(2, MessageTopic.REGIME_UPDATES))

    await bus.unsubscribe("s", MessageTopic.TA_SIGNALS)
    gate.set()
    await bus.drain()

    assert recorder.received == [0, 2]
    stats = bus.stats()["s"]
    assert (stats.delivered, stats.dropped) == (2, 1)


async def test_one_subscriber_on_several_topics_gets_them_in_publish_order(bus: MessageBus) -> None:
    recorder = Recorder()
    topics = [MessageTopic.TA_SIGNALS, MessageTopic.REGIME_UPDATES, MessageTopic.RISK_ALERTS]
    for topic in topics:
        await bus.subscribe("coordinator", topic, recorder)

    for i in range(30):
        await bus.publish(indexed(i, topics[i % 3]))
    await bus.drain()

    assert recorder.received == list(range(30))


async def test_unsubscribe_discards_the_backlog_and_stops_the_handler(bus: MessageBus) -> None:
    stuck = Recorder(gate=asyncio.Event())
    await bus.subscribe("stuck", MessageTopic.TA_SIGNALS, stuck)
    for i in range(4):
        await bus.publish(indexed(i))
    await stuck.started.wait()

    async with asyncio.timeout(1):
        await bus.unsubscribe("stuck")
        await bus.drain()

    assert stuck.cancelled
    assert stuck.received == []


async def test_a_handler_can_unsubscribe_its_own_subscriber(bus: MessageBus) -> None:
    handled: list[str] = []

    async def once(message: Message) -> None:
        handled.append(f"start {message.payload['i']}")
        await bus.unsubscribe("once")
        handled.append(f"end {message.payload['i']}")

    await bus.subscribe("once", MessageTopic.COORDINATOR_COMMANDS, once)
    for i in range(3):
        await bus.publish(indexed(i, MessageTopic.COORDINATOR_COMMANDS))
    async with asyncio.timeout(1):
        await bus.drain()

    assert handled == ["start 0", "end 0"]
    assert await bus.publish(indexed(3, MessageTopic.COORDINATOR_COMMANDS)) == 0
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "bus-subscriber-once"]


async def test_subscribing_twice_to_a_topic_is_refused(bus: MessageBus) -> None:
    await bus.subscribe("s", MessageTopic.TA_SIGNALS, Recorder())
    with pytest.raises(ValueError, match="already subscribes"):
        await bus.subscribe("s", MessageTopic.TA_SIGNALS, Recorder())


async def test_a_synchronous_handler_is_refused(bus: MessageBus) -> None:
    def not_async(message: Message) -> None:
        return None

    with pytest.raises(TypeError, match="async callable"):
        await bus.subscribe("s", MessageTopic.TA_SIGNALS, not_async)  # type: ignore[arg-type]


async def test_close_drains_then_refuses_publishing() -> None:
    bus = MessageBus()
    recorder = Recorder()

    async def yielding(message: Message) -> None:
        await asyncio.sleep(0)
        await recorder(message)

    await bus.subscribe("s", MessageTopic.EXECUTION_EVENTS, yielding)
    for i in range(100):
        await bus.publish(indexed(i, MessageTopic.EXECUTION_EVENTS))

    await bus.close()

    assert recorder.received == list(range(100))
    assert bus.stats()["s"].delivered == 100
    with pytest.raises(RuntimeError, match="closed"):
        await bus.publish(indexed(100, MessageTopic.EXECUTION_EVENTS))
    with pytest.raises(RuntimeError, match="closed"):
        await bus.subscribe("late", MessageTopic.EXECUTION_EVENTS, recorder)
    await bus.close()  # a second close is harmless


async def test_leaving_the_context_closes_the_bus() -> None:
    recorder = Recorder()
    async with MessageBus() as bus:
        await bus.subscribe("s", MessageTopic.SYSTEM_EVENTS, recorder)
        await bus.publish(indexed(1, MessageTopic.SYSTEM_EVENTS))

    assert recorder.received == [1]
    with pytest.raises(RuntimeError, match="closed"):
        await bus.publish(indexed(2, MessageTopic.SYSTEM_EVENTS))


async def test_close_with_a_timeout_stops_a_hung_subscriber() -> None:
    loop = asyncio.get_running_loop()
    bus = MessageBus()
    hung = Recorder(gate=asyncio.Event())
    await bus.subscribe("hung", MessageTopic.TA_SIGNALS, hung)
    for i in range(5):
        await bus.publish(indexed(i))
    start = loop.time()

    async with asyncio.timeout(10):
        await bus.close(timeout=5)

    assert loop.time() - start == pytest.approx(5)
    assert hung.cancelled
    stats = bus.stats()["hung"]
    assert (stats.delivered, stats.dropped, stats.queued) == (0, 4, 0)


async def test_a_concurrent_close_waits_for_the_first_to_finish() -> None:
    bus = MessageBus()
    gate = asyncio.Event()
    slow = Recorder(gate=gate)
    await bus.subscribe("s", MessageTopic.TA_SIGNALS, slow)
    await bus.publish(indexed(0))
    first = asyncio.create_task(bus.close())
    second = asyncio.create_task(bus.close())
    for _ in range(5):
        await asyncio.sleep(0)

    assert not second.done()
    gate.set()
    await asyncio.gather(first, second)
    assert slow.received == [0]


async def test_drain_or_close_from_inside_a_handler_is_refused(bus: MessageBus) -> None:
    refusals: list[str] = []

    async def impatient(message: Message) -> None:
        for action in (bus.drain, bus.close):
            try:
                await action()
            except RuntimeError as exc:
                refusals.append(str(exc))

    await bus.subscribe("s", MessageTopic.SYSTEM_EVENTS, impatient)
    await bus.publish(indexed(0, MessageTopic.SYSTEM_EVENTS))
    async with asyncio.timeout(1):
        await bus.drain()

    assert len(refusals) == 2
    assert all("inside a handler" in text for text in refusals)
    assert await bus.publish(indexed(1, MessageTopic.SYSTEM_EVENTS)) == 1

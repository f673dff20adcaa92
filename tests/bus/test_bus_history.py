"""Bounded history, latest value per topic, and TTL expiry on delivery."""

from __future__ import annotations

import pytest

from core.decision.bus import MessageBus, MessageTopic
from core.domain.clock import VirtualClock
from tests.bus.bus_recorders import MakeBus, Recorder, indexed


async def test_history_keeps_the_most_recent_in_publish_order(make_bus: MakeBus) -> None:
    bus = make_bus({"max_history_size": 5})
    for i in range(12):
        await bus.publish(indexed(i))

    history = await bus.get_history()
    assert [m.payload["i"] for m in history] == [7, 8, 9, 10, 11]


async def test_history_records_messages_nobody_subscribed_to(bus: MessageBus) -> None:
    await bus.publish(indexed(0, MessageTopic.SYSTEM_EVENTS))
    assert [m.payload["i"] for m in await bus.get_history()] == [0]


async def test_history_filters_by_topic_and_limits_to_the_newest(bus: MessageBus) -> None:
    for i in range(10):
        topic = MessageTopic.TA_SIGNALS if i % 2 else MessageTopic.REGIME_UPDATES
        await bus.publish(indexed(i, topic))

    ta = await bus.get_history(MessageTopic.TA_SIGNALS)
    assert [m.payload["i"] for m in ta] == [1, 3, 5, 7, 9]
    newest = await bus.get_history(MessageTopic.TA_SIGNALS, limit=2)
    assert [m.payload["i"] for m in newest] == [7, 9]
    assert await bus.get_history(limit=0) == []
    assert len(await bus.get_history(limit=100)) == 10
    with pytest.raises(ValueError, match="limit"):
        await bus.get_history(limit=-1)


async def test_get_latest_is_the_last_published_per_topic(bus: MessageBus) -> None:
    assert bus.get_latest(MessageTopic.MARKET_DATA) is None
    for i in range(3):
        await bus.publish(indexed(i, MessageTopic.MARKET_DATA))
    await bus.publish(indexed(99, MessageTopic.REGIME_UPDATES))

    latest = bus.get_latest(MessageTopic.MARKET_DATA)
    assert latest is not None and latest.payload["i"] == 2
    assert bus.get_latest(MessageTopic.TA_SIGNALS) is None


async def test_get_latest_outlives_the_history_bound(make_bus: MakeBus) -> None:
    bus = make_bus({"max_history_size": 1})
    await bus.publish(indexed(1, MessageTopic.REGIME_UPDATES))
    await bus.publish(indexed(2, MessageTopic.MARKET_DATA))

    latest = bus.get_latest(MessageTopic.REGIME_UPDATES)
    assert latest is not None and latest.payload["i"] == 1


async def test_get_latest_hides_an_expired_message(make_bus: MakeBus) -> None:
    clock = VirtualClock()
    bus = make_bus(clock=clock)
    await bus.publish(indexed(1, MessageTopic.MARKET_DATA, ttl_seconds=10, clock=clock))
    clock.advance(9)
    assert bus.get_latest(MessageTopic.MARKET_DATA) is not None
    clock.advance(1)
    assert bus.get_latest(MessageTopic.MARKET_DATA) is None


async def test_expired_messages_are_not_delivered_but_counted(make_bus: MakeBus) -> None:
    clock = VirtualClock()
    bus = make_bus(clock=clock)
    recorder = Recorder()
    await bus.subscribe("s", MessageTopic.MARKET_DATA, recorder)

    await bus.publish(indexed(0, MessageTopic.MARKET_DATA, ttl_seconds=5, clock=clock))
    await bus.publish(indexed(1, MessageTopic.MARKET_DATA, ttl_seconds=60, clock=clock))
    await bus.publish(indexed(2, MessageTopic.MARKET_DATA, clock=clock))
    clock.advance(30)  # before the worker has run: the first is stale on arrival
    await bus.drain()

    assert recorder.received == [1, 2]
    stats = bus.stats()["s"]
    assert (stats.delivered, stats.expired, stats.dropped) == (2, 1, 0)

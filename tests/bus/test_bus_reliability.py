"""The seed's Critical Risk #2 (orchestration deadlocks): the message bus under load,
with crashing, slow and concurrent participants. drain() replaces the seed's sleeps."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from core.decision.bus import Message, MessageBus, MessageTopic, create_message
from tests.bus.bus_recorders import MakeBus, Recorder, indexed

pytestmark = pytest.mark.looptime  # a deadlock hits its asyncio.timeout at once, not a hang


class TestMessageBusReliability:
    """Integration tests for message bus under load."""

    async def test_message_bus_1000_messages_no_loss(self, make_bus: MakeBus) -> None:
        message_bus = make_bus(config={"max_history_size": 2000})
        received_counts = {f"subscriber-{i}": 0 for i in range(10)}

        def handler(subscriber_id: str) -> Any:
            async def _handler(msg: Message) -> None:
                received_counts[subscriber_id] += 1

            return _handler

        for i in range(10):
            await message_bus.subscribe(
                subscriber_id=f"subscriber-{i}",
                topic=MessageTopic.TA_SIGNALS,
                handler=handler(f"subscriber-{i}"),
            )
        for i in range(1000):
            msg = create_message(topic=MessageTopic.TA_SIGNALS, source="test", payload={"index": i})
            await message_bus.publish(msg)

        await message_bus.drain()

        for subscriber_id, count in received_counts.items():
            assert count == 1000, f"{subscriber_id} received {count}/1000"
        assert len(await message_bus.get_history()) == 1000

    async def test_message_bus_subscriber_crash_doesnt_block(
        self, bus: MessageBus, caplog: pytest.LogCaptureFixture
    ) -> None:
        received = {"good": 0}

        async def crashing_handler(msg: Message) -> None:
            raise Exception("Subscriber crashed!")

        async def good_handler(msg: Message) -> None:
            received["good"] += 1

        await bus.subscribe("crash", MessageTopic.TA_SIGNALS, crashing_handler)
        await bus.subscribe("good", MessageTopic.TA_SIGNALS, good_handler)

        with caplog.at_level(logging.ERROR, logger="core.decision.bus"):
            for _ in range(10):
                await bus.publish(create_message(MessageTopic.TA_SIGNALS, "test", {}))
            async with asyncio.timeout(1):
                await bus.drain()

        assert received["good"] == 10
        assert bus.stats()["crash"].failed == 10
        assert bus.stats()["crash"].delivered == 0
        assert len(caplog.records) == 10
        assert "Subscriber crashed!" in caplog.text

    async def test_10000_messages_reach_10_subscribers_complete_and_in_order(self, bus: MessageBus) -> None:
        recorders = [Recorder() for _ in range(10)]
        for n, recorder in enumerate(recorders):
            await bus.subscribe(f"s{n}", MessageTopic.MARKET_DATA, recorder)

        for i in range(10_000):
            assert await bus.publish(indexed(i, MessageTopic.MARKET_DATA)) == 10
        await bus.drain()

        for recorder in recorders:
            assert recorder.received == list(range(10_000))
        for stats in bus.stats().values():
            assert (stats.delivered, stats.dropped, stats.queued) == (10_000, 0, 0)

    async def test_a_crashing_handler_keeps_its_worker_and_its_order(self, bus: MessageBus) -> None:
        handled: list[int] = []

        async def fails_on_odd(message: Message) -> None:
            if message.payload["i"] % 2:
                raise ValueError("odd")
            handled.append(message.payload["i"])

        await bus.subscribe("flaky", MessageTopic.TA_SIGNALS, fails_on_odd)
        for i in range(10):
            await bus.publish(indexed(i))
        await bus.drain()

        assert handled == [0, 2, 4, 6, 8]
        assert (bus.stats()["flaky"].delivered, bus.stats()["flaky"].failed) == (5, 5)

    async def test_a_handler_raising_cancelled_error_is_a_failure_not_a_stop(self, bus: MessageBus) -> None:
        recorder = Recorder()

        async def cancels_on_first(message: Message) -> None:
            if message.payload["i"] == 0:
                raise asyncio.CancelledError
            await recorder(message)

        await bus.subscribe("s", MessageTopic.TA_SIGNALS, cancels_on_first)
        for i in range(3):
            await bus.publish(indexed(i))
        async with asyncio.timeout(1):
            await bus.drain()

        assert recorder.received == [1, 2]
        assert bus.stats()["s"].failed == 1

    async def test_a_slow_subscriber_does_not_delay_the_others(self, bus: MessageBus) -> None:
        loop = asyncio.get_running_loop()
        slow = Recorder(delay=1.0)
        fast = [Recorder() for _ in range(3)]
        fast_done_at: list[float] = []
        await bus.subscribe("slow", MessageTopic.TA_SIGNALS, slow)
        for n, recorder in enumerate(fast):
            await bus.subscribe(f"fast{n}", MessageTopic.TA_SIGNALS, recorder)

        async def last_fast_message(message: Message) -> None:
            if message.payload["i"] == 99:
                fast_done_at.append(loop.time())

        await bus.subscribe("watch", MessageTopic.TA_SIGNALS, last_fast_message)
        start = loop.time()
        for i in range(100):
            await bus.publish(indexed(i))
        await bus.drain()

        assert fast_done_at == [start]
        assert loop.time() - start == pytest.approx(100.0)
        for recorder in (slow, *fast):
            assert recorder.received == list(range(100))

    async def test_a_blocked_subscriber_does_not_hold_back_the_others(self, bus: MessageBus) -> None:
        gate = asyncio.Event()
        stuck = Recorder(gate=gate)
        free = Recorder()
        await bus.subscribe("stuck", MessageTopic.TA_SIGNALS, stuck)
        await bus.subscribe("free", MessageTopic.TA_SIGNALS, free)

        for i in range(50):
            await bus.publish(indexed(i))
        await stuck.started.wait()
        while len(free.received) < 50:
            await asyncio.sleep(0)

        assert free.received == list(range(50))
        assert stuck.received == []
        assert bus.stats()["stuck"].queued == 49  # the 50th is in its handler
        gate.set()
        await bus.drain()
        assert stuck.received == list(range(50))

    @pytest.mark.parametrize(
        "config",
        [{}, {"max_queue_size": 4, "overflow_policy": "block"}],
        ids=["unbounded", "bounded-block"],
    )
    async def test_concurrent_publishers_lose_nothing_and_all_subscribers_agree_on_order(
        self, make_bus: MakeBus, config: dict[str, Any]
    ) -> None:
        bus = make_bus(config)
        seen: dict[str, list[tuple[int, int]]] = {f"s{n}": [] for n in range(5)}

        def record_into(log: list[tuple[int, int]]) -> Any:
            async def handler(message: Message) -> None:
                log.append((message.payload["publisher"], message.payload["seq"]))
                await asyncio.sleep(0)

            return handler

        for sid, log in seen.items():
            await bus.subscribe(sid, MessageTopic.TRADING_SIGNALS, record_into(log))

        async def publisher(p: int) -> None:
            for seq in range(200):
                payload = {"publisher": p, "seq": seq}
                await bus.publish(create_message(MessageTopic.TRADING_SIGNALS, f"p{p}", payload))
                if seq % 7 == p % 7:
                    await asyncio.sleep(0)

        await asyncio.gather(*(publisher(p) for p in range(12)))
        await bus.drain()

        reference = seen["s0"]
        assert sorted(reference) == [(p, s) for p in range(12) for s in range(200)]
        for p in range(12):
            assert [s for q, s in reference if q == p] == list(range(200))
        for log in seen.values():
            assert log == reference

    async def test_publish_counts_the_subscribers_it_queued_for(self, bus: MessageBus) -> None:
        await bus.subscribe("a", MessageTopic.RISK_ALERTS, Recorder())
        await bus.subscribe("b", MessageTopic.RISK_ALERTS, Recorder())
        await bus.subscribe("c", MessageTopic.SYSTEM_EVENTS, Recorder())

        assert await bus.publish(indexed(0, MessageTopic.RISK_ALERTS)) == 2
        assert await bus.publish(indexed(1, MessageTopic.SYSTEM_EVENTS)) == 1
        assert await bus.publish(indexed(2, MessageTopic.PORTFOLIO_UPDATES)) == 0

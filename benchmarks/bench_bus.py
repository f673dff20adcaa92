"""What MessageBus costs over the least a fan-out can do: the same messages delivered
to the same handlers through MessageBus and through bare asyncio.Queues (one queue and
one consumer task per subscriber), in one process.

    python benchmarks/bench_bus.py [--messages 10000] [--subscribers 10] [--rounds 5]

Prints the best round of each, in published messages per second (each one is
delivered to every subscriber), and the ratio bus / bare.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from core.decision.bus import Message, MessageBus, MessageTopic, create_message
from core.domain.clock import VirtualClock

Counts = list[int]


def counting_handler(counts: Counts, n: int) -> Callable[[Message], Coroutine[Any, Any, None]]:
    async def handle(message: Message) -> None:
        counts[n] += 1

    return handle


async def through_bus(messages: list[Message], subscribers: int) -> tuple[float, Counts]:
    counts = [0] * subscribers
    async with MessageBus() as bus:
        for n in range(subscribers):
            await bus.subscribe(f"s{n}", MessageTopic.MARKET_DATA, counting_handler(counts, n))
        start = time.perf_counter()
        for message in messages:
            await bus.publish(message)
        await bus.drain()
        elapsed = time.perf_counter() - start
    return elapsed, counts


async def through_bare_queues(messages: list[Message], subscribers: int) -> tuple[float, Counts]:
    counts = [0] * subscribers
    queues: list[asyncio.Queue[Message]] = [asyncio.Queue() for _ in range(subscribers)]

    async def consume(queue: asyncio.Queue[Message], n: int) -> None:
        handle = counting_handler(counts, n)
        while True:
            message = await queue.get()
            await handle(message)
            queue.task_done()

    consumers = [asyncio.create_task(consume(q, n)) for n, q in enumerate(queues)]
    start = time.perf_counter()
    for message in messages:
        for queue in queues:
            queue.put_nowait(message)
    for queue in queues:
        await queue.join()
    elapsed = time.perf_counter() - start
    for consumer in consumers:
        consumer.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    return elapsed, counts


async def best_of(
    run: Callable[[list[Message], int], Coroutine[Any, Any, tuple[float, Counts]]],
    messages: list[Message],
    subscribers: int,
    rounds: int,
) -> float:
    best = float("inf")
    for _ in range(rounds):
        elapsed, counts = await run(messages, subscribers)
        if counts != [len(messages)] * subscribers:
            raise SystemExit(f"{run.__name__} lost messages: {counts}")
        best = min(best, elapsed)
    return len(messages) / best


async def main(messages_count: int, subscribers: int, rounds: int) -> None:
    clock = VirtualClock()
    messages = [create_message(MessageTopic.MARKET_DATA, "bench", {"i": i}, clock=clock) for i in range(messages_count)]
    bare = await best_of(through_bare_queues, messages, subscribers, rounds)
    bus = await best_of(through_bus, messages, subscribers, rounds)
    print(f"{messages_count} messages x {subscribers} subscribers, best of {rounds} rounds")
    print(f"bare asyncio.Queue fan-out: {bare:>12,.0f} messages/s ({bare * subscribers:,.0f} deliveries/s)")
    print(f"MessageBus:                 {bus:>12,.0f} messages/s ({bus * subscribers:,.0f} deliveries/s)")
    print(f"ratio bus / bare:           {bus / bare:12.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.subscribers, args.rounds))

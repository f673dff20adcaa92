"""MessageBus: in-process publish/subscribe between the coordinator and the agents.

Every subscriber has its own queue and worker task, so a handler that crashes, hangs
or runs slowly affects only its own subscriber: the others keep receiving, each in
publish order. A crash is logged and counted and the worker carries on.

When a subscriber falls behind, `overflow_policy` decides what happens once its
queue holds `max_queue_size` messages (0, the default, means no bound):

- "block" (default): publish waits until that subscriber has room. Nothing is lost;
  the price is that one stuck subscriber eventually stalls its publishers. A handler
  that publishes into its own subscriber's full queue is let past the bound (waiting
  would be waiting for itself), but a cycle of bounded subscribers publishing to each
  other can still stall, which is why the default queue has no bound: nothing is lost
  and nothing waits, and a stuck subscriber shows as a growing `queued` in stats().
- "drop_oldest" / "drop_newest": publish never waits; the discarded messages are
  counted as `dropped` in that subscriber's stats.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.domain.clock import Clock, SystemClock
from core.domain.errors import ConfigError

logger = logging.getLogger(__name__)


class MessageTopic(StrEnum):
    MARKET_DATA = "market_data"
    TA_SIGNALS = "ta_signals"
    REGIME_UPDATES = "regime_updates"
    TRADING_SIGNALS = "trading_signals"
    RISK_ALERTS = "risk_alerts"
    EXECUTION_EVENTS = "execution_events"
    PORTFOLIO_UPDATES = "portfolio_updates"
    SYSTEM_EVENTS = "system_events"
    COORDINATOR_COMMANDS = "coordinator_commands"


class MessagePriority(IntEnum):
    """Carried for handlers to read; delivery stays in publish order, because letting
    priority overtake would break each subscriber's ordering."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4


@dataclass(frozen=True, slots=True)
class Message:
    """One published fact. The payload dict is shared by every subscriber: treat it
    as read-only."""

    id: str
    topic: MessageTopic
    source: str
    payload: dict[str, Any]
    timestamp: float
    priority: MessagePriority = MessagePriority.NORMAL
    correlation_id: str | None = None
    ttl_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.ttl_seconds is not None and self.ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive or None, got {self.ttl_seconds}")

    def is_expired(self, now: float) -> bool:
        """Whether the message is stale at `now` (epoch seconds); no TTL never expires."""
        return self.ttl_seconds is not None and now - self.timestamp >= self.ttl_seconds


def create_message(
    topic: MessageTopic,
    source: str,
    payload: dict[str, Any],
    *,
    priority: MessagePriority = MessagePriority.NORMAL,
    correlation_id: str | None = None,
    ttl_seconds: float | None = None,
    clock: Clock | None = None,
) -> Message:
    """Stamp a new message with a fresh id and the time on `clock` (TTLs are judged by
    the bus's clock, so give both the same one)."""
    return Message(
        id=uuid.uuid4().hex,
        topic=topic,
        source=source,
        payload=payload,
        timestamp=(clock or SystemClock()).time(),
        priority=priority,
        correlation_id=correlation_id,
        ttl_seconds=ttl_seconds,
    )


class OverflowPolicy(StrEnum):
    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"


class BusConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_history_size: int = Field(1000, ge=0)
    max_queue_size: int = Field(0, ge=0, description="per subscriber; 0 means no bound")
    overflow_policy: OverflowPolicy = OverflowPolicy.BLOCK


Handler = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    delivered: int
    failed: int
    expired: int
    dropped: int
    queued: int


@dataclass(slots=True)
class _Subscriber:
    """One subscriber's queue, worker and counters.

    The asyncio.Queue itself is unbounded; the bound is enforced here so that
    publishers blocked on a full queue wait in `waiting`, in publish order, and can be
    released when the subscriber goes away."""

    id: str
    max_queue_size: int
    policy: OverflowPolicy
    clock: Clock
    handlers: dict[MessageTopic, Handler] = field(default_factory=dict)
    queue: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    waiting: deque[tuple[Message, asyncio.Future[bool]]] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    active: bool = True
    delivered: int = 0
    failed: int = 0
    expired: int = 0
    dropped: int = 0

    def start(self) -> None:
        self.worker = asyncio.get_running_loop().create_task(self._run(), name=f"bus-subscriber-{self.id}")

    def offer(self, message: Message) -> bool | asyncio.Future[bool]:
        """Queue `message` now (True), discard it (False), or return a future that
        resolves once it is queued (True) or discarded (False)."""
        queue = self.queue
        if not self.max_queue_size or queue.qsize() < self.max_queue_size:
            queue.put_nowait(message)
            return True
        if self.policy is OverflowPolicy.DROP_NEWEST:
            self.dropped += 1
            return False
        if self.policy is OverflowPolicy.DROP_OLDEST:
            queue.get_nowait()
            queue.task_done()
            self.dropped += 1
            queue.put_nowait(message)
            return True
        if self.worker is asyncio.current_task():
            queue.put_nowait(message)
            return True
        admitted = asyncio.get_running_loop().create_future()
        self.waiting.append((message, admitted))
        return admitted

    def stats(self) -> SubscriberStats:
        waiting = sum(1 for _, admitted in self.waiting if not admitted.done())
        return SubscriberStats(
            delivered=self.delivered,
            failed=self.failed,
            expired=self.expired,
            dropped=self.dropped,
            queued=self.queue.qsize() + waiting,
        )

    async def stop(self) -> None:
        """Discard the backlog, release waiting publishers and end the worker. Called
        from the subscriber's own handler, the worker ends once that handler returns."""
        self.active = False
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()
            self.dropped += 1
        while self.waiting:
            _, admitted = self.waiting.popleft()
            if not admitted.done():
                admitted.set_result(False)
                self.dropped += 1
        worker = self.worker
        if worker is None or worker is asyncio.current_task():
            return
        worker.cancel()
        await asyncio.wait([worker])

    async def _run(self) -> None:
        queue = self.queue
        while self.active:
            message = await queue.get()
            if self.waiting:  # at once: the queue stays full, so no newcomer overtakes them
                self._admit_next()
            try:
                handler = self._handler_for(message)
                if handler is not None:
                    await handler(message)
                    self.delivered += 1
            except asyncio.CancelledError:
                worker = asyncio.current_task()
                if worker is not None and worker.cancelling():
                    raise
                self._record_failure(message)
            except Exception:  # noqa: BLE001 - a handler's failure is counted, never the bus's
                self._record_failure(message)
            finally:
                queue.task_done()

    def _admit_next(self) -> None:
        while self.waiting:
            message, admitted = self.waiting.popleft()
            if not admitted.done():  # done here means its publisher was cancelled
                self.queue.put_nowait(message)
                admitted.set_result(True)
                return

    def _handler_for(self, message: Message) -> Handler | None:
        """The handler to call, or None (counted) for a stale message or a topic the
        subscriber left while the message waited."""
        if message.ttl_seconds is not None and message.is_expired(self.clock.time()):
            self.expired += 1
            return None
        handler = self.handlers.get(message.topic)
        if handler is None:
            self.dropped += 1
        return handler

    def _record_failure(self, message: Message) -> None:
        self.failed += 1
        logger.exception(
            "subscriber %r failed to handle %s message %s from %r; it keeps receiving",
            self.id,
            message.topic,
            message.id,
            message.source,
        )


class MessageBus:
    """Topic-based fan-out with per-subscriber queues, bounded history and a clean
    shutdown. Use `async with MessageBus() as bus:` or call close()."""

    def __init__(
        self,
        config: Mapping[str, Any] | BusConfig | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._config = _parse_config(config)
        self._clock = clock or SystemClock()
        self._subscribers: dict[str, _Subscriber] = {}
        self._routes: dict[MessageTopic, dict[str, _Subscriber]] = {}
        self._history: deque[Message] = deque(maxlen=self._config.max_history_size)
        self._latest: dict[MessageTopic, Message] = {}
        self._closed = False
        self._stopped = asyncio.Event()

    async def __aenter__(self) -> MessageBus:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def subscribe(self, subscriber_id: str, topic: MessageTopic, handler: Handler) -> None:
        """Deliver every later message on `topic` to `handler`, in publish order. One
        subscriber may take several topics; they share its queue and its ordering."""
        self._ensure_open("subscribe")
        if not (inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(type(handler).__call__)):
            raise TypeError(f"the handler for {subscriber_id!r} must be an async callable")
        subscriber = self._subscribers.get(subscriber_id)
        if subscriber is None:
            subscriber = _Subscriber(
                id=subscriber_id,
                max_queue_size=self._config.max_queue_size,
                policy=self._config.overflow_policy,
                clock=self._clock,
            )
            subscriber.start()
            self._subscribers[subscriber_id] = subscriber
        elif topic in subscriber.handlers:
            raise ValueError(f"{subscriber_id!r} already subscribes to {topic}; unsubscribe it first")
        subscriber.handlers[topic] = handler
        self._routes.setdefault(topic, {})[subscriber_id] = subscriber

    async def unsubscribe(self, subscriber_id: str, topic: MessageTopic | None = None) -> None:
        """Stop delivering `topic` (or everything) to the subscriber, including what is
        still queued for it. Dropping the last topic ends its worker and its stats."""
        subscriber = self._subscribers.get(subscriber_id)
        if subscriber is None:
            return
        topics = list(subscriber.handlers) if topic is None else [topic]
        for name in topics:
            subscriber.handlers.pop(name, None)
            self._routes.get(name, {}).pop(subscriber_id, None)
        if not subscriber.handlers:
            del self._subscribers[subscriber_id]
            await subscriber.stop()

    async def publish(self, message: Message) -> int:
        """Record the message and queue it for every subscriber of its topic; return how
        many it was queued for. Waits only under the "block" policy, for a full queue."""
        self._ensure_open("publish")
        self._history.append(message)
        self._latest[message.topic] = message
        queued = 0
        pending: list[asyncio.Future[bool]] = []
        for subscriber in self._routes.get(message.topic, {}).values():
            outcome = subscriber.offer(message)
            if isinstance(outcome, bool):
                queued += outcome
            else:
                pending.append(outcome)
        if pending:
            queued += await _wait_for_room(pending)
        return queued

    async def get_history(self, topic: MessageTopic | None = None, limit: int | None = None) -> list[Message]:
        """The most recent published messages (of `topic`, if given), oldest first."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be zero or more, got {limit}")
        messages = [m for m in self._history if topic is None or m.topic is topic]
        if limit is not None:
            messages = messages[max(0, len(messages) - limit) :]
        return messages

    def get_latest(self, topic: MessageTopic) -> Message | None:
        """The last message published on `topic`, or None if none was or it expired:
        a stale value must not pass for the current one."""
        message = self._latest.get(topic)
        if message is None or message.is_expired(self._clock.time()):
            return None
        return message

    async def drain(self) -> None:
        """Wait until every message queued before the call has been handled."""
        self._refuse_inside_handler("drain")
        for subscriber in list(self._subscribers.values()):
            await subscriber.queue.join()

    async def close(self, *, timeout: float | None = None) -> None:
        """Refuse new publishes, drain (for at most `timeout` seconds), then stop every
        worker. Whatever a timeout leaves unhandled is counted as dropped."""
        self._refuse_inside_handler("close")
        if self._closed:
            await self._stopped.wait()
            return
        self._closed = True
        try:
            async with asyncio.timeout(timeout):
                await self.drain()
        except TimeoutError:
            logger.warning(
                "message bus closed after %ss with messages still queued; they are dropped",
                timeout,
            )
        finally:
            for subscriber in list(self._subscribers.values()):
                await subscriber.stop()
            self._routes.clear()
            self._stopped.set()

    def stats(self) -> dict[str, SubscriberStats]:
        """Counters per subscriber; kept after close(), gone after a full unsubscribe."""
        return {sid: subscriber.stats() for sid, subscriber in self._subscribers.items()}

    def _ensure_open(self, action: str) -> None:
        if self._closed:
            raise RuntimeError(f"cannot {action}: the message bus is closed; create a new one")

    def _refuse_inside_handler(self, action: str) -> None:
        current = asyncio.current_task()
        if any(s.worker is current for s in self._subscribers.values()):
            raise RuntimeError(
                f"cannot {action} the message bus from inside a handler: it would wait "
                "for itself; schedule it from another task"
            )


async def _wait_for_room(pending: list[asyncio.Future[bool]]) -> int:
    """Wait for every full subscriber queue to take the message. If the publisher is
    cancelled, withdraw it from all that have not taken it yet, not only from the one
    being awaited."""
    try:
        return sum([await admitted for admitted in pending])
    except asyncio.CancelledError:
        for admitted in pending:
            admitted.cancel()
        raise


def _parse_config(config: Mapping[str, Any] | BusConfig | None) -> BusConfig:
    if isinstance(config, BusConfig):
        return config
    try:
        return BusConfig.model_validate(config or {})
    except ValidationError as exc:
        raise ConfigError(f"invalid message bus configuration: {exc}") from exc

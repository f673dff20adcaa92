"""One WebSocket v2 connection (hub.py keeps them all up to date).

A session reads requests (ping, subscribe, unsubscribe, the order methods) and answers
each; its publisher sends what its feeds (channels.py) find changed, when the hub wakes
it (after every call the app answers, REST or WebSocket) and on a periodic tick (the
served clock moves the market on its own); a change of the trading mode (the control
plane's SystemStatus) goes out on `status`. Every channel message passes the fault
schedule as a `ws:<channel>` call before it is sent, so faults reach the streams as
data: a dropped connection, a message held back or lost, a corrupted checksum.

Heartbeats (`{"channel": "heartbeat"}`) go out once a second of quiet while the
connection has a subscription; they are timing, not data, and meet no faults, so they
follow the wall clock. Everything else is stamped with the exchange's clock (time_in
and time_out too), so a virtual clock gives the same answers on every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from decimal import Decimal
from typing import Any

from simulator.exceptions import KrakenError
from simulator.exchange import Exchange
from simulator.faults import Call, DroppedConnection, LostResponse
from simulator.ratelimits import TRADING_COUNTER, Tier
from simulator.websocket import orders, tokens
from simulator.websocket.channels import (
    BalancesFeed,
    BookFeed,
    ExecutionsFeed,
    Feed,
    InstrumentFeed,
    Message,
    OhlcFeed,
    TickerFeed,
    TradeFeed,
)
from simulator.websocket.hub import Gateway, Hub, Receive, Send
from simulator.websocket.protocol import (
    ORDER_METHODS,
    SUBSCRIPTION,
    Answer,
    BalancesSubscription,
    BookSubscription,
    ChannelMessage,
    ExecutionsSubscription,
    InstrumentSubscription,
    Json,
    OhlcSubscription,
    ProtocolError,
    Request,
    StatusSubscription,
    TickerSubscription,
    TradeSubscription,
    encode,
    pair_of,
    read,
    rfc3339,
)

TICK_S = 0.25
"""How often a session looks for changes nobody announced (the market moving)."""
HEARTBEAT_S = 1.0
API_VERSION = "2.0.10"
_DROP_CODE = 1011

FeedKey = tuple[str, str | None, int | None]
"""(channel, symbol, interval): ohlc rows name their interval, so each is a subscription."""

logger = logging.getLogger(__name__)


class Session:
    def __init__(self, gateway: Gateway, hub: Hub, send: Send, connection_id: int) -> None:
        self.gateway = gateway
        self.hub = hub
        self.wake = asyncio.Event()
        self.connection_id = connection_id
        self._send = send
        self._lock = asyncio.Lock()
        self._feeds: dict[FeedKey, tuple[Feed, str | None]] = {}
        """By key: the feed and the account it is private to."""
        self._held: list[tuple[float, Json]] = []
        self._sequence = 0
        self._last_sent = time.monotonic()
        self._heartbeat = False
        self._closed = False
        self._system = self.exchange.state.system_status
        """The trading mode the client was last told on `status`."""

    @property
    def exchange(self) -> Exchange:
        return self.gateway.sandbox.exchange

    async def run(self, receive: Receive) -> None:
        await self._text(encode(self._status()))
        publisher = asyncio.create_task(self._publish_loop())
        try:
            while not self._closed:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message["type"] != "websocket.receive":
                    continue
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                await self._handle(text)
                self.hub.poke()
        except DroppedConnection:
            await self._drop()
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher

    # --- requests -------------------------------------------------------------

    async def _handle(self, text: str) -> None:
        time_in = rfc3339(self.exchange.now())
        try:
            document = json.loads(text, parse_float=Decimal)
            request = Request.model_validate(document)
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            await self._answer("error", None, time_in, error="Malformed request")
            return
        method, params, req_id = request.method, request.params, request.req_id
        if method == "ping":
            await self._answer("pong", req_id, time_in)
        elif method in ("subscribe", "unsubscribe"):
            await self._subscription(method, params, req_id, time_in)
        elif method in ORDER_METHODS:
            rest = self.gateway.order_call
            for outcome in await orders.run(self.exchange, rest, method, params):
                await self._answer(method, req_id, time_in, result=outcome.result, error=outcome.error)
        else:
            await self._answer(method, req_id, time_in, error="Method not found")

    async def _answer(
        self,
        method: str,
        req_id: int | None,
        time_in: str,
        *,
        result: Any = None,
        error: str | None = None,
        symbol: str | None = None,
    ) -> None:
        answer = Answer(
            method=method,
            req_id=req_id,
            success=error is None,
            result=result,
            error=error,
            symbol=symbol,
            time_in=time_in,
            time_out=rfc3339(self.exchange.now()),
        )
        await self._text(encode(answer))

    async def _subscription(self, method: str, params: Json, req_id: int | None, time_in: str) -> None:
        try:
            wanted = read(SUBSCRIPTION, params, method)
            account = tokens.redeem(self.exchange, wanted.token) if hasattr(wanted, "token") else None
        except ProtocolError as exc:
            await self._answer(method, req_id, time_in, error=exc.message, symbol=exc.symbol)
            return
        except KrakenError as exc:
            await self._answer(method, req_id, time_in, error=exc.wire)
            return
        for symbol in getattr(wanted, "symbol", [None]):
            try:
                key, feed, result = self._feed(wanted, symbol, account)
            except ProtocolError as exc:
                await self._answer(method, req_id, time_in, error=exc.message, symbol=exc.symbol)
                continue
            if method == "unsubscribe":
                if self._feeds.pop(key, None) is None:
                    await self._answer(method, req_id, time_in, error="Subscription Not Found", symbol=symbol)
                else:
                    await self._answer(method, req_id, time_in, result=result)
                continue
            if key in self._feeds:
                await self._answer(method, req_id, time_in, error="Already subscribed", symbol=symbol)
                continue
            await self._answer(method, req_id, time_in, result=result)
            self._heartbeat = True
            if feed is None:
                continue
            first = feed.snapshot()
            if result.get("snapshot", True):
                for message in first:
                    await self._emit(message, account)
            self._feeds[key] = (feed, account)

    def _feed(self, wanted: Any, symbol: str | None, account: str | None) -> tuple[FeedKey, Feed | None, Json]:
        """The feed a subscription makes, its key, and the result its ack echoes."""
        exchange = self.exchange
        channel = wanted.channel
        if isinstance(wanted, StatusSubscription):
            return (channel, None, None), None, {"channel": channel}
        if isinstance(wanted, InstrumentSubscription):
            return (channel, None, None), InstrumentFeed(exchange), {"channel": channel, "snapshot": wanted.snapshot}
        if isinstance(wanted, ExecutionsSubscription):
            assert account is not None
            feed: Feed = ExecutionsFeed(exchange, account, wanted.snap_orders, wanted.snap_trades, wanted.order_status)
            result = {
                "channel": channel,
                "maxratecount": self._max_rate_count(),
                "snap_orders": wanted.snap_orders,
                "snap_trades": wanted.snap_trades,
            }
            return (channel, None, None), feed, result
        if isinstance(wanted, BalancesSubscription):
            assert account is not None
            return (
                (channel, None, None),
                BalancesFeed(exchange, account),
                {"channel": channel, "snapshot": wanted.snapshot},
            )
        assert symbol is not None
        pair = pair_of(symbol)
        result = {"channel": channel, "symbol": symbol, "snapshot": wanted.snapshot}
        interval = None
        if isinstance(wanted, TickerSubscription):
            result["event_trigger"] = wanted.event_trigger
            feed = TickerFeed(exchange, pair)
        elif isinstance(wanted, BookSubscription):
            result["depth"] = wanted.depth
            feed = BookFeed(exchange, pair, wanted.depth)
        elif isinstance(wanted, OhlcSubscription):
            result["interval"] = interval = wanted.interval
            feed = OhlcFeed(exchange, pair, wanted.interval)
        else:
            assert isinstance(wanted, TradeSubscription)
            feed = TradeFeed(exchange, pair)
        return (channel, symbol, interval), feed, result

    def _max_rate_count(self) -> int:
        """What an executions ack answers in `maxratecount`: the trading counter's cap
        at the sandbox's tier (the highest, pro's, when it serves without limits)."""
        limits = self.gateway.sandbox.limits
        return int(TRADING_COUNTER[limits.tier if limits is not None else Tier.PRO].maximum)

    # --- publishing -----------------------------------------------------------

    async def _publish_loop(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self.wake.wait()
            self.wake.clear()
            try:
                await self._publish()
            except DroppedConnection:
                await self._drop()
                return
            except Exception:
                logger.exception("publishing to WebSocket connection %s failed", self.connection_id)

    async def _publish(self) -> None:
        now = self.exchange.now()
        due = [body for release, body in self._held if release <= now]
        self._held = [(release, body) for release, body in self._held if release > now]
        for body in due:
            await self._text(encode(body))
        self.exchange.sync()  # a scheduled mode change reaches the status channel when due
        system = self.exchange.state.system_status
        if system is not self._system:
            self._system = system
            await self._emit(Message("status", "update", self._status().data or []), None)
        for feed, account in list(self._feeds.values()):
            for message in feed.update():
                await self._emit(message, account)
        if self._heartbeat and time.monotonic() - self._last_sent >= HEARTBEAT_S:
            await self._text(encode(ChannelMessage(channel="heartbeat")))

    async def _emit(self, message: Message, account: str | None) -> None:
        """Send one channel message through the fault schedule."""
        faults = self.gateway.sandbox.faults
        call = Call(f"ws:{message.channel}", self.exchange, {"type": message.type}, account)
        firings = await faults.before(call)
        body = ChannelMessage(channel=message.channel, type=message.type, data=message.data)  # type: ignore[arg-type]
        if account is not None:
            self._sequence += 1
            body.sequence = self._sequence
        try:
            sent = faults.after(call, firings, body.model_dump(exclude_none=True))
        except LostResponse:
            return
        release = call.params.get("release")
        if isinstance(release, float):
            self._held.append((release, sent))
            return
        await self._text(encode(sent))

    async def _text(self, text: str) -> None:
        if self._closed:
            return
        async with self._lock:
            try:
                await self._send({"type": "websocket.send", "text": text})
            except OSError:  # the client has gone (ASGI servers raise this): the session ends
                self._closed = True
                return
        self._last_sent = time.monotonic()

    async def _drop(self) -> None:
        if not self._closed:
            self._closed = True
            await self._send({"type": "websocket.close", "code": _DROP_CODE})

    def _status(self) -> ChannelMessage:
        status = {
            "api_version": "v2",
            "connection_id": self.connection_id,
            "system": str(self._system),
            "version": API_VERSION,
        }
        return ChannelMessage(channel="status", type="update", data=[status])

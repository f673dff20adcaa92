"""python-kraken-sdk's WebSocket clients, unmodified, against the sandbox's /v2.

SpotWSClient takes the URLs (`ws_url`/`auth_ws_url` without /v2: the SDK appends it;
`rest_url` for the token). SpotOrderBookClient takes none: its connection and its
Market client (which it asks for the pair's decimals) use the class defaults, so they
are pointed at the sandbox the only way the SDK allows, by those class attributes.

Messages are awaited through the clients' callbacks with a bound, never a sleep; the
market moves when the control plane advances the sandbox's virtual clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from kraken.spot import Market, SpotOrderBookClient, SpotWSClient
from kraken.spot import orderbook as sdk_orderbook
from kraken.spot.websocket.connectors import ConnectSpotWebsocketBase

from simulator.websocket import session
from tests.thirdparty.conftest import Served

pytestmark = pytest.mark.integration

WAIT_S = 10.0
Json = dict[str, Any]


class Inbox:
    """What a client's callback received, and a way to wait for the one a test wants."""

    def __init__(self) -> None:
        self.messages: list[Json] = []
        self._arrived = asyncio.Condition()

    async def put(self, message: Json) -> None:
        async with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()

    async def first(self, wanted: Callable[[Json], bool], start: int = 0) -> Json:
        async with asyncio.timeout(WAIT_S), self._arrived:
            while True:
                for message in self.messages[start:]:
                    if wanted(message):
                        return message
                await self._arrived.wait()


def executions(message: Json) -> bool:
    return message.get("channel") == "executions" and message.get("type") == "update"


def ws_root(sandbox: Served) -> str:
    return sandbox.url.replace("http://", "ws://")


async def advance(sandbox: Served, seconds: float) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        response = await http.post(
            "/_sandbox/advance", data={"seconds": seconds, "orders": "false"}, headers={"X-TG-Sandbox": "1"}
        )
    assert response.json()["error"] == []


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real-time pacing the tests need not sit through: the SDK's read loop checks for
    close between messages (heartbeats on every tick let it stop at once, not after
    Kraken's second of quiet), and it backs off before its first connection too."""
    monkeypatch.setattr(session, "HEARTBEAT_S", 0.0)
    monkeypatch.setattr(ConnectSpotWebsocketBase, "_ConnectSpotWebsocketBase__get_reconnect_wait", lambda *_: 0)


@pytest.fixture
async def private(sandbox: Served) -> AsyncIterator[tuple[SpotWSClient, Inbox]]:
    inbox = Inbox()
    client = SpotWSClient(
        key=sandbox.key,
        secret=sandbox.secret,
        callback=inbox.put,
        no_public=True,
        rest_url=sandbox.url,
        auth_ws_url=ws_root(sandbox),
    )
    await client.start()
    try:
        yield client, inbox
    finally:
        await client.close()


async def test_order_book_client_validates_every_checksum(sandbox: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Market, "URL", sandbox.url)
    monkeypatch.setattr(SpotOrderBookClient, "WS_URL", ws_root(sandbox))
    inbox = Inbox()

    class Book(SpotOrderBookClient):
        async def on_book_update(self, pair: str, message: dict[str, Any]) -> None:
            await inbox.put({"pair": pair, "valid": self.get(pair)["valid"], **message})  # type: ignore[index]

    book = Book(depth=25)
    await book.start()
    try:
        await book.add_book(pairs=["BTC/USD"])
        await inbox.first(lambda m: m.get("type") == "snapshot")
        start = len(inbox.messages)
        await advance(sandbox, 60)  # the book is redrawn every 10 s: every level moves
        update = await inbox.first(lambda m: m.get("type") == "update", start)
        assert update["valid"] is True
        levels = book.get("BTC/USD")
        assert levels is not None and len(levels["bid"]) == len(levels["ask"]) == 25
        depth = Market(url=sandbox.url).get_order_book(pair="XBTUSD", count=25)["XXBTZUSD"]
        assert [price for price, *_ in depth["bids"]] == list(levels["bid"])
    finally:
        await book.close()


async def test_a_broken_checksum_makes_the_book_client_resubscribe(
    sandbox: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Market, "URL", sandbox.url)
    monkeypatch.setattr(SpotOrderBookClient, "WS_URL", ws_root(sandbox))

    async def no_pause(_seconds: float) -> None:
        """The SDK waits 3 s before it subscribes again; the test does not."""

    monkeypatch.setattr(sdk_orderbook, "asyncio_sleep", no_pause)
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        added = await http.post("/_sandbox/faults", data={"spec": "ws-bad-checksum"}, headers={"X-TG-Sandbox": "1"})
    assert added.json()["error"] == []
    inbox = Inbox()

    class Book(SpotOrderBookClient):
        async def on_book_update(self, pair: str, message: dict[str, Any]) -> None:
            await inbox.put(message)

    book = Book(depth=10)
    await book.start()
    try:
        await book.add_book(pairs=["BTC/USD"])
        await inbox.first(lambda m: m.get("type") == "snapshot")
        start = len(inbox.messages)
        await advance(sandbox, 60)
        alarm = await inbox.first(lambda m: "error" in m, start)
        assert alarm["error"] == "Checksum mismatch - resubscribing to the orderbook for BTC/USD"
        fresh = await inbox.first(lambda m: m.get("type") == "snapshot", start)
        assert fresh["data"][0]["symbol"] == "BTC/USD"
        await advance(sandbox, 60)  # the fault fired once: the next update is sound
        await inbox.first(lambda m: m.get("type") == "update", inbox.messages.index(fresh))
        assert book.get("BTC/USD")["valid"] is True  # type: ignore[index]
    finally:
        await book.close()


async def test_ws_client_public_channels(sandbox: Served) -> None:
    inbox = Inbox()
    client = SpotWSClient(callback=inbox.put, ws_url=ws_root(sandbox))
    await client.start()
    try:
        await client.subscribe(params={"channel": "ticker", "symbol": ["ETH/USD"]})
        await client.subscribe(params={"channel": "ohlc", "symbol": ["ETH/USD"], "interval": 1})
        ticker = await inbox.first(lambda m: m.get("channel") == "ticker")
        ohlc = await inbox.first(lambda m: m.get("channel") == "ohlc")
    finally:
        await client.close()
    rest = Market(url=sandbox.url).get_ticker(pair="ETHUSD")["XETHZUSD"]
    assert Decimal(str(ticker["data"][0]["bid"])) == Decimal(rest["b"][0])
    assert ohlc["data"][-1]["interval"] == 1


async def test_ws_client_places_and_cancels_over_executions(private: tuple[SpotWSClient, Inbox]) -> None:
    client, inbox = private
    await client.subscribe(params={"channel": "executions", "snap_orders": True})
    await inbox.first(lambda m: m.get("channel") == "executions" and m.get("type") == "snapshot")
    order = {"order_type": "limit", "side": "buy", "order_qty": 0.01, "limit_price": 10000, "symbol": "BTC/USD"}
    await client.send_message(message={"method": "add_order", "params": order, "req_id": 5})
    placed = await inbox.first(lambda m: m.get("method") == "add_order")
    assert placed["success"] and placed["req_id"] == 5
    txid = placed["result"]["order_id"]
    await inbox.first(lambda m: executions(m) and m["data"][0]["exec_type"] == "new")

    await client.send_message(message={"method": "cancel_order", "params": {"order_id": [txid]}})
    await inbox.first(lambda m: m.get("method") == "cancel_order")
    canceled = await inbox.first(lambda m: executions(m) and m["data"][0]["exec_type"] == "canceled")
    assert canceled["data"][0]["order_id"] == txid

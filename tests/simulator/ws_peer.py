"""A served sandbox on a virtual clock, and a WebSocket v2 peer that speaks to it with
the `websockets` client: requests out, and waits bounded by a timeout for the message a
test expects (never a sleep). REST goes through the sandbox's own test client, so
tokens, orders and the control plane are one exchange with the streams."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from simulator.server import SandboxServer
from tests.simulator.sandbox_client import KrakenClient

WAIT_S = 5.0
"""The longest a test waits for one message: a bound, not a pause."""
Json = dict[str, Any]


class Peer:
    """One WebSocket connection; `seen` keeps every message received, heartbeats aside."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.seen: list[Json] = []
        self._req = 0

    async def send(self, method: str, params: Json | None = None, *, req_id: int | None = None) -> int:
        self._req += 1
        req = self._req if req_id is None else req_id
        message: Json = {"method": method, "req_id": req}
        if params is not None:
            message["params"] = params
        await self.connection.send(json.dumps(message, default=str))
        return req

    async def next(self, wanted: Callable[[Json], bool], timeout: float = WAIT_S) -> Json:
        """The next message `wanted` accepts; those it skips are kept in `seen`."""
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await self.connection.recv(), parse_float=Decimal)
                if message.get("channel") == "heartbeat":
                    continue
                self.seen.append(message)
                if wanted(message):
                    return message

    async def found(self, wanted: Callable[[Json], bool], start: int = 0) -> Json:
        """The first message from `seen[start:]` on, received already or still to come,
        that `wanted` accepts: for streams whose messages may arrive in any order."""
        for message in self.seen[start:]:
            if wanted(message):
                return message
        return await self.next(wanted)

    async def answer(self, req_id: int, method: str | None = None) -> Json:
        return await self.next(lambda m: m.get("req_id") == req_id and (method is None or m.get("method") == method))

    async def call(self, method: str, params: Json | None = None) -> Json:
        return await self.answer(await self.send(method, params), method)

    async def channel(self, name: str, kind: str | None = None) -> Json:
        return await self.next(lambda m: m.get("channel") == name and (kind is None or m.get("type") == kind))

    async def barrier(self) -> list[Json]:
        """Everything that arrives before the answer to a ping: what the sandbox had to
        say when the ping was read."""
        start = len(self.seen)
        await self.answer(await self.send("ping"), "pong")
        return self.seen[start:-1]


@dataclass
class Served:
    server: SandboxServer
    rest: KrakenClient
    http: httpx.AsyncClient
    peers: list[Peer] = field(default_factory=list)

    async def connect(self) -> Peer:
        peer = Peer(await websockets.connect(self.server.ws_url, open_timeout=WAIT_S))
        self.peers.append(peer)
        await peer.channel("status")
        return peer

    async def token(self) -> str:
        result = await self.rest.result("GetWebSocketsToken")
        return str(result["token"])

    async def advance(self, seconds: float) -> None:
        response = await self.http.post(
            "/_sandbox/advance", data={"seconds": seconds, "orders": "false"}, headers={"X-TG-Sandbox": "1"}
        )
        assert response.json()["error"] == []

    async def set_status(self, status: str) -> None:
        response = await self.http.post("/_sandbox/status", data={"status": status}, headers={"X-TG-Sandbox": "1"})
        assert response.json()["error"] == [], response.text

    async def add_faults(self, *specs: str) -> None:
        for spec in specs:
            response = await self.http.post("/_sandbox/faults", data={"spec": spec}, headers={"X-TG-Sandbox": "1"})
            assert response.json()["error"] == [], response.text


def book_checksum(asks: dict[Decimal, Decimal], bids: dict[Decimal, Decimal]) -> int:
    """Kraken's documented checksum, written here apart from the sandbox's and from the
    wire's text alone (v2 numbers carry all their places, read as Decimal): the top ten
    asks low to high, then the top ten bids high to low, each price then qty with the
    point removed and leading zeros stripped; CRC32 of it all."""

    def digits(value: Decimal) -> str:
        return format(value, "f").replace(".", "").lstrip("0")

    best_asks = sorted(asks.items())[:10]
    best_bids = sorted(bids.items(), reverse=True)[:10]
    text = "".join(digits(p) + digits(q) for p, q in best_asks + best_bids)
    return zlib.crc32(text.encode())


def apply_levels(side: dict[Decimal, Decimal], levels: list[Json], depth: int, *, bids: bool) -> None:
    """A client's book upkeep: qty 0 removes a level; then truncate to the depth."""
    for level in levels:
        if level["qty"] == 0:
            side.pop(level["price"], None)
        else:
            side[level["price"]] = level["qty"]
    for price in sorted(side, reverse=bids)[depth:]:
        del side[price]


def updates(peer: Peer, start: int, channel: str = "executions") -> list[Json]:
    return [
        row for m in peer.seen[start:] if m.get("channel") == channel and m["type"] == "update" for row in m["data"]
    ]


async def exec_types(peer: Peer, start: int, order_id: str, wanted: list[str]) -> list[Json]:
    """The executions rows of `order_id` from `seen[start:]` on whose exec_types are
    `wanted`, in that order, others between them skipped (waiting for them to come)."""

    def matched() -> list[Json] | None:
        found: list[Json] = []
        for row in updates(peer, start):
            if row["order_id"] == order_id and len(found) < len(wanted) and row["exec_type"] == wanted[len(found)]:
                found.append(row)
        return found if len(found) == len(wanted) else None

    while (rows := matched()) is None:
        await peer.next(lambda m: m.get("channel") == "executions")
    return rows

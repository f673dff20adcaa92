"""What the sandbox costs over the least an HTTP endpoint can do: signed AddOrder +
QueryOrders round trips through the sandbox, and the same requests through a trivial
ASGI app that answers a constant JSON body, by the same client over the same path:

- in-process: httpx.AsyncClient over httpx.ASGITransport (how tg embeds the sandbox);
- loopback:   httpx.AsyncClient over TCP to uvicorn on 127.0.0.1 (`tg sim serve`).

    python benchmarks/bench_simulator.py [--round-trips 500] [--rounds 3]

Each round starts a fresh sandbox (seed 42, its clock standing at the sandbox epoch,
no rate limits) whose resting orders pile up as the round goes, as a busy account's
would. Prints the best round of each in round trips per second, and the ratio
sandbox / trivial.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any
from urllib.parse import urlencode

import httpx

from core.domain.clock import VirtualClock
from simulator.app import create_app
from simulator.auth import sign
from simulator.embedded import SANDBOX_EPOCH
from simulator.exchange import Exchange
from simulator.models import ApiKey
from simulator.server import ASGIApp, serving_app

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_CONSTANT = json.dumps({"error": [], "result": {"txid": ["OQCLI2-BSA2E-LRFUH3"]}}).encode()
ORDER = {"pair": "XBTUSDT", "type": "buy", "ordertype": "limit", "volume": "0.0001", "price": "30000"}


async def trivial_app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    """Reads the request and answers the same JSON, whatever was asked."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_CONSTANT)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": _CONSTANT})


class Client:
    """Signs and sends private calls as a Kraken client does."""

    def __init__(self, http: httpx.AsyncClient, api_key: ApiKey) -> None:
        self.http = http
        self.api_key = api_key
        self.nonce = 0

    async def private(self, method: str, params: dict[str, str]) -> dict[str, Any]:
        self.nonce += 1
        path = f"/0/private/{method}"
        body = urlencode({"nonce": self.nonce, **params}).encode()
        headers = {
            "API-Key": self.api_key.key,
            "API-Sign": sign(self.api_key.secret, path, str(self.nonce), body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        response = await self.http.post(path, content=body, headers=headers)
        answer: dict[str, Any] = response.json()
        if answer["error"]:
            raise RuntimeError(f"{method} failed: {answer['error']}")
        return answer


async def round_trips(client: Client, count: int) -> float:
    """Round trips per second: place an order, then look it up."""
    start = time.perf_counter()
    for _ in range(count):
        placed = await client.private("AddOrder", ORDER)
        await client.private("QueryOrders", {"txid": placed["result"]["txid"][0]})
    return count / (time.perf_counter() - start)


def fresh_sandbox() -> tuple[ASGIApp, ApiKey]:
    exchange = Exchange.create(VirtualClock(SANDBOX_EPOCH), seed=42)
    return create_app(exchange, tier=None, lost_response="hang"), exchange.create_api_key()


async def measure(app: ASGIApp, api_key: ApiKey, count: int, *, over_tcp: bool) -> float:
    server: AbstractContextManager[Any] = serving_app(app) if over_tcp else nullcontext()
    with server as served:
        if served is None:
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")
        else:
            http = httpx.AsyncClient(base_url=served.url)
        async with http:
            return await round_trips(Client(http, api_key), count)


async def best_of(rounds: int, count: int, *, over_tcp: bool, sandbox: bool) -> float:
    best = 0.0
    for _ in range(rounds):
        app, api_key = fresh_sandbox()
        if not sandbox:
            app = trivial_app
        best = max(best, await measure(app, api_key, count, over_tcp=over_tcp))
    return best


async def main(count: int, rounds: int) -> None:
    print(f"AddOrder + QueryOrders round trips per second, best of {rounds} x {count}")
    print(f"{'path':<12}{'sandbox':>10}{'trivial':>10}{'ratio':>8}")
    for label, over_tcp in (("in-process", False), ("loopback", True)):
        trivial = await best_of(rounds, count, over_tcp=over_tcp, sandbox=False)
        sandbox = await best_of(rounds, count, over_tcp=over_tcp, sandbox=True)
        print(f"{label:<12}{sandbox:>10.0f}{trivial:>10.0f}{sandbox / trivial:>8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round-trips", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.round_trips, arguments.rounds))

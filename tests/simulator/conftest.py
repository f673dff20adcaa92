"""A fresh seeded exchange per test, on a virtual clock, reached over its ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from core.domain.clock import VirtualClock
from simulator.app import SandboxApp, create_app
from simulator.embedded import SANDBOX_EPOCH
from simulator.exchange import Exchange
from simulator.models import ApiKey
from simulator.server import SandboxServer, serving
from tests.simulator.sandbox_client import KrakenClient
from tests.simulator.ws_peer import WAIT_S, Served


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(SANDBOX_EPOCH)


@pytest.fixture
def exchange(clock: VirtualClock) -> Exchange:
    return Exchange.create(clock, seed=42)


@pytest.fixture
def api_key(exchange: Exchange) -> ApiKey:
    return exchange.create_api_key()


@pytest.fixture
def app(exchange: Exchange) -> SandboxApp:
    """The sandbox's app: a test file that needs faults, a tier or a token overrides it."""
    return create_app(exchange)


@pytest.fixture
async def http(app: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.kraken") as client:
        yield client


@pytest.fixture
def kraken(http: httpx.AsyncClient, api_key: ApiKey) -> KrakenClient:
    return KrakenClient(http, api_key)


@pytest.fixture
def ws_server() -> Iterator[SandboxServer]:
    """The sandbox served over TCP (WebSocket needs a real connection), on a virtual clock."""
    with serving(seed=42, clock=VirtualClock(SANDBOX_EPOCH)) as served:
        yield served


@pytest.fixture
async def served(ws_server: SandboxServer) -> AsyncIterator[Served]:
    [api_key] = ws_server.keys
    async with httpx.AsyncClient(base_url=ws_server.url, timeout=WAIT_S) as http:
        context = Served(ws_server, KrakenClient(http, api_key), http)
        try:
            yield context
        finally:
            for peer in context.peers:
                await peer.connection.close()

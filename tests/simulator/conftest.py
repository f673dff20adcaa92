"""A fresh seeded exchange per test, on a virtual clock, reached over its ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core.domain.clock import VirtualClock
from simulator.app import SandboxApp, create_app
from simulator.embedded import SANDBOX_EPOCH
from simulator.exchange import Exchange
from simulator.models import ApiKey
from tests.simulator.sandbox_client import KrakenClient


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

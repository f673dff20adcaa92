"""A fresh seeded exchange per test, on a virtual clock, reached over its ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core.domain.clock import VirtualClock
from simulator.app import create_app
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
async def http(exchange: Exchange) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(exchange))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.kraken") as client:
        yield client


@pytest.fixture
def kraken(http: httpx.AsyncClient, api_key: ApiKey) -> KrakenClient:
    return KrakenClient(http, api_key)

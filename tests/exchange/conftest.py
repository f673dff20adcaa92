"""A respx-mocked Kraken for the client's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import respx

from core.domain.clock import VirtualClock
from core.exchange import Credentials, KrakenClient, NonceSource
from tests.exchange.kraken_fakes import API_KEY, BASE_URL, SECRET, START, mocked_kraken


@pytest.fixture
def credentials() -> Credentials:
    return Credentials(api_key=API_KEY, api_secret=SECRET)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def kraken() -> Iterator[respx.MockRouter]:
    with mocked_kraken() as router:
        yield router


@pytest.fixture
async def client(
    kraken: respx.MockRouter, credentials: Credentials, clock: VirtualClock
) -> AsyncIterator[KrakenClient]:
    async with KrakenClient(
        BASE_URL, credentials, clock=clock, timeout_s=2.0, nonce_source=NonceSource(clock)
    ) as kraken_client:
        yield kraken_client

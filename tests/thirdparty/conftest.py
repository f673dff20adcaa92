"""A sandbox served over loopback HTTP for each test, for unmodified Kraken clients to
talk to as they would talk to api.kraken.com.

The sandbox runs on a virtual clock standing at its fixed epoch: its market does not
move while a test runs, so every run sees the same prices, fills and ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from simulator.server import SandboxServer, serving

SYMBOLS = {
    "BTC/USD": "XXBTZUSD",
    "BTC/USDT": "XBTUSDT",
    "ETH/USD": "XETHZUSD",
    "XRP/USDT": "XRPUSDT",
    "XRP/BTC": "XXRPXXBT",
    "BTC/EUR": "XXBTZEUR",
    "BTC/GBP": "XXBTZGBP",
    "BTC/USDC": "XBTUSDC",
    "ETH/EUR": "XETHZEUR",
    "ETH/GBP": "XETHZGBP",
    "ETH/USDT": "ETHUSDT",
    "ETH/BTC": "XETHXXBT",
    "XRP/USD": "XXRPZUSD",
    "XRP/EUR": "XXRPZEUR",
    "SOL/USD": "SOLUSD",
    "SOL/EUR": "SOLEUR",
    "ADA/USD": "ADAUSD",
    "ADA/EUR": "ADAEUR",
    "DOGE/USD": "XDGUSD",
    "LTC/USD": "XLTCZUSD",
    "DOT/USD": "DOTUSD",
    "LINK/USD": "LINKUSD",
    "USDC/USD": "USDCUSD",
    "USDT/USD": "USDTZUSD",
    "EUR/USD": "ZEURZUSD",
    "GBP/USD": "ZGBPZUSD",
}
"""What users call the sandbox's pairs, and Kraken's ids for them."""


@dataclass(frozen=True)
class Served:
    url: str
    key: str
    secret: str = field(repr=False)
    server: SandboxServer = field(repr=False)


@pytest.fixture
def sandbox() -> Iterator[Served]:
    with serving(seed=42, clock=VirtualClock(SANDBOX_EPOCH)) as server:
        [api_key] = server.keys
        yield Served(url=server.url, key=api_key.key, secret=api_key.secret, server=server)

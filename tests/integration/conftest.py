"""The embedded sandbox over its wire, a real SQLite store, and a client between them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.domain.clock import Clock
from core.exchange import KrakenClient
from core.storage.store import Store
from simulator.embedded import EmbeddedExchange
from tests.tg_client import tg_client


@dataclass
class Rig:
    sandbox: EmbeddedExchange
    client: KrakenClient
    store: Store
    clock: Clock


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    sandbox = EmbeddedExchange.open(tmp_path / "tg.sandbox.db")
    client = tg_client(sandbox)
    with Store.open(tmp_path / "tg.db") as store:
        yield Rig(sandbox=sandbox, client=client, store=store, clock=sandbox.clock)
    await client.aclose()

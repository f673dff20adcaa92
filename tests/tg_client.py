"""tg in-process against an embedded sandbox: its Kraken client wired as `tg` wires it
(the sandbox's own key, its in-process transport and its clock), and the rig of
sandbox, client and store that the end-to-end tests drive. One place, so those tests
cannot drift in how they connect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from core.domain.clock import Clock
from core.domain.config import RateLimitSettings
from core.exchange import Credentials, KrakenClient
from core.exchange.ratelimit import KrakenRateLimiter
from core.storage.store import Store
from simulator.embedded import EmbeddedExchange


def tg_client(
    sandbox: EmbeddedExchange,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    rate_limiter: KrakenRateLimiter | None = None,
) -> KrakenClient:
    """`transport` stands between the client and the sandbox's (to crash or count)."""
    return KrakenClient(
        sandbox.base_url,
        Credentials(api_key=sandbox.api_key, api_secret=sandbox.api_secret),
        transport=transport or sandbox.transport,
        clock=sandbox.clock,
        rate_limiter=rate_limiter,
    )


@dataclass
class Rig:
    """A fresh embedded sandbox, tg's client on it and tg's store beside it."""

    sandbox: EmbeddedExchange
    client: KrakenClient
    store: Store

    @property
    def clock(self) -> Clock:
        return self.sandbox.clock


@asynccontextmanager
async def open_rig(folder: Path, *, limits: RateLimitSettings | None = None) -> AsyncIterator[Rig]:
    """The rig in `folder` (tg.sandbox.db, tg.db); with `limits`, tg paces its calls."""
    sandbox = EmbeddedExchange.open(folder / "tg.sandbox.db")
    limiter = None if limits is None else KrakenRateLimiter.from_settings(limits, clock=sandbox.clock)
    client = tg_client(sandbox, rate_limiter=limiter)
    with Store.open(folder / "tg.db") as store:
        yield Rig(sandbox, client, store)
    await client.aclose()

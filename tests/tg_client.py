"""tg's Kraken client on an embedded sandbox, wired as `tg` wires it: the sandbox's own
key, its in-process transport and its clock. One place, so the tests that drive tg
against a sandbox in-process cannot drift in how they connect."""

from __future__ import annotations

import httpx

from core.exchange import Credentials, KrakenClient
from core.exchange.ratelimit import KrakenRateLimiter
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

"""Market snapshots: what the agents see, read from the exchange in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from core.clock import Clock
from core.exchange import KrakenClient
from core.models import MarketSnapshot

DEFAULT_INTERVALS: tuple[int, ...] = (60, 240)


async def build_market_snapshot(
    client: KrakenClient,
    symbol: str,
    clock: Clock,
    intervals: Sequence[int] = DEFAULT_INTERVALS,
) -> MarketSnapshot:
    """Ticker and candles for each interval, fetched concurrently."""
    pair = await client.resolve_pair(symbol)
    ticker, *series = await asyncio.gather(
        client.ticker(pair.symbol), *(client.ohlc(pair.symbol, interval) for interval in intervals)
    )
    return MarketSnapshot(
        symbol=pair.symbol,
        timestamp=clock.time(),
        ticker=ticker,
        candles=dict(zip(intervals, series, strict=True)),
    )

"""Market snapshots: what the agents see, read from the exchange in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from core.decision.agents.technical_analysis import INDICATOR_WINDOW
from core.domain.clock import Clock
from core.domain.models import MarketSnapshot
from core.exchange import KrakenClient

DEFAULT_INTERVALS: tuple[int, ...] = (60, 240)
HISTORY_CANDLES = INDICATOR_WINDOW + 1
"""Candles asked for per interval: what the analysis measures, and the forming one."""


async def build_market_snapshot(
    client: KrakenClient,
    symbol: str,
    clock: Clock,
    intervals: Sequence[int] = DEFAULT_INTERVALS,
) -> MarketSnapshot:
    """Ticker and the last HISTORY_CANDLES candles of each interval, fetched concurrently
    (Kraken would send 720; the analysis reads no further back)."""
    pair = await client.resolve_pair(symbol)
    now = int(clock.time())
    # tasks rather than bare coroutines, so each result keeps its type (gather over
    # mixed awaitables types its list as object); started in the same order as before
    ticker = asyncio.create_task(client.ticker(pair.symbol))
    series = [
        asyncio.create_task(client.ohlc(pair.symbol, interval, since=now - HISTORY_CANDLES * interval * 60))
        for interval in intervals
    ]
    await asyncio.gather(ticker, *series)
    return MarketSnapshot(
        symbol=pair.symbol,
        timestamp=clock.time(),
        ticker=ticker.result(),
        candles={interval: candles.result() for interval, candles in zip(intervals, series, strict=True)},
    )

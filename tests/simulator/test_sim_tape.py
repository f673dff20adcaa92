"""The tape tells one story: published trades never change, candles agree with the
trades they summarize, and neither a reset nor a restart rewrites what was served."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH, EmbeddedExchange
from simulator.exchange import Exchange
from tests.simulator.sandbox_client import KrakenClient

Row = list[Any]


async def _tape(kraken: KrakenClient, pair: str, since: float) -> list[Row]:
    """Every trade after `since` up to now, following the cursor page by page."""
    rows: list[Row] = []
    cursor = str(int(since))
    while True:
        result = (await kraken.public("Trades", pair=pair, since=cursor))["result"]
        page = next(value for key, value in result.items() if key != "last")
        if not page:
            return rows
        rows += page
        cursor = result["last"]


async def test_published_trades_never_change(kraken: KrakenClient, clock: VirtualClock) -> None:
    clock.advance(30)  # mid-minute: the current minute's trades are being published
    first = (await kraken.public("Trades", pair="XBTUSD", count=200))["result"]["XXBTZUSD"]
    for seconds in (5, 20, 60, 3_600):
        clock.advance(seconds)
        again = await _tape(kraken, "XBTUSD", first[0][2] - 1)
        by_id = {row[6]: row for row in again}
        assert all(by_id[row[6]] == row for row in first)
        ids = [row[6] for row in again]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("pair", ["XETHZGBP", "XBTUSDT", "SOLEUR"])
async def test_minute_candles_agree_with_their_trades(kraken: KrakenClient, clock: VirtualClock, pair: str) -> None:
    clock.advance(40 * 60 + 25)
    since = SANDBOX_EPOCH + 60
    trades = await _tape(kraken, pair, since)
    bars = (await kraken.public("OHLC", pair=pair, interval=1, since=int(since) - 60))["result"][pair]
    assert bars[-1][0] == SANDBOX_EPOCH + 40 * 60  # the forming candle
    for time, open_, high, low, close, _vwap, volume, count in bars:
        inside = [row for row in trades if time <= row[2] < time + 60]
        assert len(inside) == count
        if not inside:
            assert Decimal(volume) == 0
            continue
        prices = [Decimal(row[0]) for row in inside]
        assert sum(Decimal(row[1]) for row in inside) == Decimal(volume)
        assert prices[-1] == Decimal(close)
        if count > 1:
            assert prices[0] == Decimal(open_)
        assert all(Decimal(low) <= price <= Decimal(high) for price in prices)
        if count >= 4:
            assert (max(prices), min(prices)) == (Decimal(high), Decimal(low))


async def test_hour_candles_agree_with_their_trades(kraken: KrakenClient, clock: VirtualClock) -> None:
    clock.advance(2 * 3_600 + 100)
    trades = await _tape(kraken, "ETHGBP", SANDBOX_EPOCH - 1)
    bars = (await kraken.public("OHLC", pair="ETHGBP", interval=60, since=int(SANDBOX_EPOCH) - 3_600))["result"]
    minutes = (await kraken.public("OHLC", pair="ETHGBP", interval=1))["result"]["XETHZGBP"]
    for time, _open, high, low, _close, _vwap, volume, count in bars["XETHZGBP"]:
        inside = [row for row in trades if time <= row[2] < time + 3_600]
        assert (len(inside), sum((Decimal(row[1]) for row in inside), Decimal(0))) == (count, Decimal(volume))
        prices = [Decimal(row[0]) for row in inside]
        assert Decimal(low) <= min(prices) <= max(prices) <= Decimal(high)
        # the hour is its minutes: its extremes are theirs
        inner = [bar for bar in minutes if time <= bar[0] < time + 3_600]
        assert (Decimal(high), Decimal(low)) == (
            max(Decimal(bar[2]) for bar in inner),
            min(Decimal(bar[3]) for bar in inner),
        )


async def test_a_reset_keeps_the_history_served(exchange: Exchange, kraken: KrakenClient, clock: VirtualClock) -> None:
    clock.advance(600)
    exchange.add_price_gap(SANDBOX_EPOCH + 700, Decimal(-8))
    clock.advance(300)
    served = await _tape(kraken, "XBTUSD", SANDBOX_EPOCH + 500)
    candles = (await kraken.public("OHLC", pair="XBTUSD", interval=1))["result"]["XXBTZUSD"]
    assert Decimal(served[-1][0]) < Decimal(served[0][0]) * Decimal("0.95")  # the gap is in the tape
    exchange.reset()
    assert await _tape(kraken, "XBTUSD", SANDBOX_EPOCH + 500) == served
    assert (await kraken.public("OHLC", pair="XBTUSD", interval=1))["result"]["XXBTZUSD"] == candles


async def test_a_restart_keeps_the_history_served(tmp_path: Path) -> None:
    async def served(sandbox: EmbeddedExchange) -> tuple[list[Row], list[Row]]:
        async with httpx.AsyncClient(transport=sandbox.transport, base_url=sandbox.base_url) as http:
            kraken = KrakenClient(http, sandbox.exchange.state.api_keys[sandbox.api_key])
            trades = await _tape(kraken, "XBTEUR", SANDBOX_EPOCH)
            bars = (await kraken.public("OHLC", pair="XBTEUR", interval=5))["result"]["XXBTZEUR"]
        return trades, bars

    with EmbeddedExchange.open(tmp_path / "state.db") as sandbox:
        sandbox.advance(1_234)
        before = await served(sandbox)
        sandbox.save()
    with EmbeddedExchange.open(tmp_path / "state.db") as reopened:
        assert await served(reopened) == before

"""ccxt's asyncio Kraken client (aiohttp underneath), unmodified, against the served
sandbox: only its API URLs are changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import ccxt.async_support as ccxt_async
import pytest
from ccxt.base.errors import InsufficientFunds, OrderNotFound

from tests.thirdparty.conftest import SYMBOLS, Served

pytestmark = pytest.mark.integration


@pytest.fixture
async def kraken(sandbox: Served) -> AsyncIterator[ccxt_async.kraken]:
    exchange = ccxt_async.kraken(
        {"apiKey": sandbox.key, "secret": sandbox.secret, "enableRateLimit": False, "timeout": 5_000}
    )
    exchange.urls["api"] = {"public": sandbox.url, "private": sandbox.url}
    try:
        yield exchange
    finally:
        await exchange.close()


async def test_reads_markets_ticker_ohlcv_book_and_balance(kraken: ccxt_async.kraken) -> None:
    markets = await kraken.load_markets()
    ticker = await kraken.fetch_ticker("ETH/USD")
    candles = await kraken.fetch_ohlcv("ETH/USD", "15m")
    book = await kraken.fetch_order_book("ETH/USD")
    balance = await kraken.fetch_balance()

    assert {symbol: markets[symbol]["id"] for symbol in SYMBOLS} == SYMBOLS
    assert ticker["bid"] < ticker["ask"]
    assert len(candles) == 720 and candles[-1][4] == ticker["last"]
    assert book["bids"][0][0] == ticker["bid"] and book["asks"][0][0] == ticker["ask"]
    assert balance["total"]["USD"] == 100_000


async def test_places_fetches_lists_and_cancels_orders(kraken: ccxt_async.kraken) -> None:
    bought = await kraken.create_order("ETH/USD", "market", "buy", 0.5)
    limit = await kraken.create_order("ETH/USD", "limit", "sell", 0.2, 6_000)
    stop = await kraken.create_order("ETH/USD", "market", "sell", 0.3, None, {"stopLossPrice": 1_500})

    filled = await kraken.fetch_order(bought["id"])
    assert (filled["status"], filled["filled"]) == ("closed", 0.5)
    assert Decimal(filled["info"]["vol_exec"]) == Decimal("0.5")
    listed = {o["id"]: o for o in await kraken.fetch_open_orders("ETH/USD")}
    assert set(listed) == {limit["id"], stop["id"]}
    assert listed[limit["id"]]["side"] == "sell" and listed[limit["id"]]["price"] == 6_000
    assert listed[stop["id"]]["stopLossPrice"] == 1_500
    assert (await kraken.fetch_balance())["used"]["ETH"] == 0.2  # the resting sell holds its volume

    await kraken.cancel_order(limit["id"])
    await kraken.cancel_order(stop["id"])
    assert [(await kraken.fetch_order(o["id"]))["status"] for o in (limit, stop)] == ["canceled"] * 2
    assert await kraken.fetch_open_orders() == []
    with pytest.raises(OrderNotFound):
        await kraken.cancel_order(stop["id"])


async def test_insufficient_funds_is_ccxts_exception(kraken: ccxt_async.kraken) -> None:
    await kraken.load_markets()
    with pytest.raises(InsufficientFunds):
        await kraken.create_order("ETH/USD", "market", "buy", 100)

"""ccxt.pro's Kraken client (in the ccxt package), unmodified, against the served
sandbox's WebSocket v2: only its URLs are changed (REST for markets and the token,
ws.publicV2 / ws.privateV2 for the streams).

Each watch_* call returns when its stream has something new, so the tests await them
with a bound, never a sleep; the market moves when the control plane advances the
sandbox's virtual clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import ccxt.pro as ccxt_pro
import httpx
import pytest

from simulator.websocket import session
from tests.thirdparty.conftest import Served

pytestmark = pytest.mark.integration

WAIT_S = 10.0
T = TypeVar("T")


async def bounded(call: Awaitable[T]) -> T:
    async with asyncio.timeout(WAIT_S):
        return await call


async def advance(sandbox: Served, seconds: float) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        response = await http.post(
            "/_sandbox/advance", data={"seconds": seconds, "orders": "false"}, headers={"X-TG-Sandbox": "1"}
        )
    assert response.json()["error"] == []


def levels(book: dict[str, Any]) -> tuple[list[list[float]], list[list[float]]]:
    """A book's (price, amount) levels, REST's timestamps left out."""
    return [level[:2] for level in book["bids"]], [level[:2] for level in book["asks"]]


@pytest.fixture
async def kraken(sandbox: Served, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ccxt_pro.kraken]:
    monkeypatch.setattr(session, "HEARTBEAT_S", 0.0)  # ccxt's keepalive sees traffic at once
    exchange = ccxt_pro.kraken(
        {"apiKey": sandbox.key, "secret": sandbox.secret, "enableRateLimit": False, "timeout": 5_000}
    )
    ws = sandbox.url.replace("http://", "ws://")
    exchange.urls["api"] = {
        "public": sandbox.url,
        "private": sandbox.url,
        "ws": {"public": ws, "private": ws, "publicV2": f"{ws}/v2", "privateV2": f"{ws}/v2"},
    }
    try:
        yield exchange
    finally:
        await exchange.close()


async def test_watch_ticker_and_order_book_agree_with_rest(kraken: ccxt_pro.kraken, sandbox: Served) -> None:
    ticker = await bounded(kraken.watch_ticker("BTC/USD"))
    rest = await kraken.fetch_ticker("BTC/USD")
    assert (ticker["bid"], ticker["ask"]) == (rest["bid"], rest["ask"])

    book = await bounded(kraken.watch_order_book("BTC/USD", 10))
    assert levels(book) == levels(await kraken.fetch_order_book("BTC/USD", 10))

    before = levels(book)
    watching = asyncio.ensure_future(kraken.watch_order_book("BTC/USD", 10))  # before the update comes
    await advance(sandbox, 60)  # the book is redrawn every 10 s
    moved = await bounded(watching)
    assert levels(moved) != before
    assert levels(moved) == levels(await kraken.fetch_order_book("BTC/USD", 10))


async def test_watch_orders_sees_a_rest_order_open_and_cancel(kraken: ccxt_pro.kraken) -> None:
    """Watched for all symbols: Kraken's canceled event names only the order (no symbol),
    so ccxt resolves it for watch_orders() and not for watch_orders("BTC/USD")."""
    await kraken.load_markets()
    watching = asyncio.ensure_future(kraken.watch_orders())
    placed = await kraken.create_order("BTC/USD", "limit", "buy", 0.01, 10_000)
    await until_status(kraken, watching, placed["id"], "open")
    [mine] = [o for o in kraken.orders if o["id"] == placed["id"]]
    assert (mine["symbol"], mine["side"], mine["type"], mine["price"]) == ("BTC/USD", "buy", "limit", 10_000)

    watching = asyncio.ensure_future(kraken.watch_orders())
    await kraken.cancel_order(placed["id"], "BTC/USD")
    await until_status(kraken, watching, placed["id"], "canceled")


async def until_status(kraken: ccxt_pro.kraken, watching: Awaitable[Any], order_id: str, wanted: str) -> None:
    """Wait for the watch started before the action, then for more until ccxt's order
    cache (which every message updates, watched or not) shows `wanted`. ccxt files an
    event without a symbol (Kraken's canceled) as an entry of its own: any entry counts."""
    await bounded(watching)
    while not any(o["id"] == order_id and o["status"] == wanted for o in kraken.orders):
        await bounded(kraken.watch_orders())


async def test_create_and_cancel_order_ws_move_the_rest_account(kraken: ccxt_pro.kraken) -> None:
    await kraken.load_markets()
    placed = await bounded(kraken.create_order_ws("BTC/USD", "limit", "buy", 0.01, 10_000))
    rest = await kraken.fetch_order(placed["id"], "BTC/USD")
    assert (rest["status"], rest["amount"], rest["price"]) == ("open", 0.01, 10_000)

    await bounded(kraken.cancel_order_ws(placed["id"]))  # ccxt refuses a symbol here
    assert (await kraken.fetch_order(placed["id"], "BTC/USD"))["status"] == "canceled"


async def test_watch_balance_trades_and_ohlcv(kraken: ccxt_pro.kraken, sandbox: Served) -> None:
    balance = await bounded(kraken.watch_balance())
    assert balance["USD"]["total"] == 100_000

    candles = await bounded(kraken.watch_ohlcv("ETH/USD", "1m"))
    assert candles[-1][:5] == (await kraken.fetch_ohlcv("ETH/USD", "1m"))[-1][:5]
    # Kraken's trade channel sends its 50 latest trades only when asked (snapshot: true)
    trades = await bounded(kraken.watch_trades("ETH/USD", params={"snapshot": True}))
    tape = await kraken.fetch_trades("ETH/USD")
    assert [(t["price"], t["amount"]) for t in trades[-5:]] == [(t["price"], t["amount"]) for t in tape[-5:]]

    watching = asyncio.ensure_future(kraken.watch_trades("ETH/USD"))
    await advance(sandbox, 120)
    fresh = await bounded(watching)
    assert fresh[-1]["timestamp"] > tape[-1]["timestamp"]

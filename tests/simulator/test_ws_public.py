"""The public side of the WebSocket v2 API at /v2, spoken with the `websockets` client:
each channel's snapshot agrees with the REST endpoint it mirrors, updates follow the
market as the clock moves, and bad requests get Kraken's error messages."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from simulator.websocket import session
from tests.simulator.ws_peer import WAIT_S, Served, apply_levels, book_checksum

pytestmark = pytest.mark.integration


async def test_greets_with_status_and_answers_ping_with_its_req_id(served: Served) -> None:
    peer = await served.connect()
    await peer.send("ping", req_id=42)
    pong = await peer.answer(42)
    assert (pong["method"], pong["success"]) == ("pong", True)
    assert pong["time_in"].endswith("Z") and pong["time_out"] >= pong["time_in"]


async def test_book_snapshot_is_rest_depth_and_updates_keep_the_checksum(served: Served) -> None:
    peer = await served.connect()
    ack = await peer.call("subscribe", {"channel": "book", "symbol": ["BTC/USD"], "depth": 25})
    assert ack["success"] and ack["result"] == {"channel": "book", "symbol": "BTC/USD", "depth": 25, "snapshot": True}
    [snapshot] = (await peer.channel("book", "snapshot"))["data"]
    depth = (await served.rest.public("Depth", pair="XBTUSD", count=25))["result"]["XXBTZUSD"]
    assert [[Decimal(b["price"]), Decimal(b["qty"])] for b in snapshot["bids"]] == [
        [Decimal(p), Decimal(q)] for p, q, _ in depth["bids"]
    ]
    asks = {a["price"]: a["qty"] for a in snapshot["asks"]}
    bids = {b["price"]: b["qty"] for b in snapshot["bids"]}
    assert snapshot["checksum"] == book_checksum(asks, bids)

    await served.advance(30)  # the book is redrawn every 10 s and the price moves
    [update] = (await peer.channel("book", "update"))["data"]
    apply_levels(asks, update["asks"], 25, bids=False)
    apply_levels(bids, update["bids"], 25, bids=True)
    assert update["checksum"] == book_checksum(asks, bids)
    after = (await served.rest.public("Depth", pair="XBTUSD", count=25))["result"]["XXBTZUSD"]
    assert sorted(asks.items()) == [(Decimal(p), Decimal(q)) for p, q, _ in after["asks"]]


async def test_ticker_ohlc_and_trades_agree_with_rest(served: Served) -> None:
    peer = await served.connect()
    await peer.call("subscribe", {"channel": "ticker", "symbol": ["ETH/USD"]})
    [ticker] = (await peer.channel("ticker", "snapshot"))["data"]
    rest_ticker = (await served.rest.public("Ticker", pair="ETHUSD"))["result"]["XETHZUSD"]
    assert (ticker["bid"], ticker["ask"], ticker["last"]) == tuple(Decimal(rest_ticker[k][0]) for k in ("b", "a", "c"))

    await peer.call("subscribe", {"channel": "ohlc", "symbol": ["ETH/USD"], "interval": 5})
    bars = (await peer.channel("ohlc", "snapshot"))["data"]
    rest_bars = (await served.rest.public("OHLC", pair="ETHUSD", interval=5))["result"]["XETHZUSD"]
    assert len(bars) == len(rest_bars)
    assert [bars[-1][k] for k in ("open", "high", "low", "close")] == [Decimal(v) for v in rest_bars[-1][1:5]]
    assert bars[-1]["interval"] == 5 and bars[-1]["trades"] == rest_bars[-1][7]

    await peer.call("subscribe", {"channel": "trade", "symbol": ["ETH/USD"], "snapshot": True})
    trades = (await peer.channel("trade", "snapshot"))["data"]
    tape = (await served.rest.public("Trades", pair="ETHUSD"))["result"]["XETHZUSD"]
    assert len(trades) == 50
    assert [(t["price"], t["qty"]) for t in trades] == [(Decimal(p), Decimal(v)) for p, v, *_ in tape[-50:]]

    start = len(peer.seen)
    await served.advance(120)
    fresh = (await peer.found(lambda m: m["channel"] == "trade" and m["type"] == "update", start))["data"]
    assert fresh and all(t["trade_id"] > trades[-1]["trade_id"] for t in fresh)
    bar = await peer.found(lambda m: m["channel"] == "ohlc" and m["type"] == "update", start)
    assert bar["data"][-1]["symbol"] == "ETH/USD"


async def test_instrument_lists_the_pairs_in_v2_names(served: Served) -> None:
    peer = await served.connect()
    ack = await peer.call("subscribe", {"channel": "instrument"})
    assert ack["result"] == {"channel": "instrument", "snapshot": True}
    [listing] = (await peer.channel("instrument", "snapshot"))["data"]
    pairs = {p["symbol"]: p for p in listing["pairs"]}
    assert pairs["BTC/USD"]["base"] == "BTC" and pairs["BTC/USD"]["price_increment"] == Decimal("0.1")
    assert {a["id"] for a in listing["assets"]} >= {"BTC", "USD", "USDT", "ETH", "XRP"}


async def test_heartbeat_follows_a_subscription(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "HEARTBEAT_S", 0.0)  # Kraken's second of quiet, shortened
    peer = await served.connect()
    await peer.call("subscribe", {"channel": "heartbeat"})
    async with asyncio.timeout(WAIT_S):
        while (await peer.connection.recv()) != '{"channel":"heartbeat"}':
            pass


async def test_a_request_nested_past_the_parsers_depth_is_malformed(served: Served) -> None:
    """json's RecursionError escaped the session: the connection died without a close
    frame and the served sandbox logged a traceback."""
    peer = await served.connect()
    await peer.connection.send('{"a":' * 50_000 + "1" + "}" * 50_000)
    malformed = await peer.next(lambda m: m.get("method") == "error")
    assert (malformed["success"], malformed["error"]) == (False, "Malformed request")
    assert (await peer.answer(await peer.send("ping"), "pong"))["success"]  # the connection lives on


async def test_bad_requests_get_krakens_errors(served: Served) -> None:
    peer = await served.connect()
    await peer.connection.send("not json")
    malformed = await peer.next(lambda m: m.get("method") == "error")
    assert (malformed["success"], malformed["error"]) == (False, "Malformed request")

    unknown = await peer.call("launch_rocket")
    assert unknown["error"] == "Method not found"
    channel = await peer.call("subscribe", {"channel": "candles", "symbol": ["BTC/USD"]})
    assert channel["error"] == "Channel candles not found"
    v1_name = await peer.call("subscribe", {"channel": "ticker", "symbol": ["XBT/USD"]})
    assert (v1_name["error"], v1_name["symbol"]) == ("Currency pair not supported XBT/USD", "XBT/USD")
    depth = await peer.call("subscribe", {"channel": "book", "symbol": ["BTC/USD"], "depth": 7})
    assert depth["error"] == "EGeneral:Invalid arguments:depth"
    extra = await peer.call("subscribe", {"channel": "ticker", "symbol": ["BTC/USD"], "colour": "red"})
    assert extra["error"] == "Unsupported field: 'colour' for the given msg type: subscribe"
    missing = await peer.call("unsubscribe", {"channel": "ticker", "symbol": ["BTC/USD"]})
    assert missing["error"] == "Subscription Not Found"

    assert (await peer.call("subscribe", {"channel": "ticker", "symbol": ["BTC/USD"]}))["success"]
    twice = await peer.call("subscribe", {"channel": "ticker", "symbol": ["BTC/USD"]})
    assert twice["error"] == "Already subscribed"
    done = await peer.call("unsubscribe", {"channel": "ticker", "symbol": ["BTC/USD"]})
    assert done["success"] and done["result"]["symbol"] == "BTC/USD"

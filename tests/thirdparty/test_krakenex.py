"""krakenex, unmodified, against the served sandbox: only `uri` is changed.

krakenex returns Kraken's envelope as it came and takes its nonce from the clock in
milliseconds. Over loopback a round trip can take less than a millisecond, so two calls
may carry the same nonce, which Kraken (and so the sandbox) refuses with
EAPI:Invalid nonce, having done nothing: `private` sends such a call again, as a
krakenex user must against Kraken itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import krakenex
import pytest

from tests.thirdparty.conftest import SYMBOLS, Served

pytestmark = pytest.mark.integration

_NONCE_RETRIES = 20


@pytest.fixture
def api(sandbox: Served) -> Iterator[krakenex.API]:
    client = krakenex.API(sandbox.key, sandbox.secret)
    client.uri = sandbox.url
    client.json_options(parse_float=Decimal)
    yield client
    client.close()


def public(api: krakenex.API, method: str, **data: Any) -> Any:
    answer = api.query_public(method, data)
    assert answer["error"] == [], answer
    return answer["result"]


def private(api: krakenex.API, method: str, **data: Any) -> Any:
    for _ in range(_NONCE_RETRIES):
        answer = api.query_private(method, dict(data))
        if answer["error"] != ["EAPI:Invalid nonce"]:
            return answer
    raise AssertionError(f"{method}: the nonce was refused {_NONCE_RETRIES} times in a row")


def result(api: krakenex.API, method: str, **data: Any) -> Any:
    answer = private(api, method, **data)
    assert answer["error"] == [], answer
    return answer["result"]


def test_reads_pairs_ticker_ohlc_book_and_balance(api: krakenex.API) -> None:
    pairs = public(api, "AssetPairs")
    ticker = public(api, "Ticker", pair="XBTUSD")["XXBTZUSD"]
    ohlc = public(api, "OHLC", pair="XBTUSD", interval=5)
    book = public(api, "Depth", pair="XBTUSD", count=5)["XXBTZUSD"]
    balance = result(api, "Balance")

    assert set(pairs) == set(SYMBOLS.values())
    assert pairs["XXBTZUSD"]["altname"] == "XBTUSD" and pairs["XXBTZUSD"]["ordermin"] == "0.0001"
    bid, ask = Decimal(ticker["b"][0]), Decimal(ticker["a"][0])
    assert bid < Decimal(ticker["c"][0]) < ask
    candles = ohlc["XXBTZUSD"]
    assert len(candles) == 720 and {b[0] - a[0] for a, b in zip(candles, candles[1:])} == {300}
    assert ohlc["last"] == candles[-2][0]  # the newest candle is still open
    assert candles[-1][4] == ticker["c"][0]
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert Decimal(book["bids"][0][0]) == bid and Decimal(book["asks"][0][0]) == ask
    assert balance == {"ZUSD": "100000.0000", "USDT": "100000.00000000"}


def test_places_queries_lists_and_cancels_orders(api: krakenex.API) -> None:
    market = result(api, "AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.02")
    limit = result(api, "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="45000")
    stop = result(api, "AddOrder", pair="XBTUSD", type="sell", ordertype="stop-loss", volume="0.02", price="50000")
    [market_id], [limit_id], [stop_id] = market["txid"], limit["txid"], stop["txid"]

    assert stop["descr"] == {"order": "sell 0.02000000 XBTUSD @ stop loss 50000.0"}
    orders = result(api, "QueryOrders", txid=f"{market_id},{limit_id},{stop_id}", trades=True)
    assert [orders[t]["status"] for t in (market_id, limit_id, stop_id)] == ["closed", "open", "open"]
    filled = orders[market_id]
    assert filled["vol_exec"] == "0.02000000" and len(filled["trades"]) == 1
    assert orders[stop_id]["descr"]["ordertype"] == "stop-loss"
    assert orders[stop_id]["descr"]["price"] == "50000.0"
    assert set(result(api, "OpenOrders")["open"]) == {limit_id, stop_id}

    assert result(api, "CancelOrder", txid=limit_id) == {"count": 1}
    assert result(api, "CancelOrder", txid=stop_id) == {"count": 1}
    assert result(api, "OpenOrders") == {"open": {}}
    assert private(api, "CancelOrder", txid=stop_id)["error"] == ["EOrder:Unknown order"]
    closed = result(api, "ClosedOrders")
    assert {t: o["status"] for t, o in closed["closed"].items()} == {
        market_id: "closed",
        limit_id: "canceled",
        stop_id: "canceled",
    }


def test_bad_requests_get_krakens_errors(api: krakenex.API) -> None:
    assert api.query_public("Ticker", {"pair": "PEPEEUR"})["error"] == ["EQuery:Unknown asset pair"]
    assert private(api, "AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="5")["error"] == [
        "EOrder:Insufficient funds"
    ]
    assert private(api, "NoSuchMethod")["error"] == ["EGeneral:Unknown method"]
    api.secret = "c2VjcmV0"
    assert private(api, "Balance")["error"] == ["EAPI:Invalid signature"]


def test_the_starter_rest_counter_refuses_the_sixteenth_call(api: krakenex.API) -> None:
    # The sandbox's clock stands still, so the counter does not decay: 15 calls fill it.
    answers = [private(api, "Balance")["error"] for _ in range(16)]
    assert answers == [[]] * 15 + [["EAPI:Rate limit exceeded"]]

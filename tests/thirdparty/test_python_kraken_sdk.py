"""python-kraken-sdk (package `kraken`), unmodified, against the served sandbox: its
Market, User and Trade clients are given the sandbox's URL.

The SDK's `Trade.create_order(..., truncate=True)` is not used: it looks the pair up
with a `Market()` built without a URL, that is on api.kraken.com itself.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from kraken.exceptions import KrakenInsufficientFundsError, KrakenUnknownAssetError, KrakenUnknownOrderError
from kraken.spot import Market, Trade, User

from tests.thirdparty.conftest import SYMBOLS, Served

pytestmark = pytest.mark.integration


@pytest.fixture
def market(sandbox: Served) -> Market:
    return Market(url=sandbox.url)


@pytest.fixture
def user(sandbox: Served) -> User:
    return User(key=sandbox.key, secret=sandbox.secret, url=sandbox.url)


@pytest.fixture
def trade(sandbox: Served) -> Trade:
    return Trade(key=sandbox.key, secret=sandbox.secret, url=sandbox.url)


def test_reads_pairs_ticker_ohlc_and_book(market: Market) -> None:
    pairs = market.get_asset_pairs()
    assets = market.get_assets()
    ticker = market.get_ticker(pair="XRPUSDT")["XRPUSDT"]
    ohlc = market.get_ohlc(pair="XRPUSDT", interval=60)
    book = market.get_order_book(pair="XRPUSDT", count=3)["XRPUSDT"]

    assert set(pairs) == set(SYMBOLS.values())
    assert pairs["XRPUSDT"]["wsname"] == "XRP/USDT" and pairs["XRPUSDT"]["pair_decimals"] == 5
    assert assets["XXBT"]["altname"] == "XBT" and assets["XXBT"]["decimals"] == 10
    assert Decimal(ticker["b"][0]) < Decimal(ticker["a"][0])
    candles = ohlc["XRPUSDT"]
    assert len(candles) == 720 and ohlc["last"] == candles[-2][0]
    assert len(book["bids"]) == len(book["asks"]) == 3
    assert (book["bids"][0][0], book["asks"][0][0]) == (ticker["b"][0], ticker["a"][0])


def test_reads_balances(user: User) -> None:
    assert user.get_account_balance() == {"ZUSD": "100000.0000", "USDT": "100000.00000000"}
    extended = user.get_balances()
    assert Decimal(extended["USDT"]["balance"]) == 100_000
    assert Decimal(extended["USDT"]["hold_trade"]) == 0


def test_places_queries_lists_and_cancels_orders(user: User, trade: Trade) -> None:
    bought = trade.create_order(ordertype="market", side="buy", pair="XRPUSDT", volume="1000")
    limit = trade.create_order(ordertype="limit", side="buy", pair="XRPUSDT", volume="100", price="0.3", userref=7)
    stop = trade.create_order(
        ordertype="stop-loss", side="sell", pair="XRPUSDT", volume="1000", price="0.45", cl_ord_id="protect-1"
    )
    [bought_id], [limit_id], [stop_id] = bought["txid"], limit["txid"], stop["txid"]

    assert limit["descr"] == {"order": "buy 100.00000000 XRPUSDT @ limit 0.30000"}
    info = user.get_orders_info(txid=[bought_id, limit_id, stop_id], trades=True)
    assert info[bought_id]["status"] == "closed" and len(info[bought_id]["trades"]) == 1
    assert info[limit_id]["userref"] == 7 and info[limit_id]["status"] == "open"
    assert info[stop_id]["cl_ord_id"] == "protect-1"
    assert info[stop_id]["descr"]["ordertype"] == "stop-loss"
    assert set(user.get_open_orders()["open"]) == {limit_id, stop_id}
    assert Decimal(user.get_balances()["USDT"]["hold_trade"]) > 30  # the limit buy's cost

    assert trade.cancel_order(txid=7) == {"count": 1}  # by userref
    assert trade.cancel_order(cl_ord_id="protect-1") == {"count": 1}
    assert user.get_open_orders() == {"open": {}}
    statuses = user.get_closed_orders()["closed"]
    assert {t: o["status"] for t, o in statuses.items()} == {
        bought_id: "closed",
        limit_id: "canceled",
        stop_id: "canceled",
    }


def test_kraken_errors_become_the_sdks_exceptions(market: Market, trade: Trade) -> None:
    # The SDK matches error strings by prefix, "EQuery:Unknown asset" first, so Kraken's
    # "EQuery:Unknown asset pair" raises its unknown-asset exception.
    with pytest.raises(KrakenUnknownAssetError, match="EQuery:Unknown asset pair"):
        market.get_ticker(pair="PEPEEUR")
    with pytest.raises(KrakenInsufficientFundsError):
        trade.create_order(ordertype="market", side="buy", pair="XRPUSDT", volume="1000000")
    with pytest.raises(KrakenUnknownOrderError):
        trade.cancel_order(txid="OAAAAA-BBBBB-CCCCCC")

"""ccxt's synchronous Kraken client, unmodified, against the served sandbox: only its
API URLs are changed, as a user would point it at another host."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pytest

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from simulator.server import serving
from tests.thirdparty.conftest import SYMBOLS, Served

pytestmark = pytest.mark.integration


@pytest.fixture
def kraken(sandbox: Served) -> Iterator[ccxt.kraken]:
    exchange = ccxt.kraken(
        {"apiKey": sandbox.key, "secret": sandbox.secret, "enableRateLimit": False, "timeout": 5_000}
    )
    exchange.urls["api"] = {"public": sandbox.url, "private": sandbox.url}
    yield exchange
    exchange.session.close()


def test_load_markets_sees_kraken_ids_precision_and_minimums(kraken: ccxt.kraken) -> None:
    markets = kraken.load_markets()

    assert {symbol: markets[symbol]["id"] for symbol in SYMBOLS} == SYMBOLS
    btc = markets["BTC/USDT"]
    assert (btc["base"], btc["quote"], btc["altname"], btc["wsId"]) == ("BTC", "USDT", "XBTUSDT", "XBT/USDT")
    assert btc["precision"] == {"amount": 1e-8, "price": 0.1}
    assert btc["limits"]["amount"]["min"] == 0.0001
    assert btc["limits"]["cost"]["min"] == 0.5
    assert (btc["taker"], btc["maker"]) == (0.0026, 0.0016)
    assert kraken.currencies["BTC"]["id"] == "XXBT"
    assert kraken.currencies["USD"]["id"] == "ZUSD"


def test_ticker_ohlcv_and_order_book_agree(kraken: ccxt.kraken) -> None:
    ticker = kraken.fetch_ticker("BTC/USDT")
    candles = kraken.fetch_ohlcv("BTC/USDT", "1h")
    book = kraken.fetch_order_book("BTC/USDT", limit=10)

    assert ticker["bid"] < ticker["last"] < ticker["ask"]
    assert ticker["low"] <= ticker["last"] <= ticker["high"]
    assert len(candles) == 720
    times = [candle[0] for candle in candles]
    assert times == sorted(times) and {b - a for a, b in zip(times, times[1:])} == {3_600_000}
    assert all(low <= min(o, c) <= max(o, c) <= high for _, o, high, low, c, _ in candles)
    assert candles[-1][4] == ticker["last"]
    bids, asks = book["bids"], book["asks"]
    assert 0 < len(bids) <= 10 and 0 < len(asks) <= 10
    assert [p for p, _, *_ in bids] == sorted((p for p, _, *_ in bids), reverse=True)
    assert [p for p, _, *_ in asks] == sorted(p for p, _, *_ in asks)
    assert bids[0][0] == ticker["bid"] and asks[0][0] == ticker["ask"]


def test_balance_starts_with_the_opening_funds(kraken: ccxt.kraken) -> None:
    balance = kraken.fetch_balance()

    assert balance["total"]["USD"] == 100_000
    assert balance["total"]["USDT"] == 100_000
    assert balance["free"]["USDT"] == 100_000


def test_market_buy_fills_and_moves_the_balance(kraken: ccxt.kraken) -> None:
    placed = kraken.create_order("BTC/USDT", "market", "buy", 0.01)
    order = kraken.fetch_order(placed["id"])

    assert order["status"] == "closed"
    assert (order["symbol"], order["side"], order["type"]) == ("BTC/USDT", "buy", "market")
    assert order["filled"] == 0.01
    assert order["average"] > 60_000  # paid the spread and the slippage over the mid
    assert len(order["trades"]) == 1
    info = order["info"]
    spent = Decimal(info["cost"]) + Decimal(info["fee"])
    balance = kraken.fetch_balance()
    assert balance["total"]["BTC"] == 0.01
    # The order shows cost and fee to the pair's cost_decimals (5), the balance to 8.
    assert abs(Decimal(str(balance["total"]["USDT"])) - (Decimal(100_000) - spent)) < Decimal("0.00002")


def test_limit_and_stop_loss_rest_until_canceled(kraken: ccxt.kraken) -> None:
    kraken.create_order("BTC/USDT", "market", "buy", 0.01)
    limit = kraken.create_order("BTC/USDT", "limit", "buy", 0.01, 30_000)
    stop = kraken.create_order("BTC/USDT", "market", "sell", 0.01, None, {"stopLossPrice": 30_000})

    assert limit["info"]["descr"]["order"] == "buy 0.01000000 XBTUSDT @ limit 30000.0"
    assert stop["info"]["descr"]["order"] == "sell 0.01000000 XBTUSDT @ stop loss 30000.0"
    listed = {o["id"]: o for o in kraken.fetch_open_orders("BTC/USDT")}
    assert set(listed) == {limit["id"], stop["id"]}
    assert (listed[limit["id"]]["type"], listed[limit["id"]]["price"]) == ("limit", 30_000)
    assert listed[stop["id"]]["stopLossPrice"] == 30_000
    assert kraken.fetch_balance()["used"]["USDT"] > 300  # the limit buy holds its cost

    for order in (limit, stop):
        kraken.cancel_order(order["id"])
        assert kraken.fetch_order(order["id"])["status"] == "canceled"
    assert kraken.fetch_open_orders() == []


def test_kraken_errors_become_ccxt_exceptions(kraken: ccxt.kraken) -> None:
    kraken.load_markets()

    with pytest.raises(ccxt.InsufficientFunds):
        kraken.create_order("BTC/USDT", "market", "buy", 10)
    with pytest.raises(ccxt.InvalidOrder):
        kraken.create_order("BTC/USDT", "limit", "buy", 0.00001, 30_000)
    with pytest.raises(ccxt.OrderNotFound):
        kraken.cancel_order("OAAAAA-BBBBB-CCCCCC")


def test_faults_given_to_the_server_reach_the_client() -> None:
    faults = ["stop-fail", "ghost:variant=html-5xx,status=502"]
    with serving(seed=42, clock=VirtualClock(SANDBOX_EPOCH), faults=faults) as server:
        [key] = server.keys
        exchange = ccxt.kraken({"apiKey": key.key, "secret": key.secret, "enableRateLimit": False})
        exchange.urls["api"] = {"public": server.url, "private": server.url}
        with pytest.raises(ccxt.ExchangeNotAvailable):  # the answer was lost ...
            exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 30_000)
        [placed] = exchange.fetch_open_orders()  # ... but the order was placed
        assert placed["price"] == 30_000
        exchange.create_order("BTC/USDT", "market", "buy", 0.01)
        with pytest.raises(ccxt.InvalidOrder):
            exchange.create_order("BTC/USDT", "market", "sell", 0.01, None, {"stopLossPrice": 30_000})
        exchange.session.close()
    assert server.sandbox is not None
    assert [entry["fault"] for entry in server.sandbox.faults.log_dicts()] == ["ghost", "stop-fail"]

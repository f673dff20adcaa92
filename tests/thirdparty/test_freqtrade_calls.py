"""The calls freqtrade (2026.9, checked live against `tg sim serve`) makes to Kraken
through ccxt, with its own arguments, against the served sandbox: a regression here
breaks the docs/sandbox.md freqtrade recipe without freqtrade installed.

freqtrade passes `ccxt_config` (the sandbox's URLs) to the constructor of both its
clients; its Kraken class adds `trading_agreement=agree` to every order, places its
stop-loss on exchange with `stopLossPrice` (a market stop, or a limit one with the
limit as price), reads it back through `fetch_order`, and counts what open orders hold
itself from `fetch_open_orders` (freqtrade.exchange.kraken.Kraken.get_balances)."""

from __future__ import annotations

from collections.abc import Iterator

import ccxt
import pytest

from simulator.testing import ServedSandbox, served_sandbox

pytestmark = pytest.mark.integration

AGREE = {"trading_agreement": "agree"}
"""freqtrade's Kraken._params, merged into every order it places."""


@pytest.fixture
def sandbox() -> Iterator[ServedSandbox]:
    with served_sandbox(seed=42) as served:
        yield served


@pytest.fixture
def kraken(sandbox: ServedSandbox) -> Iterator[ccxt.kraken]:
    exchange = ccxt.kraken(sandbox.ccxt_config(timeout=5_000))
    exchange.load_markets()
    yield exchange
    exchange.session.close()


def _freqtrade_used(kraken: ccxt.kraken) -> dict[str, float]:
    """What freqtrade's Kraken.get_balances counts as held by open orders, per currency."""
    used: dict[str, float] = {}
    for order in kraken.fetch_open_orders():
        assert order["remaining"] is not None
        sell = order["side"] == "sell"
        assert sell or order["price"] is not None
        currency = order["symbol"].split("/")[0 if sell else 1]
        used[currency] = used.get(currency, 0.0) + (order["remaining"] if sell else order["remaining"] * order["price"])
    return used


def _buy_at_the_ask(kraken: ccxt.kraken, stake: float) -> tuple[str, float]:
    """freqtrade's entry: a limit buy at the top ask (entry_pricing price_side other,
    use_order_book), its amount the stake over the price at the market's precision."""
    ask = kraken.fetch_l2_order_book("BTC/USD", 1)["asks"][0][0]
    amount = float(kraken.amount_to_precision("BTC/USD", stake / ask))
    order = kraken.create_order("BTC/USD", "limit", "buy", amount, ask, dict(AGREE))
    return order["id"], amount


def test_the_market_freqtrade_trades_is_tradable(kraken: ccxt.kraken) -> None:
    market = kraken.markets["BTC/USD"]
    assert (market["spot"], market["active"], market.get("darkpool", False)) == (True, True, False)
    assert market["quote"] == "USD" and market["limits"]["cost"]["min"] > 0


def test_an_entry_fills_and_its_market_stop_rests_until_freqtrade_cancels_it(kraken: ccxt.kraken) -> None:
    entry, amount = _buy_at_the_ask(kraken, 100)
    filled = kraken.fetch_order(entry, "BTC/USD")
    assert (filled["status"], filled["filled"], filled["remaining"]) == ("closed", amount, 0)
    assert filled["fee"]["currency"] == "USD" and float(filled["fee"]["cost"]) > 0  # freqtrade reads the fee here

    stop_price = float(kraken.price_to_precision("BTC/USD", filled["average"] * 0.95))
    stop = kraken.create_order("BTC/USD", "market", "sell", amount, None, {**AGREE, "stopLossPrice": stop_price})
    resting = kraken.fetch_order(stop["id"], "BTC/USD")
    assert resting["status"] == "open"
    assert resting["stopLossPrice"] == stop_price  # freqtrade's stop_price_prop, read to adjust the stop
    assert _freqtrade_used(kraken) == {"BTC": amount}

    kraken.cancel_order(stop["id"], "BTC/USD")  # an exit by ROI cancels the stop first
    assert kraken.fetch_order(stop["id"], "BTC/USD")["status"] == "canceled"
    assert _freqtrade_used(kraken) == {}


def test_a_limit_stop_fills_in_a_crash_and_freqtrade_reads_it_closed(
    sandbox: ServedSandbox, kraken: ccxt.kraken
) -> None:
    entry, amount = _buy_at_the_ask(kraken, 100)
    average = kraken.fetch_order(entry, "BTC/USD")["average"]
    stop_price = float(kraken.price_to_precision("BTC/USD", average * 0.95))
    limit = float(kraken.price_to_precision("BTC/USD", stop_price * 0.99))  # stoploss_on_exchange_limit_ratio
    stop = kraken.create_order("BTC/USD", "limit", "sell", amount, limit, {**AGREE, "stopLossPrice": stop_price})
    assert stop["info"]["descr"]["order"].endswith(f"@ stop loss {stop_price} -> limit {limit}")

    sandbox.control.shape_price("flash-crash", pair="BTC/USD", pct=-8, over=60, recover=600)
    sandbox.control.advance(60)

    closed = kraken.fetch_order(stop["id"], "BTC/USD")
    assert (closed["status"], closed["filled"], closed["stopLossPrice"]) == ("closed", amount, stop_price)
    assert limit <= closed["average"] <= stop_price
    assert kraken.fetch_balance()["total"].get("BTC", 0) == 0

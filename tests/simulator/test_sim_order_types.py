"""The order types, price notations and flags of AddOrder beyond the plain ones:
trailing stops, relative prices, viqc, fcib, IOC, GTD, starttm, conditional close."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from simulator.pairs import PAIRS
from simulator.price_path import synthetic_paths
from tests.simulator.sandbox_client import KrakenClient, resting_buy

HOUR = 3600
XBTUSD = synthetic_paths(42, [PAIRS["XXBTZUSD"]], SANDBOX_EPOCH)["XXBTZUSD"]
"""The market the exchange sees (same seed and origin): it opens at 60000.0, climbs to
about 60690 within four hours and falls below 59700 by hour ten."""


async def order_of(kraken: KrakenClient, txid: str) -> dict[str, Any]:
    order: dict[str, Any] = (await kraken.result("QueryOrders", txid=txid, trades="true"))[txid]
    return order


async def test_trailing_stop_follows_the_high_and_fires_on_the_pullback(
    kraken: KrakenClient, clock: VirtualClock
) -> None:
    await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="0.2")
    txid = await kraken.place(pair="XBTUSD", type="sell", ordertype="trailing-stop", volume="0.1", price="+700")
    order = await order_of(kraken, txid)
    assert order["descr"]["order"] == "sell 0.10000000 XBTUSD @ trailing stop +700.0"
    assert order["stopprice"] == "59300.0"
    clock.advance(4 * HOUR)
    _, high = XBTUSD.price_range(SANDBOX_EPOCH, SANDBOX_EPOCH + 4 * HOUR)
    order = await order_of(kraken, txid)
    assert order["status"] == "open"
    assert Decimal(order["stopprice"]) == high - 700
    clock.advance(8 * HOUR)
    order = await order_of(kraken, txid)
    assert (order["status"], order["misc"]) == ("closed", "stopped")
    # a fixed stop would have sold near 59300; the trailing one sold near the top less 700
    assert high - 720 < Decimal(order["price"]) <= high - 700


async def test_trailing_stop_in_percent_and_its_notation(kraken: KrakenClient) -> None:
    await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="0.1")
    txid = await kraken.place(pair="XBTUSD", type="sell", ordertype="trailing-stop", volume="0.1", price="+2%")
    order = await order_of(kraken, txid)
    assert (order["descr"]["price"], order["stopprice"]) == ("+2.0000%", "58800.0")
    for price in ("500", "-500", "+0", "+100%"):
        answer = await kraken.private(
            "AddOrder", pair="XBTUSD", type="sell", ordertype="trailing-stop", volume="0.1", price=price
        )
        assert answer == {"error": ["EGeneral:Invalid arguments:price"]}, price


@pytest.mark.parametrize(
    ("ordertype", "side", "price", "resolved"),
    [
        ("limit", "buy", "-100", "59900.0"),
        ("limit", "buy", "-1.5%", "59100.0"),
        ("limit", "sell", "+1%", "60600.0"),
        ("limit", "buy", "#1%", "59400.0"),
        ("limit", "sell", "#1%", "60600.0"),
        ("stop-loss", "sell", "#2%", "58800.0"),
        ("take-profit", "sell", "#2%", "61200.0"),
    ],
)
async def test_relative_prices_resolve_against_the_last_trade(
    kraken: KrakenClient, ordertype: str, side: str, price: str, resolved: str
) -> None:
    if side == "sell":
        await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="0.1")
    txid = await kraken.place(pair="XBTUSD", type=side, ordertype=ordertype, volume="0.05", price=price)
    assert (await order_of(kraken, txid))["descr"]["price"] == resolved


async def test_relative_price_that_goes_negative_is_refused(kraken: KrakenClient) -> None:
    answer = await kraken.private(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="-70000"
    )
    assert answer == {"error": ["EGeneral:Invalid arguments:price"]}


async def test_viqc_market_buy_spends_the_quote_volume(kraken: KrakenClient) -> None:
    txid = await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="600", oflags="viqc")
    order = await order_of(kraken, txid)
    assert order["oflags"] == "viqc,fciq"
    assert Decimal("590") < Decimal(order["cost"]) <= Decimal("600")
    assert Decimal(order["vol"]) == Decimal(order["vol_exec"]) < Decimal("0.01")


async def test_fcib_takes_the_fee_in_the_base_currency(kraken: KrakenClient) -> None:
    txid = await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="0.1", oflags="fcib")
    order = await order_of(kraken, txid)
    balance = await kraken.result("Balance")
    assert Decimal(balance["XXBT"]) == Decimal("0.1") * (1 - Decimal("0.0026"))
    assert Decimal(balance["ZUSD"]) == Decimal(100000) - Decimal(order["cost"])
    refused = await kraken.private(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.1", oflags="fcib,fciq"
    )
    assert refused == {"error": ["EGeneral:Invalid arguments:oflags"]}


async def test_ioc_cancels_what_does_not_fill_at_once(kraken: KrakenClient) -> None:
    resting = await kraken.place(
        pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="59000", timeinforce="IOC"
    )
    crossing = await kraken.place(
        pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="60100", timeinforce="IOC"
    )
    assert (await order_of(kraken, resting))["status"] == "canceled"
    assert (await order_of(kraken, crossing))["status"] == "closed"


async def test_gtd_needs_an_expiry_and_expires(kraken: KrakenClient, clock: VirtualClock) -> None:
    limit = resting_buy(timeinforce="GTD")
    assert await kraken.private("AddOrder", **limit) == {"error": ["EGeneral:Invalid arguments:expiretm"]}
    txid = await kraken.place(**limit, expiretm=str(int(SANDBOX_EPOCH) + 90))
    clock.advance(60)
    assert (await order_of(kraken, txid))["status"] == "open"
    clock.advance(60)
    order = await order_of(kraken, txid)
    assert (order["status"], order["closetm"]) == ("expired", SANDBOX_EPOCH + 90)


async def test_starttm_keeps_an_order_pending_until_then(kraken: KrakenClient, clock: VirtualClock) -> None:
    txid = await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="0.01", starttm="+90")
    order = await order_of(kraken, txid)
    assert (order["status"], order["starttm"], order["vol_exec"]) == ("pending", SANDBOX_EPOCH + 90, "0.00000000")
    clock.advance(120)
    order = await order_of(kraken, txid)
    assert (order["status"], order["vol_exec"]) == ("closed", "0.01000000")
    trade = next(iter((await kraken.result("TradesHistory"))["trades"].values()))
    assert trade["time"] == SANDBOX_EPOCH + 90


async def test_post_only_that_would_cross_is_canceled(kraken: KrakenClient) -> None:
    await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="0.01")
    txid = await kraken.place(
        pair="XBTUSD", type="sell", ordertype="limit", volume="0.01", price="59000", oflags="post"
    )
    order = await order_of(kraken, txid)
    assert (order["status"], order["reason"], order["oflags"]) == ("canceled", "Post only order", "post,fciq")


async def test_conditional_close_opens_against_the_filled_volume(kraken: KrakenClient, clock: VirtualClock) -> None:
    result = await kraken.result(
        "AddOrder",
        pair="XBTUSD",
        type="buy",
        ordertype="limit",
        volume="0.2",
        price="60100",
        **{"close[ordertype]": "take-profit-limit", "close[price]": "60600", "close[price2]": "60550"},
    )
    assert result["descr"] == {
        "order": "buy 0.20000000 XBTUSD @ limit 60100.0",
        "close": "close position @ take profit 60600.0 -> limit 60550.0",
    }
    parent = result["txid"][0]
    open_orders = (await kraken.result("OpenOrders"))["open"]
    ((child_id, child),) = open_orders.items()
    assert child["refid"] == parent
    assert child["descr"]["order"] == "sell 0.20000000 XBTUSD @ take profit 60600.0 -> limit 60550.0"
    assert (await order_of(kraken, parent))["descr"]["close"] == (
        "close position @ take profit 60600.0 -> limit 60550.0"
    )
    clock.advance(4 * HOUR)
    child = await order_of(kraken, child_id)
    assert (child["status"], child["misc"]) == ("closed", "touched")
    assert Decimal(child["price"]) >= Decimal("60550")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"close[price]": "61000"}, "close[ordertype]"),
        ({"close[ordertype]": "limit"}, "close[price]"),
        ({"close[ordertype]": "stop-loss-limit", "close[price]": "58000"}, "close[price2]"),
        ({"close[ordertype]": "sideways"}, "close[ordertype]"),
        ({"starttm": "later"}, "starttm"),
        ({"timeinforce": "FOK"}, "timeinforce"),
    ],
)
async def test_refused_order_terms(kraken: KrakenClient, extra: dict[str, str], field: str) -> None:
    answer = await kraken.private("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.01", **extra)
    assert answer == {"error": [f"EGeneral:Invalid arguments:{field}"]}


async def test_kraken_sdk_defaults_are_accepted(kraken: KrakenClient) -> None:
    """python-kraken-sdk always sends these, with Python's spelling of booleans."""
    answer = await kraken.private(
        "AddOrder",
        pair="XBTUSD",
        type="buy",
        ordertype="market",
        volume="0.01",
        stptype="cancel-newest",
        starttm="0",
        validate="False",
        reduce_only="False",
    )
    assert answer["error"] == [] and "txid" in answer["result"]

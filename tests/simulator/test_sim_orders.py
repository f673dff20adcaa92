"""Placing, filling, triggering, cancelling and querying orders over the wire."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from simulator.exchange import Exchange
from simulator.models import OrderSpec, OrderType, Side
from simulator.pairs import PAIRS
from simulator.price_path import PricePath, synthetic_paths
from tests.simulator.sandbox_client import TRADE_ID, KrakenClient, resting_buy

HOUR = 3600


@pytest.fixture
def xbtusdt() -> PricePath:
    """The market the exchange will see (same seed and origin), to aim triggers."""
    return synthetic_paths(42, PAIRS.values(), SANDBOX_EPOCH)["XBTUSDT"]


async def order_of(kraken: KrakenClient, txid: str) -> dict[str, Any]:
    order: dict[str, Any] = (await kraken.result("QueryOrders", txid=txid, trades="true"))[txid]
    return order


async def balances(kraken: KrakenClient) -> dict[str, Decimal]:
    return {asset: Decimal(v) for asset, v in (await kraken.result("Balance")).items()}


async def test_market_buy_fills_at_once_and_pays_the_taker_fee(kraken: KrakenClient) -> None:
    result = await kraken.result("AddOrder", pair="BTC/USDT", type="buy", ordertype="market", volume="0.01")
    assert result["descr"] == {"order": "buy 0.01000000 XBTUSDT @ market"}
    order = await order_of(kraken, result["txid"][0])
    assert order["status"] == "closed"
    assert order["vol_exec"] == "0.01000000"
    price, cost, fee = Decimal(order["price"]), Decimal(order["cost"]), Decimal(order["fee"])
    assert Decimal("60000") < price < Decimal("60000") * Decimal("1.0005")
    assert cost == (Decimal("0.01") * price).quantize(Decimal("0.00001"))
    assert fee == (cost * Decimal("0.0026")).quantize(Decimal("0.00001"))
    (trade_id,) = order["trades"]
    assert TRADE_ID.match(trade_id)
    after = await balances(kraken)
    assert after["XXBT"] == Decimal("0.01")
    assert abs(after["USDT"] - (Decimal(100000) - cost - fee)) < Decimal("0.00001")
    assert after["ZUSD"] == Decimal(100000)


def test_bigger_market_orders_slip_further(exchange: Exchange) -> None:
    small = exchange.add_order("default", OrderSpec("XXBTZUSD", Side.BUY, OrderType.MARKET, Decimal("0.01")))
    large = exchange.add_order("default", OrderSpec("XXBTZUSD", Side.BUY, OrderType.MARKET, Decimal("1.5")))
    assert small is not None and large is not None
    assert large.average_price > small.average_price


async def test_market_sell_without_the_asset_is_refused(kraken: KrakenClient) -> None:
    answer = await kraken.private("AddOrder", pair="XBTUSD", type="sell", ordertype="market", volume="0.01")
    assert answer == {"error": ["EOrder:Insufficient funds"]}


async def test_market_buy_beyond_the_balance_is_refused(kraken: KrakenClient) -> None:
    answer = await kraken.private("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="1.7")
    assert answer == {"error": ["EOrder:Insufficient funds"]}
    assert (await balances(kraken))["ZUSD"] == Decimal(100000)


async def test_order_minimum(kraken: KrakenClient) -> None:
    answer = await kraken.private("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.00009")
    assert answer == {"error": ["EOrder:Order minimum not met"]}
    answer = await kraken.private("AddOrder", pair="XRPUSDT", type="buy", ordertype="market", volume="9.9")
    assert answer == {"error": ["EOrder:Order minimum not met"]}


async def test_cost_minimum(kraken: KrakenClient) -> None:
    answer = await kraken.private(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.0001", price="4000"
    )
    assert answer == {"error": ["EOrder:Cost minimum not met"]}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        # Kraken's own words (reported by its users: freqtrade, zenbot, XChange)
        ({"price": "59000.05"}, "EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals."),
        ({"ordertype": "stop-loss-limit", "price": "59000", "price2": "59000.05"}, "EGeneral:Invalid arguments:price2"),
        ({"volume": "0.000000001"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "-1"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "lots"}, "EGeneral:Invalid arguments:volume"),
        ({"type": "hold"}, "EGeneral:Invalid arguments:type"),
        ({"ordertype": "trailing-stop-limit"}, "EGeneral:Invalid arguments:ordertype"),
        ({"ordertype": "trailing-stop"}, "EGeneral:Invalid arguments:price"),
        ({"userref": "first"}, "EGeneral:Invalid arguments:userref"),
        ({"userref": str(2**31)}, "EGeneral:Invalid arguments:userref"),
        ({"leverage": "2"}, "EGeneral:Invalid arguments:leverage"),
        ({"oflags": "viqc"}, "EGeneral:Invalid arguments:oflags"),
        ({"validate": "perhaps"}, "EGeneral:Invalid arguments:validate"),
        ({"cl_ord_id": "far too long for a client id"}, "EGeneral:Invalid arguments:cl_ord_id"),
        ({"userref": "7", "cl_ord_id": "mine"}, "EGeneral:Invalid arguments:cl_ord_id"),
        ({"expiretm": "+0"}, "EGeneral:Invalid arguments:expiretm"),
        ({"pair": "XBTJPY"}, "EQuery:Unknown asset pair"),
    ],
)
async def test_refused_add_order_arguments(kraken: KrakenClient, params: dict[str, str], error: str) -> None:
    order = resting_buy(**{"price": "59000", **params})
    assert await kraken.private("AddOrder", **order) == {"error": [error]}


async def test_missing_required_argument_is_named(kraken: KrakenClient) -> None:
    answer = await kraken.private("AddOrder", pair="XBTUSD", type="buy", ordertype="market")
    assert answer == {"error": ["EGeneral:Invalid arguments:volume"]}
    answer = await kraken.private("AddOrder", pair="XBTUSD", type="sell", ordertype="stop-loss", volume="0.01")
    assert answer == {"error": ["EGeneral:Invalid arguments:price"]}


async def test_validate_checks_without_placing(kraken: KrakenClient) -> None:
    result = await kraken.result(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="1.25", price="37500", validate="true"
    )
    assert result == {"descr": {"order": "buy 1.25000000 XBTUSD @ limit 37500.0"}}
    assert (await kraken.result("OpenOrders"))["open"] == {}
    refused = await kraken.private(
        "AddOrder", pair="XBTUSD", type="sell", ordertype="market", volume="0.01", validate="1"
    )
    assert refused == {"error": ["EOrder:Insufficient funds"]}


async def test_limit_buy_rests_holds_funds_and_fills_when_crossed(
    kraken: KrakenClient, clock: VirtualClock, xbtusdt: PricePath
) -> None:
    low, _ = xbtusdt.price_range(SANDBOX_EPOCH, SANDBOX_EPOCH + 6 * HOUR)
    limit = low + Decimal("5.0")
    assert limit < xbtusdt.price_at(SANDBOX_EPOCH)
    txid = await kraken.place(pair="XBTUSDT", type="buy", ordertype="limit", volume="1.5", price=str(limit))
    assert (await order_of(kraken, txid))["status"] == "open"
    # 1.5 XBT at the limit is held: another 1 XBT cannot be paid for now
    answer = await kraken.private("AddOrder", pair="XBTUSDT", type="buy", ordertype="market", volume="1")
    assert answer == {"error": ["EOrder:Insufficient funds"]}
    clock.advance(6 * HOUR)
    order = await order_of(kraken, txid)
    assert order["status"] == "closed"
    assert Decimal(order["price"]) == limit
    maker_fee = Decimal(order["cost"]) * Decimal("0.0016")
    assert Decimal(order["fee"]) == maker_fee.quantize(Decimal("0.00001"))
    assert (await balances(kraken))["XXBT"] == Decimal("1.5")


async def test_post_only_limit_that_would_take_is_canceled(kraken: KrakenClient) -> None:
    txid = await kraken.place(pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="61000", oflags="post")
    order = await order_of(kraken, txid)
    assert (order["status"], order["reason"]) == ("canceled", "Post only order")
    assert order["vol_exec"] == "0.00000000"


async def test_marketable_limit_takes_at_no_worse_than_its_price(kraken: KrakenClient) -> None:
    txid = await kraken.place(pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="61000")
    order = await order_of(kraken, txid)
    assert order["status"] == "closed"
    assert Decimal("60000") < Decimal(order["price"]) <= Decimal("61000")


async def test_stop_loss_fires_when_the_low_reaches_it(
    kraken: KrakenClient, clock: VirtualClock, xbtusdt: PricePath
) -> None:
    await kraken.place(pair="XBTUSDT", type="buy", ordertype="market", volume="0.5")
    low, _ = xbtusdt.price_range(SANDBOX_EPOCH, SANDBOX_EPOCH + 6 * HOUR)
    stop = low + Decimal("10.0")
    txid = await kraken.place(pair="XBTUSDT", type="sell", ordertype="stop-loss", volume="0.5", price=str(stop))
    order = await order_of(kraken, txid)
    assert order["status"] == "open"
    assert order["descr"]["order"] == f"sell 0.50000000 XBTUSDT @ stop loss {stop}"
    assert order["stopprice"] == str(stop)
    clock.advance(6 * HOUR)
    order = await order_of(kraken, txid)
    assert order["status"] == "closed"
    assert abs(Decimal(order["price"]) - stop) / stop < Decimal("0.003")
    taker_fee = Decimal(order["cost"]) * Decimal("0.0026")
    assert Decimal(order["fee"]) == taker_fee.quantize(Decimal("0.00001"))
    assert (await balances(kraken))["XXBT"] == 0


async def test_take_profit_fires_when_the_high_reaches_it(
    kraken: KrakenClient, clock: VirtualClock, xbtusdt: PricePath
) -> None:
    await kraken.place(pair="XBTUSDT", type="buy", ordertype="market", volume="0.5")
    _, high = xbtusdt.price_range(SANDBOX_EPOCH, SANDBOX_EPOCH + 6 * HOUR)
    target = high - Decimal("10.0")
    txid = await kraken.place(pair="XBTUSDT", type="sell", ordertype="take-profit", volume="0.5", price=str(target))
    assert (await order_of(kraken, txid))["status"] == "open"
    clock.advance(6 * HOUR)
    order = await order_of(kraken, txid)
    assert order["status"] == "closed"
    assert Decimal(order["price"]) >= target * Decimal("0.997")


async def test_untriggered_protection_holds_no_funds_and_is_canceled_when_they_are_gone(
    kraken: KrakenClient, clock: VirtualClock, xbtusdt: PricePath
) -> None:
    await kraken.place(pair="XBTUSDT", type="buy", ordertype="market", volume="0.5")
    low, high = xbtusdt.price_range(SANDBOX_EPOCH, SANDBOX_EPOCH + 6 * HOUR)
    stop = await kraken.place(
        pair="XBTUSDT", type="sell", ordertype="stop-loss", volume="0.5", price=str(low + Decimal("10.0"))
    )
    target = await kraken.place(
        pair="XBTUSDT", type="sell", ordertype="take-profit", volume="0.5", price=str(high + Decimal("5000.0"))
    )
    # both protect the same 0.5 XBT; neither holds it, so it can still be sold
    await kraken.place(pair="XBTUSDT", type="sell", ordertype="market", volume="0.5")
    clock.advance(6 * HOUR)
    fired = await order_of(kraken, stop)
    assert (fired["status"], fired["reason"]) == ("canceled", "Insufficient funds")
    assert (await order_of(kraken, target))["status"] == "open"


async def test_stop_loss_limit_rests_at_its_limit_once_triggered(
    kraken: KrakenClient, clock: VirtualClock, xbtusdt: PricePath
) -> None:
    await kraken.place(pair="XBTUSDT", type="buy", ordertype="market", volume="0.2")
    low, _ = xbtusdt.price_range(SANDBOX_EPOCH, SANDBOX_EPOCH + 6 * HOUR)
    stop, limit = low + Decimal("10.0"), low + Decimal("20000.0")
    txid = await kraken.place(
        pair="XBTUSDT",
        type="sell",
        ordertype="stop-loss-limit",
        volume="0.2",
        price=str(stop),
        price2=str(limit),
    )
    order = await order_of(kraken, txid)
    assert order["descr"]["order"] == f"sell 0.20000000 XBTUSDT @ stop loss {stop} -> limit {limit}"
    clock.advance(6 * HOUR)
    order = await order_of(kraken, txid)
    assert (order["status"], order["limitprice"]) == ("open", str(limit))
    # resting at its limit now, the sell holds the base: it cannot be sold twice
    answer = await kraken.private("AddOrder", pair="XBTUSDT", type="sell", ordertype="market", volume="0.2")
    assert answer == {"error": ["EOrder:Insufficient funds"]}


async def test_limit_expires_at_its_expiry(kraken: KrakenClient, clock: VirtualClock) -> None:
    txid = await kraken.place(
        pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="30000", expiretm="+120"
    )
    clock.advance(300)
    order = await order_of(kraken, txid)
    assert (order["status"], order["expiretm"], order["closetm"]) == (
        "expired",
        SANDBOX_EPOCH + 120,
        SANDBOX_EPOCH + 120,
    )


async def test_cancel_by_txid_userref_and_client_id(kraken: KrakenClient) -> None:
    limit = resting_buy()
    first = await kraken.place(**limit)
    await kraken.place(**limit, userref="42")
    await kraken.place(**limit, userref="42")
    await kraken.place(**limit, cl_ord_id="tg-entry-1")
    assert await kraken.result("CancelOrder", txid=first) == {"count": 1}
    assert await kraken.result("CancelOrder", txid="42") == {"count": 2}
    assert await kraken.result("CancelOrder", cl_ord_id="tg-entry-1") == {"count": 1}
    assert (await kraken.result("OpenOrders"))["open"] == {}
    canceled = await order_of(kraken, first)
    assert (canceled["status"], canceled["reason"]) == ("canceled", "User requested")


async def test_cancel_of_an_unknown_or_finished_order(kraken: KrakenClient) -> None:
    unknown = await kraken.private("CancelOrder", txid="OAAAAA-BBBBB-CCCCCC")
    assert unknown == {"error": ["EOrder:Unknown order"]}
    txid = await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="0.01")
    assert await kraken.private("CancelOrder", txid=txid) == {"error": ["EOrder:Unknown order"]}
    assert await kraken.private("CancelOrder") == {"error": ["EGeneral:Invalid arguments:txid"]}


async def test_duplicate_open_client_order_id_is_refused(kraken: KrakenClient) -> None:
    limit = resting_buy(cl_ord_id="entry-7")
    await kraken.place(**limit)
    again = await kraken.private("AddOrder", **limit)
    assert again == {"error": ["EOrder:Duplicate order"]}


async def test_query_orders_by_txids_userref_and_unknown(kraken: KrakenClient) -> None:
    first = await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="0.01", userref="5")
    second = await kraken.place(pair="ETHUSD", type="buy", ordertype="market", volume="0.1")
    both = await kraken.result("QueryOrders", txid=f"{first},{second}")
    assert list(both) == [first, second]
    assert both[first]["userref"] == 5 and both[second]["userref"] == 0
    assert list(await kraken.result("QueryOrders", userref="5")) == [first]
    unknown = await kraken.private("QueryOrders", txid="OAAAAA-BBBBB-CCCCCC")
    assert unknown == {"error": ["EOrder:Invalid order"]}


async def test_open_and_closed_orders(kraken: KrakenClient, clock: VirtualClock) -> None:
    market = await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="0.01")
    clock.advance(60)
    resting = await kraken.place(pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="40000")
    clock.advance(60)
    canceled = await kraken.place(pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="40000")
    await kraken.result("CancelOrder", txid=canceled)
    assert list((await kraken.result("OpenOrders"))["open"]) == [resting]
    closed = await kraken.result("ClosedOrders")
    assert list(closed["closed"]) == [canceled, market]
    assert closed["count"] == 2
    later = await kraken.result("ClosedOrders", start=str(int(SANDBOX_EPOCH) + 30), closetime="close")
    assert list(later["closed"]) == [canceled]


def test_matching_does_not_depend_on_how_time_is_walked() -> None:
    """Quiet hours are skipped whole; the outcome must equal a minute-by-minute walk."""
    outcomes = []
    for steps in ([6 * HOUR], [7 * 60] * 51 + [3 * 60]):
        clock = VirtualClock(SANDBOX_EPOCH)
        exchange = Exchange.create(clock, seed=42, fixed_ids=True)
        exchange.add_order("default", OrderSpec("XBTUSDT", Side.BUY, OrderType.MARKET, Decimal("0.5")))
        for price in ("59700.0", "59900.0", "60100.0"):
            exchange.add_order(
                "default", OrderSpec("XBTUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.1"), price=Decimal(price) - 400)
            )
            exchange.add_order(
                "default",
                OrderSpec("XBTUSDT", Side.SELL, OrderType.STOP_LOSS, Decimal("0.1"), price=Decimal(price) - 200),
            )
        for seconds in steps:
            exchange.advance(seconds)
        outcomes.append((exchange.state.orders, exchange.state.trades, exchange.balance("default")))
    assert outcomes[0] == outcomes[1]
    assert any(not order.is_live for order in list(outcomes[0][0].values())[1:])


async def test_unknown_or_missing_parameters_of_private_calls(kraken: KrakenClient) -> None:
    assert await kraken.private("Balance", asset="XBT") == {"error": ["EGeneral:Invalid arguments:asset"]}
    assert await kraken.private("QueryOrders") == {"error": ["EGeneral:Invalid arguments:txid"]}
    bad_userref = await kraken.private("OpenOrders", userref="x")
    assert bad_userref == {"error": ["EGeneral:Invalid arguments:userref"]}
    assert await kraken.private("Nonexistent") == {"error": ["EGeneral:Unknown method"]}

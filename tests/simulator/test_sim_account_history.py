"""TradeVolume's fee tiers, OpenPositions on spot, OrderAmends' trail and Spread."""

from __future__ import annotations

from decimal import Decimal

from core.domain.clock import VirtualClock
from tests.simulator.sandbox_client import KrakenClient

LIMIT = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "50000"}


async def test_trade_volume_starts_at_the_first_tier(kraken: KrakenClient) -> None:
    fresh = await kraken.result("TradeVolume")
    assert fresh == {"currency": "ZUSD", "volume": "0.0000"}
    tiers = await kraken.result("TradeVolume", pair="XBTUSD,USDTUSD")
    assert tiers["fees"]["XXBTZUSD"] == {
        "fee": "0.2600",
        "minfee": "0.1000",
        "maxfee": "0.2600",
        "nextfee": "0.2400",
        "tiervolume": "0.0000",
        "nextvolume": "50000.0000",
    }
    assert tiers["fees_maker"]["XXBTZUSD"]["fee"] == "0.1600"
    assert tiers["fees"]["USDTZUSD"]["fee"] == "0.2000"  # the stablecoin schedule


async def test_volume_moves_the_account_up_a_tier_and_its_next_trade_pays_it(kraken: KrakenClient) -> None:
    await kraken.result("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="1")
    await kraken.result("AddOrder", pair="USDTUSD", type="buy", ordertype="market", volume="1000")
    tiers = await kraken.result("TradeVolume", pair="XBTUSD", **{"fee-info": "true"})
    history = (await kraken.result("TradesHistory"))["trades"].values()
    bitcoin = next(t for t in history if t["pair"] == "XXBTZUSD")
    assert Decimal(tiers["volume"]) == Decimal(bitcoin["cost"]).quantize(Decimal("0.0001"))  # USDT/USD does not count
    assert tiers["fees"]["XXBTZUSD"]["fee"] == "0.2400" and tiers["fees"]["XXBTZUSD"]["tiervolume"] == "50000.0000"
    await kraken.result("AddOrder", pair="XBTUSD", type="sell", ordertype="market", volume="0.5")
    sale = next(t for t in (await kraken.result("TradesHistory"))["trades"].values() if t["type"] == "sell")
    assert Decimal(sale["fee"]) == (Decimal(sale["cost"]) * Decimal("0.0024")).quantize(Decimal("0.0001"))


async def test_trade_volume_schedule_and_refusals(kraken: KrakenClient) -> None:
    schedule = (await kraken.result("TradeVolume", pair="ETHEUR", fee_schedule="true"))["schedules"]
    [eth] = schedule
    assert eth["pair"] == "ETHEUR" and eth["tiers"][0] == {
        "maker_fee": "0.1600",
        "taker_fee": "0.2600",
        "min_spot_volume": "0.0000",
        "active": True,
    }
    assert sum(1 for tier in eth["tiers"] if tier.get("active")) == 1
    assert await kraken.private("TradeVolume", pair="NOPE") == {"error": ["EQuery:Unknown asset pair"]}


async def test_open_positions_are_empty_on_spot(kraken: KrakenClient) -> None:
    await kraken.result("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.01")
    assert await kraken.result("OpenPositions") == {}
    consolidated = await kraken.private("OpenPositions", docalcs="true", consolidation="market")
    assert consolidated == {"error": [], "result": []}


async def test_order_amends_trail_the_original_then_each_amend(kraken: KrakenClient, clock: VirtualClock) -> None:
    txid = (await kraken.result("AddOrder", **LIMIT))["txid"][0]
    [original] = (await kraken.result("OrderAmends", order_id=txid))["amends"]
    assert original["amend_type"] == "original" and original["limit_price"] == "50000.0"
    clock.advance(5)
    first = (await kraken.result("AmendOrder", txid=txid, limit_price="50100"))["amend_id"]
    second = (await kraken.result("AmendOrder", txid=txid, order_qty="0.02", post_only="true"))["amend_id"]
    trail = await kraken.result("OrderAmends", order_id=txid)
    assert trail["count"] == 3
    rows = trail["amends"]
    assert [row["amend_type"] for row in rows] == ["original", "user", "user"]
    assert rows[0] == original
    assert [row["amend_id"] for row in rows[1:]] == [first, second]
    assert [(row["order_qty"], row["limit_price"], row["post_only"]) for row in rows] == [
        ("0.01000000", "50000.0", False),
        ("0.01000000", "50100.0", False),
        ("0.02000000", "50100.0", True),
    ]
    assert rows[0]["timestamp"] < rows[1]["timestamp"] and rows[1]["timestamp"] - rows[0]["timestamp"] == 5 * 10**9
    assert await kraken.private("OrderAmends", order_id="ONOPE-NOPE-NOPE") == {"error": ["EOrder:Unknown order"]}


async def test_spread_ends_at_the_ticker_quote(kraken: KrakenClient, clock: VirtualClock) -> None:
    clock.advance(3_600)
    spread = (await kraken.public("Spread", pair="ETHUSD"))["result"]
    rows = spread["XETHZUSD"]
    ticker = (await kraken.public("Ticker", pair="ETHUSD"))["result"]["XETHZUSD"]
    assert len(rows) == 200 and spread["last"] == rows[-1][0]
    assert [row[0] for row in rows] == sorted(row[0] for row in rows)
    assert rows[-1][1:] == [ticker["b"][0], ticker["a"][0]]
    assert all(Decimal(bid) < Decimal(ask) for _, bid, ask in rows)
    newer = (await kraken.public("Spread", pair="ETHUSD", since=rows[-3][0]))["result"]["XETHZUSD"]
    assert newer == rows[-2:]

"""Public market-data endpoints over the wire."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from tests.simulator.sandbox_client import KrakenClient


async def test_time_is_the_sandbox_clock(kraken: KrakenClient, clock: VirtualClock) -> None:
    clock.advance(90)
    answer = await kraken.public("Time")
    assert answer == {
        "error": [],
        "result": {"unixtime": int(SANDBOX_EPOCH) + 90, "rfc1123": "Thu, 01 Jan 26 00:01:30 +0000"},
    }


async def test_system_status_is_online(kraken: KrakenClient) -> None:
    answer = await kraken.public("SystemStatus")
    assert answer["result"] == {"status": "online", "timestamp": "2026-01-01T00:00:00Z"}


async def test_assets_by_id_or_altname(kraken: KrakenClient) -> None:
    answer = await kraken.public("Assets", asset="XBT,ZUSD")
    assert answer["result"] == {
        "XXBT": {"aclass": "currency", "altname": "XBT", "decimals": 10, "display_decimals": 5, "status": "enabled"},
        "ZUSD": {"aclass": "currency", "altname": "USD", "decimals": 4, "display_decimals": 2, "status": "enabled"},
    }


async def test_unknown_asset(kraken: KrakenClient) -> None:
    assert await kraken.public("Assets", asset="PEPE") == {"error": ["EQuery:Unknown asset"]}


async def test_asset_pairs_lists_kraken_pairs_with_their_ids(kraken: KrakenClient) -> None:
    result = (await kraken.public("AssetPairs"))["result"]
    assert len(result) >= 20
    assert {"XXBTZUSD", "XBTUSDT", "XETHZUSD", "XRPUSDT", "XXRPXXBT", "XXBTZEUR", "ETHUSDT", "XDGUSD"} <= set(result)
    assert (result["XXBTZEUR"]["wsname"], result["XXBTZEUR"]["quote"], result["XXBTZEUR"]["costmin"]) == (
        "XBT/EUR",
        "ZEUR",
        "0.45",
    )
    assert (result["XDGUSD"]["base"], result["XDGUSD"]["pair_decimals"], result["XDGUSD"]["tick_size"]) == (
        "XXDG",
        7,
        "0.0000001",
    )
    # stablecoin and FX markets: one rate for maker and taker, Kraken's stablecoin schedule
    assert result["USDTZUSD"]["fees"] == result["USDTZUSD"]["fees_maker"]
    assert result["USDTZUSD"]["fees"][0] == [0, Decimal("0.2")]
    assets = (await kraken.public("Assets"))["result"]
    assert {pair[side] for pair in result.values() for side in ("base", "quote")} <= set(assets)
    xbtusd = result["XXBTZUSD"]
    assert (xbtusd["altname"], xbtusd["wsname"], xbtusd["base"], xbtusd["quote"]) == (
        "XBTUSD",
        "XBT/USD",
        "XXBT",
        "ZUSD",
    )
    assert (
        xbtusd["pair_decimals"],
        xbtusd["lot_decimals"],
        xbtusd["ordermin"],
        xbtusd["costmin"],
        xbtusd["tick_size"],
    ) == (1, 8, "0.0001", "0.5", "0.1")
    assert xbtusd["fees"][0] == [0, Decimal("0.26")]
    assert xbtusd["fees_maker"][0] == [0, Decimal("0.16")]
    assert result["XRPUSDT"]["ordermin"] == "10"
    assert result["XXRPXXBT"]["costmin"] == "0.00002"


@pytest.mark.parametrize("name", ["XBTUSDT", "XBT/USDT", "BTC/USDT", "BTCUSDT", "btc/usdt"])
async def test_asset_pairs_accepts_every_name_of_a_pair(kraken: KrakenClient, name: str) -> None:
    assert list((await kraken.public("AssetPairs", pair=name))["result"]) == ["XBTUSDT"]


async def test_asset_pairs_info_fees_only(kraken: KrakenClient) -> None:
    result = (await kraken.public("AssetPairs", pair="XRPXBT", info="fees"))["result"]
    assert set(result["XXRPXXBT"]) == {"fees", "fees_maker", "fee_volume_currency"}


async def test_unknown_pair(kraken: KrakenClient) -> None:
    assert await kraken.public("Ticker", pair="PEPEUSD") == {"error": ["EQuery:Unknown asset pair"]}
    assert await kraken.public("AssetPairs", pair="XBTJPY") == {"error": ["EQuery:Unknown asset pair"]}


async def test_ticker_quotes_around_the_last_price(kraken: KrakenClient, clock: VirtualClock) -> None:
    clock.advance(3 * 3600 + 17)
    result = (await kraken.public("Ticker", pair="XBTUSD"))["result"]
    ticker = result["XXBTZUSD"]
    bid, last, ask = (Decimal(ticker[k][0]) for k in ("b", "c", "a"))
    assert bid < last < ask
    assert (ask - bid) / last < Decimal("0.0003")
    low_today, high_today = Decimal(ticker["l"][0]), Decimal(ticker["h"][0])
    assert low_today <= last <= high_today
    assert Decimal(ticker["v"][0]) > 0
    assert ticker["t"][0] > 0


async def test_prices_start_near_the_reference_levels(kraken: KrakenClient) -> None:
    result = (await kraken.public("Ticker", pair="XBTUSD,ETHUSD,XRPUSDT,XRPXBT"))["result"]
    last = {key: Decimal(value["c"][0]) for key, value in result.items()}
    assert last["XXBTZUSD"] == Decimal("60000.0")
    assert last["XETHZUSD"] == Decimal("3000.00")
    assert last["XRPUSDT"] == Decimal("0.60000")
    assert last["XXRPXXBT"] == Decimal("0.00001000")


async def test_ohlc_returns_720_candles_oldest_first(kraken: KrakenClient, clock: VirtualClock) -> None:
    clock.advance(600)
    result = (await kraken.public("OHLC", pair="XBTUSD", interval=60))["result"]
    rows = result["XXBTZUSD"]
    assert len(rows) == 720
    times = [row[0] for row in rows]
    assert times == sorted(times) and times[1] - times[0] == 3600
    assert times[-1] == int(SANDBOX_EPOCH)
    assert result["last"] == int(SANDBOX_EPOCH) - 3600
    for _, open_, high, low, close, vwap, volume, count in rows:
        assert Decimal(low) <= min(Decimal(open_), Decimal(close))
        assert Decimal(high) >= max(Decimal(open_), Decimal(close))
        assert Decimal(low) <= Decimal(vwap) <= Decimal(high)
        assert Decimal(volume) > 0 and count > 0


async def test_ohlc_since_returns_only_newer_candles(kraken: KrakenClient, clock: VirtualClock) -> None:
    clock.advance(3600 * 5 + 30)
    rows = (await kraken.public("OHLC", pair="XBTUSDT", interval=60, since=int(SANDBOX_EPOCH) + 3600 * 2))["result"][
        "XBTUSDT"
    ]
    assert [row[0] for row in rows] == [int(SANDBOX_EPOCH) + 3600 * h for h in (3, 4, 5)]


async def test_ohlc_hour_candle_agrees_with_its_minutes(kraken: KrakenClient, clock: VirtualClock) -> None:
    clock.advance(2 * 3600)
    since = int(SANDBOX_EPOCH) - 1
    hour = (await kraken.public("OHLC", pair="ETHUSD", interval=60, since=since))["result"]["XETHZUSD"][0]
    minutes = (await kraken.public("OHLC", pair="ETHUSD", interval=1, since=since))["result"]["XETHZUSD"][:60]
    assert hour[1] == minutes[0][1]
    assert hour[4] == minutes[-1][4]
    assert Decimal(hour[2]) == max(Decimal(m[2]) for m in minutes)
    assert Decimal(hour[3]) == min(Decimal(m[3]) for m in minutes)
    assert hour[7] == sum(m[7] for m in minutes)


async def test_ohlc_refuses_an_unknown_interval(kraken: KrakenClient) -> None:
    answer = await kraken.public("OHLC", pair="XBTUSD", interval=7)
    assert answer == {"error": ["EGeneral:Invalid arguments:interval"]}


async def test_ohlc_requires_a_pair(kraken: KrakenClient) -> None:
    assert await kraken.public("OHLC") == {"error": ["EGeneral:Invalid arguments:pair"]}


async def test_unknown_public_method(kraken: KrakenClient) -> None:
    assert await kraken.public("Spreads", pair="XBTUSD") == {"error": ["EGeneral:Unknown method"]}


async def test_public_call_by_post_form(kraken: KrakenClient) -> None:
    response = await kraken.http.post(
        "/0/public/Ticker", content="pair=ETHUSD", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert list(response.json()["result"]) == ["XETHZUSD"]

"""Public market data beyond the ticker: the simulated book (Depth), the tape of
recent trades (Trades), the system status and AssetPairs' info variants."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from simulator.exchange import Exchange
from simulator.pairs import PAIRS
from tests.simulator.sandbox_client import KrakenClient


async def test_depth_is_a_seeded_book_around_the_price(kraken: KrakenClient) -> None:
    answer = await kraken.public("Depth", pair="BTC/USD", count=25)
    assert answer["error"] == []
    book = answer["result"]["XXBTZUSD"]
    asks = [(Decimal(p), Decimal(v), t) for p, v, t in book["asks"]]
    bids = [(Decimal(p), Decimal(v), t) for p, v, t in book["bids"]]
    assert len(asks) == len(bids) == 25
    assert [a[0] for a in asks] == sorted(a[0] for a in asks)
    assert [b[0] for b in bids] == sorted((b[0] for b in bids), reverse=True)
    assert bids[0][0] < Decimal("60000") < asks[0][0]
    assert all(v > 0 and isinstance(t, int) and t <= SANDBOX_EPOCH for _, v, t in asks + bids)
    assert book["asks"][0][0] == f"{asks[0][0]:.1f}"
    again = await kraken.public("Depth", pair="XBTUSD", count=25)
    assert again["result"] == answer["result"]


async def test_depth_defaults_to_a_hundred_levels_and_refuses_bad_counts(kraken: KrakenClient) -> None:
    book = (await kraken.public("Depth", pair="XRPUSDT"))["result"]["XRPUSDT"]
    assert len(book["asks"]) == len(book["bids"]) == 100
    for count in ("0", "501", "many"):
        assert await kraken.public("Depth", pair="XBTUSD", count=count) == {
            "error": ["EGeneral:Invalid arguments:count"]
        }
    assert await kraken.public("Depth", pair="PEPEUSD") == {"error": ["EQuery:Unknown asset pair"]}
    assert await kraken.public("Depth") == {"error": ["EGeneral:Invalid arguments:pair"]}


async def test_trades_are_the_recent_tape_with_a_cursor(kraken: KrakenClient, clock: VirtualClock) -> None:
    result = (await kraken.public("Trades", pair="XBTUSD", count=50))["result"]
    tape = result["XXBTZUSD"]
    assert len(tape) == 50
    for price, volume, time, side, kind, misc, trade_id in tape:
        assert Decimal(price) > 0 and Decimal(volume) > 0
        assert SANDBOX_EPOCH - 3 * 3600 <= time <= SANDBOX_EPOCH
        assert side in ("b", "s") and kind in ("m", "l") and misc == ""
        assert isinstance(trade_id, int)
    times = [row[2] for row in tape]
    assert times == sorted(times)
    assert result["last"] == str(int(times[-1] * 10**9))
    nothing_new = (await kraken.public("Trades", pair="XBTUSD", since=result["last"]))["result"]
    assert nothing_new["XXBTZUSD"] == [] and nothing_new["last"] == result["last"]
    clock.advance(600)
    newer = (await kraken.public("Trades", pair="XBTUSD", since=result["last"]))["result"]
    assert newer["XXBTZUSD"] and all(row[2] > times[-1] for row in newer["XXBTZUSD"])
    by_seconds = (await kraken.public("Trades", pair="XBTUSD", since=str(int(SANDBOX_EPOCH))))["result"]
    assert by_seconds["XXBTZUSD"] == newer["XXBTZUSD"]


async def test_trades_refuse_bad_arguments(kraken: KrakenClient) -> None:
    assert await kraken.public("Trades", pair="XBTUSD", since="soon") == {"error": ["EGeneral:Invalid arguments:since"]}
    assert await kraken.public("Trades", pair="XBTUSD", count="1001") == {"error": ["EGeneral:Invalid arguments:count"]}


async def test_system_status(kraken: KrakenClient) -> None:
    assert (await kraken.public("SystemStatus"))["result"] == {"status": "online", "timestamp": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("info", "fields"),
    [
        ("leverage", {"leverage_buy", "leverage_sell"}),
        ("fees", {"fees", "fees_maker", "fee_volume_currency"}),
        ("margin", {"margin_call", "margin_stop"}),
    ],
)
async def test_asset_pairs_info_variants(kraken: KrakenClient, info: str, fields: set[str]) -> None:
    result = (await kraken.public("AssetPairs", pair="XBTUSDT,ETHUSD", info=info))["result"]
    assert list(result) == ["XBTUSDT", "XETHZUSD"]
    assert all(set(entry) == fields for entry in result.values())


async def test_asset_pairs_refuse_an_unknown_info(kraken: KrakenClient) -> None:
    assert await kraken.public("AssetPairs", info="everything") == {"error": ["EGeneral:Invalid arguments:info"]}


def test_book_and_tape_depend_on_the_seed_only() -> None:
    def sample(seed: int) -> tuple[object, object]:
        exchange = Exchange.create(VirtualClock(SANDBOX_EPOCH), seed=seed)
        pair = PAIRS["XETHZUSD"]
        return exchange.depth(pair, 10), exchange.public_trades(pair, None, 20)

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)

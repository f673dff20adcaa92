"""The ledger: every balance movement is an entry, so Ledgers adds up to Balance."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from core.domain.clock import VirtualClock
from simulator.exchange import Exchange
from simulator.models import LedgerType, SystemStatus
from tests.simulator.sandbox_client import KrakenClient
from tests.simulator.state_files import read_back, save

MARKET_BUY = {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.01"}


async def _all_entries(kraken: KrakenClient, **filters: str) -> dict[str, dict]:
    ledger = await kraken.result("Ledgers", **filters)
    return dict(ledger["ledger"])


async def test_a_fresh_account_holds_its_opening_deposits(kraken: KrakenClient) -> None:
    ledger = await kraken.result("Ledgers")
    assert ledger["count"] == 2
    entries = sorted(ledger["ledger"].values(), key=lambda entry: entry["asset"])
    assert [(e["type"], e["asset"], e["amount"], e["fee"], e["balance"]) for e in entries] == [
        ("deposit", "USDT", "100000.00000000", "0.00000000", "100000.00000000"),
        ("deposit", "ZUSD", "100000.0000", "0.0000", "100000.0000"),
    ]
    assert all(e["aclass"] == "currency" and e["subtype"] == "" for e in entries)


async def test_a_trade_posts_both_legs_with_its_fee_and_names_them(kraken: KrakenClient) -> None:
    await kraken.result("AddOrder", **MARKET_BUY)
    history = await kraken.result("TradesHistory", ledgers="true")
    [(trade_id, trade)] = history["trades"].items()
    legs = await kraken.result("QueryLedgers", id=",".join(trade["ledgers"]))
    by_asset = {entry["asset"]: entry for entry in legs.values()}
    assert set(by_asset) == {"ZUSD", "XXBT"}
    assert all(entry["refid"] == trade_id and entry["type"] == "trade" for entry in legs.values())
    usd, btc = by_asset["ZUSD"], by_asset["XXBT"]
    assert Decimal(usd["amount"]) == -Decimal(trade["cost"]) and Decimal(usd["fee"]) == Decimal(trade["fee"])
    assert Decimal(usd["balance"]) == 100_000 - Decimal(trade["cost"]) - Decimal(trade["fee"])
    assert (btc["amount"], btc["fee"], btc["balance"]) == ("0.0100000000", "0.0000000000", "0.0100000000")
    assert usd["time"] == btc["time"] == trade["time"]
    assert "ledgers" not in (await kraken.result("TradesHistory"))["trades"][trade_id]


async def test_the_ledger_adds_up_to_the_balances(kraken: KrakenClient, clock: VirtualClock) -> None:
    await kraken.result("AddOrder", **MARKET_BUY)
    await kraken.result("AddOrder", pair="XBTUSD", type="sell", ordertype="market", volume="0.004", oflags="fcib")
    clock.advance(60)
    await kraken.result("AddOrder", pair="ETHUSDT", type="buy", ordertype="market", volume="0.5")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for entry in (await _all_entries(kraken)).values():
        totals[entry["asset"]] += Decimal(entry["amount"]) - Decimal(entry["fee"])
    balances = await kraken.result("Balance")
    assert {asset: Decimal(value) for asset, value in balances.items()} == dict(totals)


async def test_ledgers_filter_by_asset_type_and_time_newest_first(kraken: KrakenClient, clock: VirtualClock) -> None:
    await kraken.result("AddOrder", **MARKET_BUY)
    clock.advance(30)
    await kraken.result("AddOrder", **MARKET_BUY)
    bitcoin = await kraken.result("Ledgers", asset="XBT", type="trade")
    times = [entry["time"] for entry in bitcoin["ledger"].values()]
    assert bitcoin["count"] == 2 and times == sorted(times, reverse=True)
    assert {entry["asset"] for entry in bitcoin["ledger"].values()} == {"XXBT"}
    later = await kraken.result("Ledgers", start=str(int(times[-1]) + 1))
    assert later["count"] == 2 and {entry["time"] for entry in later["ledger"].values()} == {times[0]}
    oldest = list(bitcoin["ledger"])[-1]
    assert (await kraken.result("Ledgers", end=oldest, type="deposit"))["count"] == 2
    assert (await kraken.result("Ledgers", type="staking")) == {"ledger": {}, "count": 0}
    assert "count" not in await kraken.result("Ledgers", without_count="true")
    page = await kraken.result("Ledgers", ofs="5")
    assert page["count"] == 6 and len(page["ledger"]) == 1


async def test_ledger_refusals(kraken: KrakenClient) -> None:
    assert await kraken.private("QueryLedgers", id="LNOPE-NOPE-NOPE") == {"error": ["EGeneral:Invalid arguments:id"]}
    assert await kraken.private("Ledgers", asset="NOPE") == {"error": ["EQuery:Unknown asset"]}
    assert await kraken.private("Ledgers", type="gift") == {"error": ["EGeneral:Invalid arguments:type"]}
    assert await kraken.private("Ledgers", start="LNOPE") == {"error": ["EGeneral:Invalid arguments:start"]}


async def test_an_adjustment_and_a_reset_post_entries(exchange: Exchange, kraken: KrakenClient) -> None:
    account = exchange.state.api_keys[kraken.key].account
    exchange.adjust(account, "XXBT", Decimal("0.5"))
    [adjusted] = (await kraken.result("Ledgers", type="adjustment"))["ledger"].values()
    assert (adjusted["asset"], adjusted["amount"], adjusted["balance"]) == ("XXBT", "0.5000000000", "0.5000000000")
    before = set(await _all_entries(kraken))
    exchange.reset()
    after = await kraken.result("Ledgers")
    assert after["count"] == 2 and not before & set(after["ledger"])
    assert {entry["type"] for entry in after["ledger"].values()} == {str(LedgerType.DEPOSIT)}


async def test_ledger_amends_and_trading_mode_survive_a_restart(
    exchange: Exchange, kraken: KrakenClient, tmp_path: Path
) -> None:
    await kraken.result("AddOrder", **MARKET_BUY)
    txid = (
        await kraken.result("AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="50000")
    )["txid"][0]
    await kraken.result("AmendOrder", txid=txid, limit_price="50100")
    exchange.set_system_status(SystemStatus.CANCEL_ONLY)
    save(tmp_path / "state.db", exchange.state)
    assert read_back(tmp_path / "state.db") == exchange.state

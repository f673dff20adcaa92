"""python-kraken-sdk, unmodified, reading the account's ledger, trade volume, positions
and amend trail, and the market's spreads and status, from the served sandbox."""

from __future__ import annotations

from decimal import Decimal

import pytest
from kraken.spot import Market, Trade, User

from simulator.models import SystemStatus
from tests.thirdparty.conftest import Served

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


def test_ledgers_info_and_ledgers_by_id(user: User, trade: Trade) -> None:
    trade.create_order(ordertype="market", side="buy", pair="XRPUSDT", volume="1000")
    info = user.get_ledgers_info()
    assert info["count"] == 4
    legs = user.get_ledgers_info(asset="XRP", type_="trade")["ledger"]
    [(ledger_id, leg)] = legs.items()
    assert (leg["asset"], leg["amount"], leg["type"]) == ("XXRP", "1000.00000000", "trade")
    [trade_id] = user.get_trades_history()["trades"]
    assert leg["refid"] == trade_id
    assert user.get_ledgers(id_=ledger_id) == {ledger_id: leg}


def test_trade_volume_and_fee_tiers(user: User, trade: Trade) -> None:
    assert user.get_trade_volume() == {"currency": "ZUSD", "volume": "0.0000"}
    trade.create_order(ordertype="market", side="buy", pair="XBTUSDT", volume="1")
    volume = user.get_trade_volume(pair="XBTUSDT")
    assert Decimal(volume["volume"]) > 50_000
    taker, maker = volume["fees"]["XBTUSDT"], volume["fees_maker"]["XBTUSDT"]
    assert (taker["fee"], taker["nextfee"], taker["nextvolume"]) == ("0.2400", "0.2200", "100000.0000")
    assert (maker["fee"], maker["tiervolume"]) == ("0.1400", "50000.0000")


def test_open_positions_and_order_amends(user: User, trade: Trade) -> None:
    assert user.get_open_positions() == []  # the SDK consolidates by market: a list
    [txid] = trade.create_order(ordertype="limit", side="buy", pair="XBTUSDT", volume="0.01", price="30000")["txid"]
    trade.amend_order(txid=txid, limit_price="30100")
    amends = user.get_order_amends(order_id=txid)
    assert amends["count"] == 2
    assert [(a["amend_type"], a["limit_price"]) for a in amends["amends"]] == [
        ("original", "30000.0"),
        ("user", "30100.0"),
    ]


def test_recent_spreads_and_system_status(market: Market, sandbox: Served) -> None:
    spreads = market.get_recent_spreads(pair="XBTUSDT")
    ticker = market.get_ticker(pair="XBTUSDT")["XBTUSDT"]
    assert spreads["XBTUSDT"][-1][1:] == [ticker["b"][0], ticker["a"][0]]
    assert market.get_system_status()["status"] == "online"
    assert sandbox.server.sandbox is not None
    sandbox.server.sandbox.exchange.set_system_status(SystemStatus.POST_ONLY)
    assert market.get_system_status()["status"] == "post_only"

"""Batches, amends, edits, mass cancels, the dead man's switch, trade history and the
account views (BalanceEx, TradeBalance)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from tests.simulator.sandbox_client import TRADE_ID, KrakenClient, resting_buy


async def order_of(kraken: KrakenClient, txid: str) -> dict[str, Any]:
    order: dict[str, Any] = (await kraken.result("QueryOrders", txid=txid))[txid]
    return order


async def test_add_order_batch_places_each_and_reports_engine_refusals(kraken: KrakenClient) -> None:
    orders = [
        {"type": "buy", "ordertype": "limit", "volume": "0.01", "price": "50000", "userref": 3},
        {"type": "buy", "ordertype": "limit", "volume": "5", "price": "50000"},
        {"type": "buy", "ordertype": "market", "volume": "0.01", "close": {"ordertype": "stop-loss", "price": "55000"}},
    ]
    answer = await kraken.private_json("AddOrderBatch", pair="XBTUSD", orders=orders)
    result = answer["result"]
    first, second, third = result["orders"]
    assert first["descr"] == {"order": "buy 0.01000000 XBTUSD @ limit 50000.0"}
    assert second == {"error": "EOrder:Insufficient funds"}
    assert third["descr"]["close"] == "close position @ stop loss 55000.0"
    assert (await order_of(kraken, first["txid"]))["userref"] == 3


async def test_add_order_batch_as_form_fields(kraken: KrakenClient) -> None:
    fields = {
        f"orders[{i}][{name}]": value
        for i in range(2)
        for name, value in {"type": "buy", "ordertype": "limit", "volume": "0.01", "price": str(50000 + i)}.items()
    }
    result = await kraken.result("AddOrderBatch", pair="XBTUSD", **fields)
    assert [o["descr"]["order"] for o in result["orders"]] == [
        "buy 0.01000000 XBTUSD @ limit 50000.0",
        "buy 0.01000000 XBTUSD @ limit 50001.0",
    ]


async def test_add_order_batch_refuses_a_malformed_order_whole(kraken: KrakenClient) -> None:
    orders = [
        {"type": "buy", "ordertype": "limit", "volume": "0.01", "price": "50000"},
        {"type": "buy", "ordertype": "limit", "volume": "0.01"},
    ]
    answer = await kraken.private_json("AddOrderBatch", pair="XBTUSD", orders=orders)
    assert answer == {"error": ["EGeneral:Invalid arguments:orders[1].price"]}
    assert (await kraken.result("OpenOrders"))["open"] == {}
    single = await kraken.private_json("AddOrderBatch", pair="XBTUSD", orders=orders[:1])
    assert single == {"error": ["EGeneral:Invalid arguments:orders"]}


async def test_amend_changes_an_order_in_place(kraken: KrakenClient) -> None:
    txid = await kraken.place(**resting_buy(), cl_ord_id="amend-me")
    result = await kraken.result("AmendOrder", txid=txid, order_qty="0.02", limit_price="51000")
    assert TRADE_ID.match(result["amend_id"])
    order = await order_of(kraken, txid)
    assert (order["vol"], order["descr"]["price"], order["amended"]) == ("0.02000000", "51000.0", True)
    await kraken.result("AmendOrder", cl_ord_id="amend-me", limit_price="-1%")
    assert (await order_of(kraken, txid))["descr"]["price"] == "59400.0"


async def test_amend_errors(kraken: KrakenClient) -> None:
    txid = await kraken.place(**resting_buy())
    assert await kraken.private("AmendOrder", txid="OAAAAA-BBBBB-CCCCCC", order_qty="1") == {
        "error": ["EOrder:Unknown order"]
    }
    assert await kraken.private("AmendOrder", txid=txid) == {"error": ["EGeneral:Invalid arguments:order_qty"]}
    assert await kraken.private("AmendOrder", txid=txid, trigger_price="1") == {
        "error": ["EGeneral:Invalid arguments:trigger_price"]
    }
    assert await kraken.private("AmendOrder", txid=txid, limit_price="60100", post_only="true") == {
        "error": ["EOrder:Invalid order"]
    }
    assert await kraken.private("AmendOrder", txid=txid, order_qty="100") == {"error": ["EOrder:Insufficient funds"]}


async def test_amend_a_stop_trigger(kraken: KrakenClient) -> None:
    await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="0.01")
    txid = await kraken.place(pair="XBTUSD", type="sell", ordertype="stop-loss", volume="0.01", price="55000")
    await kraken.result("AmendOrder", txid=txid, trigger_price="56000")
    assert (await order_of(kraken, txid))["stopprice"] == "56000.0"


async def test_edit_replaces_the_order_with_a_new_txid(kraken: KrakenClient) -> None:
    txid = await kraken.place(**resting_buy(), userref="9")
    result = await kraken.result("EditOrder", txid=txid, pair="XBTUSD", volume="0.03", price="52000")
    assert result["originaltxid"] == txid and result["txid"] != txid
    assert (result["status"], result["volume"], result["price"], result["orders_cancelled"]) == (
        "ok",
        "0.03000000",
        "52000.0",
        1,
    )
    assert result["descr"] == {"order": "buy 0.03000000 XBTUSD @ limit 52000.0"}
    old = await order_of(kraken, txid)
    new = await order_of(kraken, result["txid"])
    assert (old["status"], old["reason"]) == ("canceled", "Order replaced")
    assert (new["status"], new["userref"]) == ("open", 9)
    assert await kraken.private("EditOrder", txid=txid, pair="XBTUSD", price="1") == {"error": ["EOrder:Unknown order"]}
    assert await kraken.private("EditOrder", txid=result["txid"], pair="ETHUSD", price="1") == {
        "error": ["EGeneral:Invalid arguments:pair"]
    }


async def test_cancel_all_and_cancel_batch(kraken: KrakenClient) -> None:
    first = await kraken.place(**resting_buy())
    await kraken.place(**resting_buy(), userref="4")
    await kraken.place(**resting_buy(), cl_ord_id="c-1")
    batch = await kraken.private_json("CancelOrderBatch", orders=[first, 4])
    assert batch == {"error": [], "result": {"count": 2}}
    assert await kraken.result("CancelAll") == {"count": 1}
    assert await kraken.result("CancelAll") == {"count": 0}
    assert await kraken.private("CancelOrderBatch") == {"error": ["EGeneral:Invalid arguments:orders"]}


async def test_dead_man_switch_cancels_everything_when_it_runs_out(kraken: KrakenClient, clock: VirtualClock) -> None:
    txid = await kraken.place(**resting_buy())
    armed = await kraken.result("CancelAllOrdersAfter", timeout="60")
    assert armed == {"currentTime": "2026-01-01T00:00:00Z", "triggerTime": "2026-01-01T00:01:00Z"}
    clock.advance(30)
    await kraken.result("CancelAllOrdersAfter", timeout="60")
    clock.advance(45)
    assert (await order_of(kraken, txid))["status"] == "open"
    clock.advance(30)
    order = await order_of(kraken, txid)
    assert (order["status"], order["closetm"]) == ("canceled", SANDBOX_EPOCH + 90)


async def test_dead_man_switch_disarmed_with_zero(kraken: KrakenClient, clock: VirtualClock) -> None:
    txid = await kraken.place(**resting_buy())
    await kraken.result("CancelAllOrdersAfter", timeout="60")
    disarmed = await kraken.result("CancelAllOrdersAfter", timeout="0")
    assert disarmed["triggerTime"] == "0"
    clock.advance(120)
    assert (await order_of(kraken, txid))["status"] == "open"
    assert await kraken.private("CancelAllOrdersAfter", timeout="86401") == {
        "error": ["EGeneral:Invalid arguments:timeout"]
    }


async def test_trades_history_and_query_trades(kraken: KrakenClient, clock: VirtualClock) -> None:
    first = await kraken.place(pair="XBTUSD", type="buy", ordertype="market", volume="0.01")
    clock.advance(60)
    second = await kraken.place(pair="ETHUSD", type="buy", ordertype="market", volume="0.1")
    history = await kraken.result("TradesHistory")
    assert history["count"] == 2
    (newest_id, newest), (oldest_id, oldest) = history["trades"].items()
    assert (newest["ordertxid"], oldest["ordertxid"]) == (second, first)
    assert (newest["pair"], newest["type"], newest["ordertype"], newest["maker"]) == (
        "XETHZUSD",
        "buy",
        "market",
        False,
    )
    assert newest["vol"] == "0.10000000" and newest["time"] == SANDBOX_EPOCH + 60
    assert isinstance(newest["trade_id"], int) and TRADE_ID.match(newest["postxid"])
    later = await kraken.result("TradesHistory", start=str(int(SANDBOX_EPOCH) + 30))
    assert list(later["trades"]) == [newest_id]
    assert list((await kraken.result("TradesHistory", end=oldest_id))["trades"]) == [oldest_id]
    queried = await kraken.result("QueryTrades", txid=f"{oldest_id},{newest_id}")
    assert queried == {oldest_id: oldest, newest_id: newest}
    assert await kraken.private("QueryTrades", txid="TAAAAA-BBBBB-CCCCCC") == {
        "error": ["EGeneral:Invalid arguments:txid"]
    }


async def test_balance_ex_shows_what_open_orders_hold(kraken: KrakenClient) -> None:
    await kraken.place(**resting_buy())
    balances = await kraken.result("BalanceEx")
    held = Decimal("0.01") * 50000 * (1 + Decimal("0.0026"))
    assert balances["ZUSD"] == {
        "balance": "100000.0000",
        "credit": "0.0000",
        "credit_used": "0.0000",
        "hold_trade": f"{held:.4f}",
    }
    assert balances["USDT"]["hold_trade"] == "0.00000000"


async def test_trade_balance_values_the_account_in_an_asset(kraken: KrakenClient) -> None:
    usd = await kraken.result("TradeBalance")
    assert set(usd) == {"eb", "tb", "m", "n", "c", "v", "e", "mf", "uv"}
    assert (usd["eb"], usd["e"], usd["m"], usd["uv"]) == ("200000.0000", "200000.0000", "0.0000", "0.0000")
    await kraken.place(**resting_buy())
    in_btc = await kraken.result("TradeBalance", asset="XBT")
    assert Decimal(in_btc["eb"]) == (Decimal(200000) / Decimal("60000.0")).quantize(Decimal("1e-10"))
    assert Decimal(in_btc["uv"]) > 0
    assert await kraken.private("TradeBalance", asset="PEPE") == {"error": ["EQuery:Unknown asset"]}

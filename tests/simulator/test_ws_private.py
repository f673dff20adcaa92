"""The private side of the WebSocket v2 API: tokens from REST GetWebSocketsToken,
executions and balances, and the order methods, all one exchange with REST (an order
placed on one wire is seen on the other)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.simulator.ws_peer import Json, Peer, Served, exec_types, updates

pytestmark = pytest.mark.integration

BUY_LOW: Json = {"order_type": "limit", "side": "buy", "order_qty": 0.01, "limit_price": 10000}
"""A BTC/USD bid far below the market: it rests."""


async def subscribed(served: Served) -> tuple[Peer, str]:
    peer = await served.connect()
    token = await served.token()
    ack = await peer.call("subscribe", {"channel": "executions", "token": token, "snap_trades": True})
    assert ack["success"], ack
    await peer.channel("executions", "snapshot")
    return peer, token


async def test_token_is_krakens_and_an_unknown_one_is_refused(served: Served) -> None:
    answer = await served.rest.result("GetWebSocketsToken")
    assert answer["expires"] == 900 and len(answer["token"]) >= 32
    peer = await served.connect()
    refused = await peer.call("subscribe", {"channel": "executions", "token": "not-a-token"})
    assert (refused["success"], refused["error"]) == (False, "EAPI:Invalid token")
    placed = await peer.call("add_order", {**BUY_LOW, "symbol": "BTC/USD", "token": "nope"})
    assert placed["error"] == "EAPI:Invalid token"


async def test_rest_order_reaches_executions_and_ws_order_reaches_query_orders(served: Served) -> None:
    peer, token = await subscribed(served)

    start = len(peer.seen)
    rest = await served.rest.result(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="10000"
    )
    [rest_txid] = rest["txid"]
    pending, new = await exec_types(peer, start, rest_txid, ["pending_new", "new"])
    assert (pending["symbol"], pending["order_qty"], pending["limit_price"]) == ("BTC/USD", Decimal("0.01"), 10000)
    assert new["order_status"] == "new" and pending["time_in_force"] == "GTC"

    start = len(peer.seen)
    ws = await peer.call("add_order", {**BUY_LOW, "symbol": "BTC/USD", "token": token, "cl_ord_id": "mine-1"})
    assert ws["success"] and ws["result"]["cl_ord_id"] == "mine-1"
    ws_txid = ws["result"]["order_id"]
    await exec_types(peer, start, ws_txid, ["pending_new", "new"])
    queried = await served.rest.result("QueryOrders", txid=ws_txid)
    assert queried[ws_txid]["status"] == "open" and Decimal(queried[ws_txid]["vol"]) == Decimal("0.01")

    start = len(peer.seen)
    cancel = await peer.call("cancel_order", {"order_id": [rest_txid], "token": token})
    assert cancel["result"] == {"order_id": rest_txid}
    [canceled] = await exec_types(peer, start, rest_txid, ["canceled"])
    assert canceled["order_status"] == "canceled"
    assert (await served.rest.result("QueryOrders", txid=rest_txid))[rest_txid]["status"] == "canceled"


async def test_snapshot_holds_open_orders_and_recent_trades(served: Served) -> None:
    resting = await served.rest.result(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="10000"
    )
    await served.rest.result("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.001")
    [trade_id] = (await served.rest.result("TradesHistory"))["trades"]
    peer = await served.connect()
    token = await served.token()
    await peer.call("subscribe", {"channel": "executions", "token": token, "snap_trades": True})
    rows = (await peer.channel("executions", "snapshot"))["data"]
    orders = [row for row in rows if row["exec_type"] == "new"]
    trades = [row for row in rows if row["exec_type"] == "trade"]
    assert [row["order_id"] for row in orders] == resting["txid"]
    assert [row["exec_id"] for row in trades] == [trade_id]


async def test_a_crossing_order_trades_then_fills_and_moves_balances(served: Served) -> None:
    peer, token = await subscribed(served)
    assert (await peer.call("subscribe", {"channel": "balances", "token": token}))["success"]
    snapshot = await peer.channel("balances", "snapshot")
    before = {row["asset"]: row["balance"] for row in snapshot["data"]}

    start = len(peer.seen)
    market = {"order_type": "market", "side": "buy", "order_qty": 0.01}
    placed = await peer.call("add_order", {**market, "symbol": "BTC/USD", "token": token})
    txid = placed["result"]["order_id"]
    await exec_types(peer, start, txid, ["pending_new", "new", "trade", "filled"])
    rows = [row for row in updates(peer, start) if row["order_id"] == txid]
    assert [row["exec_type"] for row in rows][:2] == ["pending_new", "new"] and rows[-1]["exec_type"] == "filled"
    trades = [row for row in rows if row["exec_type"] == "trade"]
    assert sum(row["last_qty"] for row in trades) == Decimal("0.01")
    assert rows[-1]["cum_qty"] == Decimal("0.01")
    history = await served.rest.result("TradesHistory")
    assert {row["exec_id"] for row in trades} <= set(history["trades"])

    moved = await peer.found(lambda m: m.get("channel") == "balances" and m["type"] == "update", start)
    after = {row["asset"]: row for row in moved["data"]}
    assert after["BTC"]["balance"] == before.get("BTC", 0) + Decimal("0.01")
    assert after["USD"]["amount"] < 0
    rest_balance = await served.rest.result("Balance")
    assert Decimal(rest_balance["XXBT"]) == after["BTC"]["balance"]


async def test_amend_edit_batch_and_cancel_all_echo_req_id(served: Served) -> None:
    peer, token = await subscribed(served)
    placed = await peer.call("add_order", {**BUY_LOW, "symbol": "BTC/USD", "token": token})
    txid = placed["result"]["order_id"]

    start = len(peer.seen)
    amend = await peer.call("amend_order", {"order_id": txid, "limit_price": 10500, "token": token})
    assert amend["success"] and amend["result"]["order_id"] == txid and amend["result"]["amend_id"]
    [amended] = await exec_types(peer, start, txid, ["amended"])
    assert amended["limit_price"] == 10500 and amended["amended"] is True
    assert Decimal((await served.rest.result("QueryOrders", txid=txid))[txid]["descr"]["price"]) == 10500

    edit = await peer.call("edit_order", {"order_id": txid, "symbol": "BTC/USD", "order_qty": 0.02, "token": token})
    assert edit["success"] and edit["result"]["original_order_id"] == txid

    batch = {"symbol": "BTC/USD", "token": token, "orders": [BUY_LOW, {**BUY_LOW, "limit_price": 9000}]}
    added = await peer.call("batch_add", batch)
    assert added["success"] and len(added["result"]) == 2
    open_orders = (await served.rest.result("OpenOrders"))["open"]
    assert {r["order_id"] for r in added["result"]} <= set(open_orders)
    batch_ids = [r["order_id"] for r in added["result"]]
    canceled = await peer.call("batch_cancel", {"orders": batch_ids, "token": token})
    assert canceled["result"] == {"count": 2}

    await peer.send("cancel_all", {"token": token}, req_id=77)
    cleared = await peer.answer(77, "cancel_all")
    assert cleared["result"] == {"count": 1}
    assert (await served.rest.result("OpenOrders"))["open"] == {}

    switch = await peer.call("cancel_all_orders_after", {"timeout": 60, "token": token})
    assert switch["success"] and switch["result"]["triggerTime"] > switch["result"]["currentTime"]


async def test_order_method_errors_are_krakens(served: Served) -> None:
    peer = await served.connect()
    token = await served.token()
    poor = await peer.call("add_order", {**BUY_LOW, "order_qty": 1000, "symbol": "BTC/USD", "token": token})
    assert (poor["success"], poor["error"]) == (False, "EOrder:Insufficient funds")
    unknown = await peer.call("cancel_order", {"order_id": ["OAAAAA-BBBBB-CCCCCC"], "token": token})
    assert unknown["error"] == "EOrder:Unknown order"
    pair = await peer.call("add_order", {**BUY_LOW, "symbol": "XBT/USD", "token": token})
    assert pair["error"] == "Currency pair not supported XBT/USD"


async def test_ws_order_methods_count_on_the_trading_counter_rest_uses(served: Served) -> None:
    """Kraken's starter tier: a counter of 60, +1 per order, +8 for canceling one younger
    than 5 s (the clock stands still, so nothing decays). Placing and canceling over
    WebSocket exhausts it in seven rounds, and then REST's cancel is refused too: one
    counter per pair and account, whichever wire."""
    peer = await served.connect()
    token = await served.token()
    ack = await peer.call("subscribe", {"channel": "executions", "token": token})
    assert ack["result"]["maxratecount"] == 60
    answers: list[Json] = []
    while len(answers) < 40 and all(a["success"] for a in answers):
        placed = await peer.call("add_order", {**BUY_LOW, "symbol": "BTC/USD", "token": token})
        answers.append(placed)
        if placed["success"]:
            order = [placed["result"]["order_id"]]
            answers.append(await peer.call("cancel_order", {"order_id": order, "token": token}))
    assert [a["method"] for a in answers] == ["add_order", "cancel_order"] * 7
    assert answers[-1]["error"] == "EOrder:Rate limit exceeded"  # 6 rounds of 9, then 55 + 8 > 60
    resting = answers[-2]["result"]["order_id"]
    rest = await served.rest.private("CancelOrder", txid=resting)
    assert rest["error"] == ["EOrder:Rate limit exceeded"]


async def test_a_good_till_date_order_expires_on_the_stream(served: Served) -> None:
    peer, token = await subscribed(served)
    expiry = "2026-01-01T00:01:00Z"  # a minute after the sandbox's epoch
    gtd = {**BUY_LOW, "symbol": "BTC/USD", "token": token, "time_in_force": "gtd", "expire_time": expiry}
    placed = await peer.call("add_order", gtd)
    txid = placed["result"]["order_id"]
    [pending] = await exec_types(peer, 0, txid, ["pending_new"])
    assert (pending["time_in_force"], pending["expire_time"]) == ("GTD", "2026-01-01T00:01:00.000000Z")

    start = len(peer.seen)
    await served.advance(120)
    [expired] = await exec_types(peer, start, txid, ["expired"])
    assert expired["order_status"] == "expired"
    assert (await served.rest.result("QueryOrders", txid=txid))[txid]["status"] == "expired"


async def test_a_triggered_stop_is_restated_then_trades(served: Served) -> None:
    """The gap fault makes the price jump through the stop a minute after it is placed."""
    peer, token = await subscribed(served)
    bought = await peer.call(
        "add_order", {"order_type": "market", "side": "buy", "order_qty": 0.01, "symbol": "BTC/USD", "token": token}
    )
    assert bought["success"]
    market = Decimal((await served.rest.public("Ticker", pair="XBTUSD"))["result"]["XXBTZUSD"]["c"][0])
    await served.add_faults("gap")
    stop = {
        "order_type": "stop-loss",
        "side": "sell",
        "order_qty": 0.01,
        "triggers": {"price": (market * Decimal("0.95")).quantize(Decimal("0.1"))},
        "symbol": "BTC/USD",
        "token": token,
    }
    placed = await peer.call("add_order", stop)
    txid = placed["result"]["order_id"]
    start = len(peer.seen)
    await served.advance(120)
    restated, *_ = await exec_types(peer, start, txid, ["restated", "trade", "filled"])
    assert restated["triggers"]["status"] == "triggered"


async def test_status_follows_the_trading_mode_and_order_methods_obey_it(served: Served) -> None:
    peer = await served.connect()
    assert peer.seen[0]["data"][0]["system"] == "online"
    token = await served.token()
    await served.set_status("cancel_only")
    status = await peer.channel("status", "update")
    assert status["data"][0]["system"] == "cancel_only"
    refused = await peer.call("add_order", {**BUY_LOW, "symbol": "BTC/USD", "token": token})
    assert refused["error"] == "EService:Market in cancel_only mode"
    assert (await served.connect()).seen[0]["data"][0]["system"] == "cancel_only"

    await served.set_status("online")
    assert (await peer.channel("status", "update"))["data"][0]["system"] == "online"
    assert (await peer.call("add_order", {**BUY_LOW, "symbol": "BTC/USD", "token": token}))["success"]

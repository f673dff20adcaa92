"""Faults reach the WebSocket streams as data (rules of the fault schedule, installed
through the control plane), and each test shows what a client sees: a connection
closed under it, executions held back or lost (a gap in `sequence`), an add_order
whose answer never comes while the order rests, a token that stops working early.
(A book update with a wrong checksum is in tests/thirdparty/test_python_kraken_sdk_ws.py,
seen by python-kraken-sdk's SpotOrderBookClient.)"""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosedError

from tests.simulator.ws_peer import Json, Peer, Served, exec_types

pytestmark = pytest.mark.integration

BUY_LOW: Json = {"order_type": "limit", "side": "buy", "order_qty": 0.01, "limit_price": 10000, "symbol": "BTC/USD"}


def executions(messages: list[Json]) -> list[Json]:
    return [m for m in messages if m.get("channel") == "executions" and m["type"] == "update"]


async def watching(served: Served) -> tuple[Peer, str]:
    peer = await served.connect()
    token = await served.token()
    assert (await peer.call("subscribe", {"channel": "executions", "token": token}))["success"]
    await peer.channel("executions", "snapshot")
    return peer, token


async def rest_order(served: Served) -> str:
    placed = await served.rest.result(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="10000"
    )
    [txid] = placed["txid"]
    return str(txid)


async def test_a_dropped_connection_closes_under_the_client_once(served: Served) -> None:
    peer = await served.connect()
    await served.add_faults("ws-drop")
    await peer.send("subscribe", {"channel": "ticker", "symbol": ["BTC/USD"]})
    with pytest.raises(ConnectionClosedError) as closed:
        await peer.channel("ticker", "snapshot")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011

    again = await served.connect()
    await again.call("subscribe", {"channel": "ticker", "symbol": ["BTC/USD"]})
    assert (await again.channel("ticker", "snapshot"))["data"][0]["symbol"] == "BTC/USD"


async def test_delayed_executions_arrive_when_the_exchange_clock_catches_up(served: Served) -> None:
    peer, _ = await watching(served)
    await served.add_faults("ws-delay:seconds=5")
    txid = await rest_order(served)
    assert executions(await peer.barrier()) == []  # nothing yet: held back

    start = len(peer.seen)
    await served.advance(5)
    await exec_types(peer, start, txid, ["pending_new", "new"])
    rows = [row for m in executions(peer.seen[start:]) for row in m["data"]]
    assert [(row["order_id"], row["exec_type"]) for row in rows] == [(txid, "pending_new"), (txid, "new")]


async def test_a_lost_execution_shows_as_a_gap_in_the_sequence(served: Served) -> None:
    peer, _ = await watching(served)
    await exec_types(peer, 0, await rest_order(served), ["pending_new", "new"])
    [first, second] = executions(peer.seen)
    await served.add_faults("ws-lose")

    start = len(peer.seen)
    txid = await rest_order(served)
    await exec_types(peer, start, txid, ["new"])
    [seen] = executions(peer.seen[start:])  # its pending_new, sent first, was lost
    assert seen["sequence"] == second["sequence"] + 2 and first["sequence"] + 1 == second["sequence"]
    assert (await served.rest.result("QueryOrders", txid=txid))[txid]["status"] == "open"


async def test_a_lost_add_order_answer_leaves_the_order_resting(served: Served) -> None:
    peer, token = await watching(served)
    await served.add_faults("ghost")
    start = len(peer.seen)
    await peer.send("add_order", {**BUY_LOW, "token": token, "cl_ord_id": "lost-ack"}, req_id=9)
    pending = await peer.next(lambda m: m.get("channel") == "executions" and m["type"] == "update")
    [order] = pending["data"]
    assert (order["exec_type"], order["cl_ord_id"]) == ("pending_new", "lost-ack")
    # an answer is sent before what the call changed is published: none was sent
    assert [m for m in peer.seen[start:] + await peer.barrier() if m.get("req_id") == 9] == []
    assert list((await served.rest.result("OpenOrders"))["open"]) == [order["order_id"]]


async def test_a_token_that_expires_early_stops_working(served: Served) -> None:
    await served.add_faults("token-expiry:seconds=60")
    peer, token = await watching(served)
    assert (await peer.call("add_order", {**BUY_LOW, "token": token}))["success"]

    await served.advance(61)
    refused = await peer.call("add_order", {**BUY_LOW, "token": token})
    assert (refused["success"], refused["error"]) == (False, "EAPI:Invalid token")
    fresh = await served.token()  # the fault fired once: a new token works
    assert (await peer.call("add_order", {**BUY_LOW, "token": fresh}))["success"]

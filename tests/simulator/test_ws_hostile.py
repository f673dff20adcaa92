"""The WebSocket v2 API against a hostile or sloppy client: each test is a request
that once did harm (an order nobody asked for, a stream lost, a server stalled), and
what a Kraken client gets for it now."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

import pytest

from simulator.app import SandboxApp
from simulator.websocket.protocol import encode
from tests.simulator.ws_peer import Json, Served

pytestmark = pytest.mark.integration

BUY_LOW: Json = {"order_type": "limit", "side": "buy", "order_qty": 0.01, "limit_price": 10000, "symbol": "BTC/USD"}
LOW_ORDER: Json = {key: value for key, value in BUY_LOW.items() if key != "symbol"}
"""One order of a batch_add (the batch names the symbol)."""


def raw(message: Json, number: str = "1e5000") -> str:
    """`message` as JSON text with each string "N" in it made the JSON number `number`,
    one that json.dumps cannot write."""
    return encode(message).replace('"N"', number)


async def test_a_negative_static_price_is_refused_not_read_as_relative(served: Served) -> None:
    """REST reads a price written "-1" as "1 below the last trade": a v2 limit_price of
    -1 (a sign bug in a client) placed a buy just under the market, and amend_order,
    edit_order, batch_add and a conditional close moved or placed orders the same way."""
    peer = await served.connect()
    token = await served.token()
    resting = (await peer.call("add_order", {**BUY_LOW, "token": token}))["result"]["order_id"]
    refused = [
        await peer.call("add_order", {**BUY_LOW, "limit_price": -1, "token": token}),
        await peer.call(
            "add_order", {**BUY_LOW, "conditional": {"order_type": "limit", "limit_price": -5}, "token": token}
        ),
        await peer.call(
            "add_order",
            {**BUY_LOW, "order_type": "stop-loss", "side": "buy", "triggers": {"price": -5}, "token": token},
        ),
        await peer.call(
            "batch_add",
            {"symbol": "BTC/USD", "orders": [LOW_ORDER, {**LOW_ORDER, "limit_price": -1}], "token": token},
        ),
        await peer.call("amend_order", {"order_id": resting, "limit_price": -1, "token": token}),
        await peer.call("edit_order", {"order_id": resting, "symbol": "BTC/USD", "limit_price": -1, "token": token}),
    ]
    assert [(a["success"], a.get("error")) for a in refused] == [
        (False, "EGeneral:Invalid arguments:limit_price"),
        (False, "EGeneral:Invalid arguments:conditional.limit_price"),
        (False, "EGeneral:Invalid arguments:triggers.price"),
        (False, "EGeneral:Invalid arguments:limit_price"),
        (False, "EGeneral:Invalid arguments:limit_price"),
        (False, "EGeneral:Invalid arguments:limit_price"),
    ]
    open_orders = (await served.rest.result("OpenOrders"))["open"]
    assert list(open_orders) == [resting] and open_orders[resting]["descr"]["price"] == "10000.0"


async def test_a_number_of_absurd_exponent_is_refused_before_it_is_written_out(served: Served) -> None:
    """A JSON number such as 1e999999999 reads as a small Decimal, but written out in full
    (as REST's price and v2's relative prices are) it is a billion digits: the served
    sandbox stalled for seconds and took a gigabyte per request. 1e100000 shows the same
    path at a size a test can afford; the wire's own field is named."""
    peer = await served.connect()
    token = await served.token()
    order = encode({"method": "add_order", "params": {**BUY_LOW, "token": token}})
    answers = []
    for field, number in (("limit_price", "1e100000"), ("limit_price", "1e-100000"), ("order_qty", "0e-100000")):
        await peer.connection.send(order.replace(f'"{field}":{BUY_LOW[field]}', f'"{field}":{number}'))
        answers.append(await peer.next(lambda m: m.get("method") == "add_order"))
    pct = {"method": "add_order", "params": {**BUY_LOW, "limit_price_type": "pct", "token": token}}
    await peer.connection.send(encode(pct).replace('"limit_price":10000', '"limit_price":1e-100000'))
    answers.append(await peer.next(lambda m: m.get("method") == "add_order"))
    assert [a.get("error") for a in answers] == [
        "EGeneral:Invalid arguments:limit_price",
        "EGeneral:Invalid arguments:limit_price",
        "EGeneral:Invalid arguments:order_qty",
        "EGeneral:Invalid arguments:limit_price",
    ]
    assert (await served.rest.result("OpenOrders"))["open"] == {}


async def test_a_req_id_too_long_to_echo_is_malformed_and_the_connection_lives(served: Served) -> None:
    """req_id 1e5000 read as an integer of 5001 digits, which the answer could not write:
    the session died with a traceback in the server's log and no close frame."""
    peer = await served.connect()
    await peer.connection.send('{"method":"ping","req_id":1e5000}')
    malformed = await peer.next(lambda m: m.get("method") == "error")
    assert (malformed["success"], malformed["error"]) == (False, "Malformed request")
    assert (await peer.answer(await peer.send("ping", req_id=2**63 - 1), "pong"))["req_id"] == 2**63 - 1


async def test_an_integer_too_long_to_write_is_refused_and_the_connection_lives(served: Served) -> None:
    """cancel_order's order_userref and batch_cancel's orders of 1e5000 became integers of
    5001 digits that could not be written into REST's txid: a traceback and a connection
    closed without a close frame."""
    peer = await served.connect()
    token = await served.token()
    await peer.connection.send(raw({"method": "cancel_order", "params": {"order_userref": ["N"], "token": token}}))
    by_userref = await peer.next(lambda m: m.get("method") == "cancel_order")
    await peer.connection.send(raw({"method": "batch_cancel", "params": {"orders": ["x", "N"], "token": token}}))
    batch = await peer.next(lambda m: m.get("method") == "batch_cancel")
    assert (by_userref["success"], by_userref["error"]) == (False, "EGeneral:Invalid arguments:order_userref")
    assert batch["success"] is False
    assert (await peer.answer(await peer.send("ping"), "pong"))["success"]


async def test_an_invalid_argument_is_named_as_the_client_wrote_it(served: Served) -> None:
    """batch_cancel's orders hold order ids or userrefs; a null among them was refused as
    "EGeneral:Invalid arguments:str", naming the type pydantic tried last, not the field."""
    peer = await served.connect()
    token = await served.token()
    wrong = [
        await peer.call("batch_cancel", {"orders": ["OAAAAA-BBBBB-CCCCCC", None], "token": token}),
        await peer.call("batch_cancel", {"orders": [{"order_id": "x"}], "token": token}),
        await peer.call("add_order", {**BUY_LOW, "triggers": {"price": "high"}, "token": token}),
        await peer.call("subscribe", {"channel": "book", "symbol": ["BTC/USD"], "snapshot": "maybe"}),
    ]
    assert [a["error"] for a in wrong] == [
        "EGeneral:Invalid arguments:orders",
        "EGeneral:Invalid arguments:orders",
        "EGeneral:Invalid arguments:price",
        "EGeneral:Invalid arguments:snapshot",
    ]


async def test_ohlc_of_two_intervals_on_one_symbol_are_two_subscriptions(served: Served) -> None:
    """Kraken's ohlc rows name their interval, and unsubscribe names the one to stop: the
    sandbox refused a second interval of a symbol as "Already subscribed", and
    unsubscribing interval 5 stopped the interval 1 stream, acknowledged as interval 5."""
    peer = await served.connect()
    one = await peer.call("subscribe", {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 1, "snapshot": False})
    five = await peer.call("subscribe", {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 5, "snapshot": False})
    assert (one["success"], five["success"], five["result"]["interval"]) == (True, True, 5)
    never = await peer.call("unsubscribe", {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 15})
    assert (never["success"], never["error"]) == (False, "Subscription Not Found")
    assert (await peer.call("unsubscribe", {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 5}))["success"]

    start = len(peer.seen)
    await served.advance(120)
    bar = await peer.found(lambda m: m.get("channel") == "ohlc" and m["type"] == "update", start)
    await peer.barrier()
    intervals = {row["interval"] for m in peer.seen[start:] if m.get("channel") == "ohlc" for row in m["data"]}
    assert bar["data"][-1]["interval"] == 1 and intervals == {1}


async def test_a_client_gone_mid_send_ends_its_session_quietly(
    app: SandboxApp, caplog: pytest.LogCaptureFixture
) -> None:
    """A send to a client that has gone raises OSError (uvicorn's ClientDisconnected): out
    of an answer it was a traceback from the ASGI app, out of the publisher one "publishing
    to WebSocket connection N failed" per dropped subscriber. The session now ends, as
    when the client says goodbye."""
    gone = asyncio.Event()
    sent: list[MutableMapping[str, Any]] = []
    inbox = [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": '{"method":"ping"}'}]

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await gone.wait()
        return {"type": "websocket.disconnect", "code": 1006}

    async def send(message: MutableMapping[str, Any]) -> None:
        if len(sent) == 2:  # the accept and the status went out; the client is gone before the pong
            gone.set()
            raise OSError("client disconnected")
        sent.append(message)

    with caplog.at_level(logging.ERROR):
        async with asyncio.timeout(5):
            await app({"type": "websocket", "path": "/v2"}, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send"]
    assert caplog.records == []

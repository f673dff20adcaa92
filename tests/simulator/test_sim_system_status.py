"""Trading modes set through the control plane: SystemStatus reports them, trading
calls meet Kraken's refusals, and nothing matches outside online."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from core.domain.clock import VirtualClock
from simulator.app import create_app
from simulator.embedded import SANDBOX_EPOCH
from simulator.exchange import Exchange
from simulator.models import SystemStatus
from simulator.pairs import PAIRS
from tests.simulator.sandbox_client import KrakenClient

LIMIT = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "50000"}
POST_LIMIT = {**LIMIT, "oflags": "post"}
MARKET = {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.01"}


@pytest.fixture
async def control(exchange: Exchange) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(exchange))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox.kraken", headers={"X-TG-Sandbox": "1"}
    ) as client:
        yield client


async def test_the_control_plane_sets_what_system_status_reports(
    control: httpx.AsyncClient, kraken: KrakenClient
) -> None:
    assert (await control.get("/_sandbox/status")).json() == {"error": [], "result": {"status": "online"}}
    changed = (await control.post("/_sandbox/status", json={"status": "cancel_only"})).json()
    assert changed == {"error": [], "result": {"status": "cancel_only"}}
    status = (await kraken.public("SystemStatus"))["result"]
    assert status["status"] == "cancel_only" and status["timestamp"] == "2026-01-01T00:00:00Z"
    refused = (await control.post("/_sandbox/status", data={"status": "asleep"})).json()
    assert refused == {"error": ["EGeneral:Invalid arguments:status"]}


async def test_cancel_only_refuses_new_orders_and_lets_cancels_through(
    exchange: Exchange, kraken: KrakenClient
) -> None:
    txid = (await kraken.result("AddOrder", **LIMIT))["txid"][0]
    exchange.set_system_status(SystemStatus.CANCEL_ONLY)
    refusal = {"error": ["EService:Market in cancel_only mode"]}
    assert await kraken.private("AddOrder", **POST_LIMIT) == refusal
    assert await kraken.private("EditOrder", txid=txid, pair="XBTUSD", price="49000") == refusal
    assert await kraken.private("AmendOrder", txid=txid, limit_price="49000") == refusal
    assert (await kraken.result("CancelOrder", txid=txid))["count"] == 1


async def test_post_only_takes_post_only_limits_alone(exchange: Exchange, kraken: KrakenClient) -> None:
    exchange.set_system_status(SystemStatus.POST_ONLY)
    refusal = {"error": ["EService:Market in post_only mode"]}
    assert await kraken.private("AddOrder", **MARKET) == refusal
    assert await kraken.private("AddOrder", **LIMIT) == refusal
    batch = [
        {"type": "buy", "ordertype": "limit", "volume": "0.01", "price": "50000", "oflags": "post"},
        {"type": "buy", "ordertype": "market", "volume": "0.01"},
    ]
    assert await kraken.private_json("AddOrderBatch", pair="XBTUSD", orders=batch) == refusal
    txid = (await kraken.result("AddOrder", **POST_LIMIT))["txid"][0]
    assert await kraken.private("AmendOrder", txid=txid, limit_price="49000", post_only="true") == refusal
    assert (await kraken.result("CancelAll"))["count"] == 1


async def test_maintenance_refuses_orders_and_cancels_but_answers_reads(
    exchange: Exchange, kraken: KrakenClient
) -> None:
    txid = (await kraken.result("AddOrder", **LIMIT))["txid"][0]
    exchange.set_system_status(SystemStatus.MAINTENANCE)
    for method, params in (
        ("AddOrder", POST_LIMIT),
        ("CancelOrder", {"txid": txid}),
        ("CancelAll", {}),
        ("CancelAllOrdersAfter", {"timeout": "60"}),
    ):
        assert await kraken.private(method, **params) == {"error": ["EService:Unavailable"]}, method
    assert (await kraken.result("OpenOrders"))["open"][txid]["status"] == "open"
    assert (await kraken.result("Balance"))["ZUSD"] == "100000.0000"
    assert (await kraken.public("Ticker", pair="XBTUSD"))["error"] == []


async def test_nothing_matches_outside_online(exchange: Exchange, kraken: KrakenClient, clock: VirtualClock) -> None:
    # the same seed is the same market: look two hours ahead for a price the market will trade through
    ahead = VirtualClock(SANDBOX_EPOCH)
    future = Exchange.create(ahead, seed=42)
    ahead.advance(2 * 3_600)
    low = min(bar.low for bar in future.ohlc(PAIRS["XXBTZUSD"], 60, int(SANDBOX_EPOCH) - 1)[0])
    now = exchange.price(PAIRS["XXBTZUSD"])
    limit = ((now + low) / 2).quantize(Decimal("0.1"))
    assert low < limit < now * Decimal("0.999")
    txid = (await kraken.result("AddOrder", **{**LIMIT, "price": str(limit)}))["txid"][0]
    exchange.set_system_status(SystemStatus.POST_ONLY)
    clock.advance(2 * 3_600)
    halted = (await kraken.result("QueryOrders", txid=txid))[txid]
    assert (halted["status"], halted["vol_exec"]) == ("open", "0.00000000")
    exchange.set_system_status(SystemStatus.ONLINE)
    assert (await kraken.result("QueryOrders", txid=txid))[txid]["status"] == "open"  # the halt's lows are gone
    twin = VirtualClock(SANDBOX_EPOCH)
    online = Exchange.create(twin, seed=42)
    order = exchange.order(txid)
    assert order is not None
    online.add_order("default", order.spec)
    twin.advance(2 * 3_600)
    assert online.open_orders("default") == []  # online, the same order filled

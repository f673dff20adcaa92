"""Each fault of the catalog, injected over the wire with signed requests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from core.domain.clock import VirtualClock
from simulator.app import SandboxApp, create_app
from simulator.exchange import Exchange
from simulator.faults import FaultSchedule, parse_spec
from simulator.pairs import PAIRS
from tests.simulator.sandbox_client import TXID, KrakenClient, kraken_signature, resting_buy


@pytest.fixture
def faults() -> FaultSchedule:
    return FaultSchedule(seed=7)


@pytest.fixture
def app(exchange: Exchange, faults: FaultSchedule) -> SandboxApp:
    return create_app(exchange, faults=faults)


def install(faults: FaultSchedule, *specs: str) -> None:
    faults.add(*(parse_spec(spec) for spec in specs))


async def buy_btc(kraken: KrakenClient) -> None:
    await kraken.result("AddOrder", pair="XBTUSDT", type="buy", ordertype="market", volume="0.02")


def stop_params(exchange: Exchange) -> dict[str, str]:
    trigger = (exchange.price(PAIRS["XBTUSDT"]) * Decimal("0.95")).quantize(Decimal("0.1"))
    return {"pair": "XBTUSDT", "type": "sell", "ordertype": "stop-loss", "volume": "0.01", "price": str(trigger)}


async def test_stop_fail_refuses_every_stop_loss_and_nothing_else(
    kraken: KrakenClient, exchange: Exchange, faults: FaultSchedule
) -> None:
    install(faults, "stop-fail")
    await buy_btc(kraken)
    for _ in range(2):
        assert await kraken.private("AddOrder", **stop_params(exchange)) == {"error": ["EOrder:Invalid order"]}
    take_profit = {**stop_params(exchange), "ordertype": "take-profit", "price": "90000"}
    assert (await kraken.private("AddOrder", **take_profit))["error"] == []
    assert [(e.fault, e.role, e.outcome) for e in faults.log] == [
        ("stop-fail", "stop_loss", "EOrder:Invalid order")
    ] * 2


async def test_stop_fail_once_is_transient(kraken: KrakenClient, exchange: Exchange, faults: FaultSchedule) -> None:
    install(faults, "stop-fail-once")
    await buy_btc(kraken)
    assert await kraken.private("AddOrder", **stop_params(exchange)) == {"error": ["EService:Busy"]}
    assert (await kraken.private("AddOrder", **stop_params(exchange)))["error"] == []
    assert len(faults.log) == 1


async def test_partial_fill_leaves_the_rest_open(kraken: KrakenClient, faults: FaultSchedule) -> None:
    install(faults, "partial-fill:ratio=0.25")
    result = await kraken.result("AddOrder", pair="XBTUSDT", type="buy", ordertype="market", volume="0.02")
    (txid,) = result["txid"]
    order = (await kraken.result("QueryOrders", txid=txid))[txid]
    assert Decimal(order["vol_exec"]) == Decimal("0.005")
    assert order["status"] == "open"
    assert faults.log[0].txid == txid


async def test_vanish_dropped_acknowledges_an_order_that_never_existed(
    kraken: KrakenClient, faults: FaultSchedule
) -> None:
    install(faults, "vanish")
    before = await kraken.result("Balance")
    txid = await kraken.place(**resting_buy("XBTUSDT"))
    assert TXID.match(txid)
    assert await kraken.private("QueryOrders", txid=txid) == {"error": ["EOrder:Invalid order"]}
    assert (await kraken.result("OpenOrders"))["open"] == {}
    assert (await kraken.result("ClosedOrders"))["closed"] == {}
    assert await kraken.result("Balance") == before
    assert faults.log[0].txid == txid


async def test_vanish_hidden_order_trades_unseen(
    kraken: KrakenClient, exchange: Exchange, faults: FaultSchedule
) -> None:
    install(faults, "vanish:mode=hidden")
    txid = await kraken.place(**resting_buy("XBTUSDT"))
    assert exchange.order(txid) is not None
    assert await kraken.private("QueryOrders", txid=txid) == {"error": ["EOrder:Invalid order"]}
    assert (await kraken.result("OpenOrders"))["open"] == {}


async def test_ghost_timeout_places_the_order_but_loses_the_answer(
    kraken: KrakenClient, exchange: Exchange, faults: FaultSchedule
) -> None:
    install(faults, "ghost")
    with pytest.raises(httpx.ReadTimeout):
        await kraken.private("AddOrder", **resting_buy("XBTUSDT"), cl_ord_id="mine-1")
    assert list((await kraken.result("OpenOrders", cl_ord_id="mine-1"))["open"]) == [faults.log[0].txid]
    assert faults.log[0].outcome == "response lost"


async def test_ghost_internal_error_after_placing(kraken: KrakenClient, faults: FaultSchedule) -> None:
    install(faults, "ghost:variant=internal-error")
    assert await kraken.private("AddOrder", **resting_buy("XBTUSDT")) == {"error": ["EGeneral:Internal error"]}
    assert len((await kraken.result("OpenOrders"))["open"]) == 1


async def test_ghost_html_5xx_page(kraken: KrakenClient, faults: FaultSchedule) -> None:
    install(faults, "ghost:variant=html-5xx,status=520")
    kraken.nonce += 1
    body = urlencode({"nonce": kraken.nonce, **resting_buy("XBTUSDT")})
    path = "/0/private/AddOrder"
    response = await kraken.http.post(
        path,
        content=body,
        headers={
            "API-Key": kraken.key,
            "API-Sign": kraken_signature(kraken.secret, path, str(kraken.nonce), body),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 520
    assert response.headers["content-type"].startswith("text/html")
    assert "cloudflare" in response.text
    assert len((await kraken.result("OpenOrders"))["open"]) == 1


async def test_rate_limit_fault_uses_the_endpoints_own_error(kraken: KrakenClient, faults: FaultSchedule) -> None:
    install(faults, "rate-limit:times=2")
    assert await kraken.private("AddOrder", **resting_buy("XBTUSDT")) == {"error": ["EOrder:Rate limit exceeded"]}
    assert await kraken.private("Balance") == {"error": ["EAPI:Rate limit exceeded"]}
    assert (await kraken.private("Balance"))["error"] == []


async def test_unavailable_and_busy_on_chosen_endpoints(kraken: KrakenClient, faults: FaultSchedule) -> None:
    install(faults, "unavailable:endpoint=Ticker", "busy:endpoint=Balance")
    assert await kraken.public("Ticker", pair="XBTUSD") == {"error": ["EService:Unavailable"]}
    assert await kraken.private("Balance") == {"error": ["EService:Busy"]}
    assert (await kraken.public("Ticker", pair="XBTUSD"))["error"] == []


async def test_insufficient_funds_on_entries_only(
    kraken: KrakenClient, exchange: Exchange, faults: FaultSchedule
) -> None:
    install(faults, "insufficient-funds:times=1")
    assert await kraken.private("AddOrder", pair="XBTUSDT", type="buy", ordertype="market", volume="0.02") == {
        "error": ["EOrder:Insufficient funds"]
    }
    await buy_btc(kraken)
    assert (await kraken.private("AddOrder", **stop_params(exchange)))["error"] == []


async def test_latency_spends_exchange_time(kraken: KrakenClient, clock: VirtualClock, faults: FaultSchedule) -> None:
    install(faults, "latency:seconds=5,endpoint=AddOrder")
    start = clock.time()
    txid = await kraken.place(**resting_buy("XBTUSDT"))
    order = (await kraken.result("QueryOrders", txid=txid))[txid]
    assert order["opentm"] == start + 5
    assert faults.log[0].effect == "delayed 5 s"


async def test_invalid_nonce_once(kraken: KrakenClient, faults: FaultSchedule) -> None:
    install(faults, "invalid-nonce:endpoint=Balance")
    assert await kraken.private("Balance") == {"error": ["EAPI:Invalid nonce"]}
    assert (await kraken.private("Balance"))["error"] == []


async def test_stale_visibility_shows_the_order_late(
    kraken: KrakenClient, clock: VirtualClock, faults: FaultSchedule
) -> None:
    install(faults, "stale-visibility:seconds=10")
    txid = await kraken.place(**resting_buy("XBTUSDT"))
    assert await kraken.private("QueryOrders", txid=txid) == {"error": ["EOrder:Invalid order"]}
    assert (await kraken.result("OpenOrders"))["open"] == {}
    clock.advance(10)
    assert list(await kraken.result("QueryOrders", txid=txid)) == [txid]
    assert list((await kraken.result("OpenOrders"))["open"]) == [txid]


async def test_gap_jumps_the_price_through_the_stop(
    kraken: KrakenClient, exchange: Exchange, clock: VirtualClock, faults: FaultSchedule
) -> None:
    install(faults, "gap:beyond_pct=3,after_seconds=30")
    await buy_btc(kraken)
    params = stop_params(exchange)
    (txid,) = (await kraken.result("AddOrder", **params))["txid"]
    clock.advance(120)
    order = (await kraken.result("QueryOrders", txid=txid))[txid]
    assert order["status"] == "closed"
    assert Decimal(order["price"]) < Decimal(params["price"]) * Decimal("0.98")
    assert faults.log[0].txid == txid


async def test_faults_compose_in_rule_order(
    kraken: KrakenClient, clock: VirtualClock, exchange: Exchange, faults: FaultSchedule
) -> None:
    install(faults, "latency:seconds=3,endpoint=AddOrder", "stop-fail-once", "stale-visibility:seconds=60")
    await buy_btc(kraken)
    assert await kraken.private("AddOrder", **stop_params(exchange)) == {"error": ["EService:Busy"]}
    (txid,) = (await kraken.result("AddOrder", **stop_params(exchange)))["txid"]
    assert await kraken.private("QueryOrders", txid=txid) == {"error": ["EOrder:Invalid order"]}
    summary = [(e.fault, e.outcome) for e in faults.log]
    assert summary == [
        ("latency", "ok"),
        ("stale-visibility", "ok"),  # the entry
        ("latency", "EService:Busy"),
        ("stop-fail-once", "EService:Busy"),  # the first stop
        ("latency", "ok"),
        ("stale-visibility", "ok"),  # the retried stop
    ]


async def run_chaos(seed: int) -> list[dict[str, Any]]:
    exchange = Exchange.create(VirtualClock(1_767_225_600.0), seed=42, fixed_ids=True)  # the log names txids
    faults = FaultSchedule(seed=seed)
    for name in ("busy", "unavailable", "rate-limit", "stale-visibility", "latency"):
        faults.add(parse_spec(f"{name}:probability=0.3,times=50"))
    transport = httpx.ASGITransport(app=create_app(exchange, tier=None, faults=faults))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.kraken") as http:
        kraken = KrakenClient(http, exchange.create_api_key())
        for _ in range(15):
            await kraken.private("AddOrder", **resting_buy("XBTUSDT"))
            await kraken.private("OpenOrders")
            await kraken.public("Ticker", pair="XBTUSD")
    return faults.log_dicts()


async def test_same_seed_same_injections() -> None:
    first, again, other = await run_chaos(1), await run_chaos(1), await run_chaos(2)
    assert len(first) > 5
    assert first == again
    assert first != other


async def test_never_a_500_under_every_fault(kraken: KrakenClient, exchange: Exchange, faults: FaultSchedule) -> None:
    for spec in (
        "stop-fail",
        "partial-fill",
        "vanish",
        "ghost:variant=internal-error",
        "rate-limit",
        "unavailable",
        "busy",
        "insufficient-funds",
        "latency",
        "invalid-nonce",
        "stale-visibility",
        "gap",
    ):
        joiner = "," if ":" in spec else ":"
        faults.add(parse_spec(f"{spec}{joiner}probability=0.4,endpoint=*,times=100"))
    calls: list[tuple[str, dict[str, str]]] = [
        ("AddOrder", {"pair": "XBTUSDT", "type": "buy", "ordertype": "market", "volume": "0.001"}),
        ("AddOrder", stop_params(exchange)),
        ("AddOrder", resting_buy("XBTUSDT")),
        ("OpenOrders", {}),
        ("ClosedOrders", {}),
        ("QueryOrders", {"txid": "OAAAAA-BBBBB-CCCCCC"}),
        ("Balance", {}),
        ("CancelOrder", {"txid": "OAAAAA-BBBBB-CCCCCC"}),
    ]
    internal_errors = 0
    for _ in range(6):
        for method, params in calls:
            answer = await kraken.private(method, **params)
            internal_errors += answer["error"] == ["EGeneral:Internal error"]
    ghosts = sum(1 for e in faults.log if e.fault == "ghost" and e.outcome == "EGeneral:Internal error")
    assert internal_errors == ghosts
    assert {e.fault for e in faults.log} >= {"busy", "latency", "stale-visibility"}

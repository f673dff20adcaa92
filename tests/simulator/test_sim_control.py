"""The control plane under /_sandbox/ and its Python API on the embedded harness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from core.domain.clock import VirtualClock
from simulator.app import SandboxApp
from simulator.embedded import EmbeddedExchange
from simulator.faults import FaultSchedule, parse_spec
from simulator.models import ApiKey
from simulator.ratelimits import Tier
from tests.simulator.sandbox_client import KrakenClient


@pytest.fixture
async def http(app: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    # X-TG-Sandbox: 1 is what the control guard asks of every method but GET and HEAD.
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox.kraken", headers={"X-TG-Sandbox": "1"}
    ) as client:
        yield client


async def result(response: httpx.Response) -> dict:
    assert response.status_code == 200
    document = response.json()
    assert document["error"] == [], document
    return document["result"]


async def test_faults_are_added_listed_and_cleared(http: httpx.AsyncClient, kraken: KrakenClient) -> None:
    listed = await result(
        await http.post(
            "/_sandbox/faults", json={"rules": [{"fault": "busy", "endpoint": "Balance"}, "latency:seconds=1,times=2"]}
        )
    )
    assert [(r["fault"], r["endpoint"], r["times"]) for r in listed["rules"]] == [
        ("busy", "Balance", 1),
        ("latency", "*", 2),
    ]
    assert (await result(await http.get("/_sandbox/faults")))["rules"] == listed["rules"]
    await result(await http.post("/_sandbox/faults", data={"spec": "unavailable:endpoint=Time"}))
    assert await kraken.private("Balance") == {"error": ["EService:Busy"]}
    assert (await kraken.private("Balance"))["error"] == []
    log = (await result(await http.get("/_sandbox/fault-log")))["log"]
    assert [(e["fault"], e["endpoint"], e["outcome"]) for e in log] == [
        ("busy", "Balance", "EService:Busy"),
        ("latency", "Balance", "ok"),
    ]
    assert (await result(await http.delete("/_sandbox/faults")))["rules"] == []
    assert (await kraken.private("Balance"))["error"] == []
    assert len((await result(await http.get("/_sandbox/fault-log")))["log"]) == 2


async def test_bad_rules_are_refused_with_the_reason(http: httpx.AsyncClient) -> None:
    answer = (await http.post("/_sandbox/faults", json={"rules": [{"fault": "meteor"}]})).json()
    assert answer["error"][0].startswith("EGeneral:Invalid arguments:rules:")
    assert "unknown fault 'meteor'" in answer["error"][0]
    assert (await http.post("/_sandbox/faults", json={})).json() == {"error": ["EGeneral:Invalid arguments:rules"]}


async def test_seed_restarts_the_schedule(http: httpx.AsyncClient, app: SandboxApp, kraken: KrakenClient) -> None:
    app.sandbox.add_faults("busy:endpoint=Balance")
    await kraken.private("Balance")
    seeded = await result(await http.post("/_sandbox/seed", json={"seed": 9}))
    assert seeded["seed"] == 9
    assert app.sandbox.faults.log == []
    assert await kraken.private("Balance") == {"error": ["EService:Busy"]}


async def test_state_shows_prices_balances_orders_and_counters(http: httpx.AsyncClient, kraken: KrakenClient) -> None:
    await kraken.result("Balance")
    (txid,) = (
        await kraken.result("AddOrder", pair="XBTUSDT", type="buy", ordertype="limit", volume="0.01", price="30000")
    )["txid"]
    state = await result(await http.get("/_sandbox/state"))
    assert set(state["prices"]) >= {"XXBTZUSD", "XBTUSDT"}
    assert list(state["accounts"]["default"]["open"]) == [txid]
    assert state["rate_limits"]["trading"] == {"default:XBTUSDT": 1.0}
    assert list(state["rate_limits"]["rest"].values()) == [1.0]
    assert state["rate_limits"]["limits"]["rest"] == 15


async def test_state_leaves_out_what_its_caller_does_not_read(
    http: httpx.AsyncClient, kraken: KrakenClient, app: SandboxApp
) -> None:
    (live,) = (
        await kraken.result("AddOrder", pair="XBTUSDT", type="buy", ordertype="limit", volume="0.01", price="30000")
    )["txid"]
    (gone,) = (await kraken.result("AddOrder", pair="XBTUSDT", type="buy", ordertype="market", volume="0.01"))["txid"]
    whole = (await result(await http.get("/_sandbox/state")))["accounts"]["default"]

    lean = (await result(await http.get("/_sandbox/state?open=false&trades=false")))["accounts"]["default"]
    assert set(lean) == {"balances", "keys", "orders"} and lean["orders"] == whole["orders"]
    assert whole["orders"][gone]["status"] == "closed" and whole["trades"]
    brief = await result(
        await http.post("/_sandbox/advance", data={"seconds": "0", "orders": "false", "open_ids": "true"})
    )
    assert brief["accounts"]["default"]["open_ids"] == [live] and "orders" not in brief["accounts"]["default"]

    # a settled order's shape is kept; after a reset the orders are other ones, told anew
    assert (await result(await http.get("/_sandbox/state")))["accounts"]["default"]["orders"] == whole["orders"]
    await result(await http.post("/_sandbox/reset"))
    assert (await result(await http.get("/_sandbox/state")))["accounts"]["default"]["orders"] == {}
    (again,) = (await kraken.result("AddOrder", pair="XBTUSDT", type="buy", ordertype="market", volume="0.02"))["txid"]
    orders = (await result(await http.get("/_sandbox/state")))["accounts"]["default"]["orders"]
    assert list(orders) == [again] and orders[again]["vol"].startswith("0.02")
    assert app.sandbox.state()["accounts"]["default"]["orders"] == orders


async def test_advance_moves_time_and_decays_counters(
    http: httpx.AsyncClient, kraken: KrakenClient, clock: VirtualClock
) -> None:
    start = clock.time()
    for _ in range(15):
        await kraken.private("Balance")
    moved = await result(await http.post("/_sandbox/advance", json={"seconds": 90}))
    assert moved["time"] == start + 90
    assert list(moved["rate_limits"]["rest"].values()) == [0.0]
    assert (await kraken.private("Balance"))["error"] == []


async def test_advance_answers_the_clock_alone_when_asked(http: httpx.AsyncClient, clock: VirtualClock) -> None:
    start = clock.time()
    moved = await result(await http.post("/_sandbox/advance", data={"seconds": "30", "state": "false"}))
    assert moved == {"time": start + 30, "frozen": True}
    brief = await result(
        await http.post("/_sandbox/advance", data={"seconds": "0", "orders": "false", "pairs": "XBTUSDT"})
    )
    assert (
        brief["time"] == start + 30
        and list(brief["prices"]) == ["XBTUSDT"]
        and "open" not in brief["accounts"]["default"]
    )
    refused = await http.post("/_sandbox/advance", data={"seconds": "1", "state": "maybe"})
    assert refused.json()["error"] == ["EGeneral:Invalid arguments:state"]
    refused = await http.post("/_sandbox/advance", data={"seconds": "1", "pairs": "NOPE"})
    assert refused.json()["error"] == ["EGeneral:Invalid arguments:pairs"]
    assert clock.time() == start + 30  # a refused call takes no step


async def test_reset_starts_over(http: httpx.AsyncClient, app: SandboxApp, kraken: KrakenClient) -> None:
    app.sandbox.add_faults("busy:endpoint=Balance")
    await kraken.private("Balance")
    await kraken.result("AddOrder", pair="XBTUSDT", type="buy", ordertype="market", volume="0.01")
    state = await result(await http.post("/_sandbox/reset"))
    assert state["accounts"]["default"]["balances"]["USDT"].startswith("100000")
    assert state["rate_limits"]["trading"] == {}
    assert app.sandbox.faults.log == []
    assert len(app.sandbox.faults.rules) == 1


async def test_control_plane_is_not_rate_limited(http: httpx.AsyncClient) -> None:
    for _ in range(30):
        await result(await http.get("/_sandbox/state"))


async def test_unknown_control_path_is_an_unknown_method(http: httpx.AsyncClient) -> None:
    assert (await http.put("/_sandbox/faults")).json() == {"error": ["EGeneral:Unknown method"]}


async def test_embedded_harness_takes_a_tier_and_a_schedule(tmp_path: Path) -> None:
    faults = FaultSchedule(seed=3, rules=[parse_spec("busy:endpoint=Balance")])
    sandbox = EmbeddedExchange.open(tmp_path / "state.db", tier=Tier.PRO, faults=faults)
    key = ApiKey(key=sandbox.api_key, secret=sandbox.api_secret, account="default")
    async with httpx.AsyncClient(transport=sandbox.transport, base_url=sandbox.base_url) as http:
        kraken = KrakenClient(http, key)
        assert await kraken.private("Balance") == {"error": ["EService:Busy"]}
        for _ in range(19):
            assert (await kraken.private("Balance"))["error"] == []
        assert await kraken.private("Balance") == {"error": ["EAPI:Rate limit exceeded"]}
    assert [e.fault for e in sandbox.faults.log] == ["busy"]
    sandbox.reset()
    assert sandbox.app.sandbox.faults is faults
    assert sandbox.app.sandbox.state()["accounts"]["default"]["balances"]["ZUSD"] == str(Decimal("100000.0000"))

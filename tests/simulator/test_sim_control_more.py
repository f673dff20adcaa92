"""The control routes beyond reset/advance/faults: balances, accounts, price shapes,
forced fills, the clock, rules removed by id, scenarios; and every bad request a
Kraken-style refusal naming what was wrong, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from core.domain.clock import VirtualClock
from simulator.app import SandboxApp, create_app
from simulator.exchange import Exchange
from simulator.models import ApiKey
from tests.simulator.sandbox_client import KrakenClient


@pytest.fixture
def app(exchange: Exchange) -> SandboxApp:
    return create_app(exchange, tier=None)


@pytest.fixture
async def http(app: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox.kraken", headers={"X-TG-Sandbox": "1"}
    ) as client:
        yield client


@pytest.fixture
def kraken(http: httpx.AsyncClient, api_key: ApiKey) -> KrakenClient:
    return KrakenClient(http, api_key)


async def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200
    document = response.json()
    assert document["error"] == [], document
    return document["result"]


async def refused(response: httpx.Response) -> list[str]:
    assert response.status_code == 200
    errors: list[str] = response.json()["error"]
    return errors


async def test_balances_are_set_by_asset_name_in_json_or_a_form(http: httpx.AsyncClient, kraken: KrakenClient) -> None:
    set_json = await ok(await http.post("/_sandbox/balances", json={"balances": {"BTC": "0.5", "USD": 10}}))
    assert set_json["balances"] == {"ZUSD": "10.0000", "USDT": "100000.00000000", "XXBT": "0.5000000000"}
    await ok(await http.post("/_sandbox/balances", data={"balances": "ETH:2", "account": "default"}))
    assert (await kraken.result("Balance"))["XETH"] == "2.0000000000"


async def test_rules_are_removed_one_by_one_by_their_ids(http: httpx.AsyncClient, kraken: KrakenClient) -> None:
    added = await ok(await http.post("/_sandbox/faults", json={"rules": ["busy:endpoint=Balance", "latency"]}))
    assert added["added"] == [0, 1]
    left = await ok(await http.delete("/_sandbox/faults", params={"id": 0}))
    assert [(r["id"], r["fault"]) for r in left["rules"]] == [(1, "latency")]
    assert (await kraken.private("Balance"))["error"] == []
    again = await ok(await http.post("/_sandbox/faults", data={"spec": "busy"}))
    assert again["added"] == [2]  # ids are never handed out twice


async def test_a_forced_fill_of_a_resting_sell_settles_as_a_maker_fill(
    http: httpx.AsyncClient, kraken: KrakenClient
) -> None:
    await ok(await http.post("/_sandbox/balances", json={"balances": {"XBT": "1"}}))
    (txid,) = (
        await kraken.result("AddOrder", pair="XBTUSD", type="sell", ordertype="limit", volume="0.5", price="90000")
    )["txid"]
    filled = (await ok(await http.post("/_sandbox/fill", json={"txid": txid})))[txid]
    assert (filled["status"], filled["vol_exec"], filled["price"]) == ("closed", "0.50000000", "90000.0")
    balance = await kraken.result("Balance")
    assert balance["XXBT"] == "0.5000000000"
    assert Decimal(balance["ZUSD"]) == Decimal(100_000) + Decimal(45_000) * (1 - Decimal("0.0016"))  # the maker fee


async def test_a_forced_fill_fires_an_untriggered_stop(http: httpx.AsyncClient, kraken: KrakenClient) -> None:
    await kraken.result("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.1")
    (txid,) = (
        await kraken.result("AddOrder", pair="XBTUSD", type="sell", ordertype="stop-loss", volume="0.1", price="40000")
    )["txid"]
    filled = (await ok(await http.post("/_sandbox/fill", json={"txid": txid, "price": "39000"})))[txid]
    assert (filled["status"], filled["price"]) == ("closed", "39000.0")


async def test_accounts_open_with_their_own_keys(http: httpx.AsyncClient, app: SandboxApp) -> None:
    bob = await ok(await http.post("/_sandbox/accounts", json={"account": "bob", "balances": {"USD": "7"}}))
    key = ApiKey(key=bob["key"], secret=bob["secret"], account="bob")
    assert await KrakenClient(http, key).result("Balance") == {"ZUSD": "7.0000"}
    listed = await ok(await http.get("/_sandbox/accounts"))
    assert listed["accounts"]["bob"] == [bob["key"]]
    assert bob["secret"] not in str(await ok(await http.get("/_sandbox/state")))


async def test_a_virtual_clock_is_always_frozen(http: httpx.AsyncClient) -> None:
    assert (await ok(await http.get("/_sandbox/clock")))["frozen"] is True
    assert (await ok(await http.post("/_sandbox/clock", json={"frozen": True})))["frozen"] is True
    assert await refused(await http.post("/_sandbox/clock", json={"frozen": False})) == ["EGeneral:Permission denied"]


async def test_a_price_shape_starts_later_and_shows_in_the_state(http: httpx.AsyncClient, clock: VirtualClock) -> None:
    before = Decimal((await ok(await http.get("/_sandbox/state")))["prices"]["XETHZUSD"])
    shaped = await ok(
        await http.post("/_sandbox/price", json={"shape": "jump", "pair": "ETH/USD", "pct": "-50", "after": "1m"})
    )
    assert shaped["shape"] == {
        "shape": "jump",
        "pair": "XETHZUSD",
        "at": clock.time() + 60,
        "pct": "-50",
        "over": 0.0,
        "recover": 0.0,
    }
    assert Decimal((await ok(await http.get("/_sandbox/state")))["prices"]["XETHZUSD"]) == before
    moved = await ok(await http.post("/_sandbox/advance", json={"seconds": 60}))
    assert Decimal(moved["prices"]["XETHZUSD"]) < before * Decimal("0.55")
    await ok(await http.post("/_sandbox/price", json={"shape": "trend", "pct": 5, "over": 60, "after": 60}))
    kept = (await ok(await http.post("/_sandbox/reset")))["shapes"]
    assert [shape["shape"] for shape in kept] == ["jump"]  # what the market went through stays; what is to come goes


@pytest.mark.parametrize(
    ("route", "body", "error"),
    [
        ("balances", {"balances": {"ZZZ": "1"}}, "EGeneral:Invalid arguments:balances"),
        ("balances", {"balances": {"USD": "-1"}}, "EGeneral:Invalid arguments:balances"),
        ("balances", {"balances": "USD"}, "EGeneral:Invalid arguments:balances"),
        ("balances", {"balances": {"USD": "1e30"}}, "EGeneral:Invalid arguments:balances"),
        ("accounts", {"account": "other", "balances": {"USD": "-1"}}, "EGeneral:Invalid arguments:balances"),
        ("accounts", {"account": "no spaces"}, "EGeneral:Invalid arguments:account"),
        ("price", {"shape": "meteor"}, "EGeneral:Invalid arguments:shape"),
        ("price", {"shape": "jump", "pct": 5, "pair": "ZZZ/USD"}, "EGeneral:Invalid arguments:pair"),
        ("price", {"shape": "jump", "pct": -100}, "EGeneral:Invalid arguments:pct"),
        ("price", {"shape": "flat", "over": "1h", "pct": 3}, "EGeneral:Invalid arguments:flat takes no pct"),
        ("price", {"shape": "jump", "pct": 2, "recover": 3}, "EGeneral:Invalid arguments:only flash-crash"),
        ("fill", {"txid": "OAAAAA-AAAAA-AAAAAA"}, "EOrder:Invalid order"),
        ("fill", {}, "EGeneral:Invalid arguments:txid"),
        ("clock", {"frozen": "maybe"}, "EGeneral:Invalid arguments:frozen"),
        ("scenario", {"toml": "[[event]]\nat = 1\n"}, "EGeneral:Invalid arguments:toml:scenario: event.1"),
        ("scenario", {"toml": "not toml ["}, "EGeneral:Invalid arguments:toml:scenario is not TOML"),
    ],
)
async def test_a_bad_request_is_refused_with_what_was_wrong(
    http: httpx.AsyncClient, route: str, body: dict, error: str
) -> None:
    [answer] = await refused(await http.post(f"/_sandbox/{route}", json=body))
    assert answer.startswith(error)


async def test_a_fill_beyond_what_is_left_is_refused(http: httpx.AsyncClient, kraken: KrakenClient) -> None:
    (txid,) = (
        await kraken.result("AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="30000")
    )["txid"]
    assert await refused(await http.post("/_sandbox/fill", json={"txid": txid, "volume": "0.02"})) == [
        "EGeneral:Invalid arguments:volume"
    ]
    assert await refused(await http.delete("/_sandbox/faults", params={"id": 5})) == ["EGeneral:Invalid arguments:id"]

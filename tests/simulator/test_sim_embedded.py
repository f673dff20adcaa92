"""The in-process harness: persistence across processes, reset, determinism."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.embedded import SANDBOX_EPOCH, EmbeddedExchange
from simulator.exceptions import SandboxStateError
from simulator.models import ApiKey
from simulator.pairs import PAIRS
from tests.simulator.sandbox_client import KrakenClient


def client_for(sandbox: EmbeddedExchange, http: httpx.AsyncClient, nonce: int = 1_000) -> KrakenClient:
    client = KrakenClient(http, ApiKey(sandbox.api_key, sandbox.api_secret, "default"))
    client.nonce = nonce
    return client


async def run_session(sandbox: EmbeddedExchange, nonce: int = 1_000) -> dict[str, Any]:
    """A fixed script of trades and waits; returns everything the account can see."""
    async with httpx.AsyncClient(transport=sandbox.transport, base_url=sandbox.base_url) as http:
        kraken = client_for(sandbox, http, nonce)
        await kraken.result("AddOrder", pair="XBTUSDT", type="buy", ordertype="market", volume="0.3")
        await kraken.result("AddOrder", pair="XBTUSDT", type="sell", ordertype="stop-loss", volume="0.3", price="59500")
        await kraken.result("AddOrder", pair="ETHUSD", type="buy", ordertype="limit", volume="2", price="2980")
        sandbox.advance(2 * 86_400)
        await kraken.result("AddOrder", pair="XRPUSDT", type="buy", ordertype="market", volume="500")
        return {
            "closed": await kraken.result("ClosedOrders", trades="true"),
            "open": await kraken.result("OpenOrders"),
            "balance": await kraken.result("Balance"),
        }


def without_ids(session: dict[str, Any]) -> list[Any]:
    orders = [*session["closed"]["closed"].values(), *session["open"]["open"].values()]
    kept = ("descr", "vol", "vol_exec", "cost", "fee", "price", "status", "opentm", "closetm")
    return sorted([str(o[k]) for k in kept] for o in orders) + [session["balance"]]


async def test_same_seed_same_prices_and_fills_but_never_the_same_ids(tmp_path: Path) -> None:
    first = await run_session(EmbeddedExchange.open(tmp_path / "a.db", seed=42))
    second = await run_session(EmbeddedExchange.open(tmp_path / "b.db", seed=42))
    assert without_ids(first) == without_ids(second)
    assert set(first["closed"]["closed"]).isdisjoint(second["closed"]["closed"])
    assert len(first["closed"]["closed"]) >= 2


async def test_fixed_ids_make_the_ids_reproducible_too(tmp_path: Path) -> None:
    first = await run_session(EmbeddedExchange.open(tmp_path / "a.db", seed=42, fixed_ids=True))
    second = await run_session(EmbeddedExchange.open(tmp_path / "b.db", seed=42, fixed_ids=True))
    assert first == second


async def test_an_id_is_never_handed_out_again_after_a_reset_or_a_restart(tmp_path: Path) -> None:
    sandbox = EmbeddedExchange.open(tmp_path / "state.db", seed=42)
    seen = set((await run_session(sandbox))["closed"]["closed"])
    sandbox.save()
    sandbox.reset()
    seen_after_reset = set((await run_session(sandbox))["closed"]["closed"])
    sandbox.save()
    restarted = EmbeddedExchange.open(tmp_path / "state.db", seed=42)
    new_after_restart = set((await run_session(restarted, nonce=10_000))["closed"]["closed"]) - seen_after_reset
    assert len(new_after_restart) >= 2
    assert seen.isdisjoint(seen_after_reset)
    assert new_after_restart.isdisjoint(seen | seen_after_reset)


async def test_another_seed_gives_other_ids_and_fills(tmp_path: Path) -> None:
    first = await run_session(EmbeddedExchange.open(tmp_path / "a.db", seed=42))
    other = await run_session(EmbeddedExchange.open(tmp_path / "b.db", seed=43))
    assert set(first["closed"]["closed"]).isdisjoint(other["closed"]["closed"])
    assert first["balance"] != other["balance"]


async def test_fresh_sandbox_opens_at_the_fixed_epoch(tmp_path: Path) -> None:
    sandbox = EmbeddedExchange.open(tmp_path / "state.db")
    assert sandbox.clock.time() == SANDBOX_EPOCH
    assert sandbox.base_url == "http://sandbox.kraken"
    assert sandbox.api_secret not in repr(sandbox)
    assert sandbox.api_secret not in repr(sandbox.exchange.state.api_keys[sandbox.api_key])


async def test_saved_state_is_what_the_next_process_sees(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    sandbox = EmbeddedExchange.open(path)
    async with httpx.AsyncClient(transport=sandbox.transport, base_url=sandbox.base_url) as http:
        kraken = client_for(sandbox, http)
        await kraken.result("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.2")
        await kraken.result(
            "AddOrder", pair="XBTUSD", type="sell", ordertype="take-profit", volume="0.2", price="90000", userref="9"
        )
        sandbox.advance(3_600)
        before = (await kraken.result("OpenOrders"), await kraken.result("Balance"))
    sandbox.save()

    reopened = EmbeddedExchange.open(path, seed=999)
    assert (reopened.api_key, reopened.api_secret) == (sandbox.api_key, sandbox.api_secret)
    assert reopened.clock.time() == SANDBOX_EPOCH + 3_600
    async with httpx.AsyncClient(transport=reopened.transport, base_url=reopened.base_url) as http:
        kraken = client_for(reopened, http, nonce=2_000)
        assert (await kraken.result("OpenOrders"), await kraken.result("Balance")) == before
        stale = client_for(reopened, http, nonce=1_000)
        assert await stale.private("Balance") == {"error": ["EAPI:Invalid nonce"]}
        placed = await kraken.result("AddOrder", pair="ETHUSD", type="buy", ordertype="market", volume="0.1")
        assert placed["txid"][0] not in before[0]["open"]


async def test_reset_starts_over_with_the_same_credentials(tmp_path: Path) -> None:
    sandbox = EmbeddedExchange.open(tmp_path / "state.db")
    key, secret = sandbox.api_key, sandbox.api_secret
    async with httpx.AsyncClient(transport=sandbox.transport, base_url=sandbox.base_url) as http:
        await client_for(sandbox, http).result("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.2")
    sandbox.advance(7_200)
    sandbox.reset()
    assert (sandbox.api_key, sandbox.api_secret) == (key, secret)
    assert sandbox.clock.time() == SANDBOX_EPOCH
    async with httpx.AsyncClient(transport=sandbox.transport, base_url=sandbox.base_url) as http:
        kraken = client_for(sandbox, http)
        assert await kraken.result("Balance") == {"ZUSD": "100000.0000", "USDT": "100000.00000000"}
        assert (await kraken.result("ClosedOrders"))["count"] == 0


async def test_control_plane_advances_resets_and_reports(tmp_path: Path) -> None:
    sandbox = EmbeddedExchange.open(tmp_path / "state.db")
    async with httpx.AsyncClient(
        transport=sandbox.transport, base_url=sandbox.base_url, headers={"X-TG-Sandbox": "1"}
    ) as http:
        await client_for(sandbox, http).result(
            "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.2", price="40000"
        )
        moved = (await http.post("/_sandbox/advance", json={"seconds": 90})).json()["result"]
        assert moved["time"] == SANDBOX_EPOCH + 90
        assert set(moved["prices"]) == set(PAIRS)
        assert len(moved["accounts"]["default"]["open"]) == 1
        state = (await http.get("/_sandbox/state")).json()["result"]
        assert state == moved
        reset = (await http.post("/_sandbox/reset")).json()["result"]
        assert reset["accounts"]["default"]["open"] == {}
        assert reset["time"] == SANDBOX_EPOCH + 90
        for seconds in ("-5", "1e40", "soon"):
            refused = (await http.post("/_sandbox/advance", data={"seconds": seconds})).json()
            assert refused == {"error": ["EGeneral:Invalid arguments:seconds"]}


def test_damaged_state_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(SandboxStateError, match="not a sandbox state database"):
        EmbeddedExchange.open(path)


def test_state_from_another_schema_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    EmbeddedExchange.open(path).save()
    with sqlite3.connect(path) as db:
        db.execute("update exchange_state set schema_version = 99")
    with pytest.raises(SandboxStateError, match="schema 99"):
        EmbeddedExchange.open(path)


def test_balances_survive_as_exact_decimals(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    sandbox = EmbeddedExchange.open(path)
    sandbox.exchange.state.accounts["default"].balances["USDT"] = Decimal("0.12345678")
    sandbox.save()
    assert EmbeddedExchange.open(path).exchange.balance("default")["USDT"] == Decimal("0.12345678")

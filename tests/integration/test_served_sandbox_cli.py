"""The operator commands against a served sandbox (`tg sim serve`) over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from core.exchange.signing import NonceSource, sign
from simulator.server import SandboxServer, serving
from tests.integration.tg_cli import tg as tg_cli
from tests.integration.tg_cli import tg_json

pytestmark = pytest.mark.integration

API_KEY = "tgServedSandboxKey0123456789"
SECRET = base64.b64encode(bytes(range(64))).decode()
ENV = {"TG_KRAKEN_API_KEY": API_KEY, "TG_KRAKEN_API_SECRET": SECRET}


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """No rate limits: what these tests look at is not pacing (tg reads the tier a
    served sandbox enforces, so it does not pace either); see the test below for that."""
    with serving(keys=[(API_KEY, SECRET)], tier=None) as server:
        yield server


def test_commands_in_a_row_against_a_starter_sandbox_are_paced_never_refused(tmp_path: Path) -> None:
    """Each process starts where the last one left the key's counters (saved in the data
    directory), so back-to-back commands wait instead of being refused."""
    env = {**ENV, "TG_DATA_DIR": str(tmp_path / "data")}
    db = str(tmp_path / "tg.db")
    with serving(keys=[(API_KEY, SECRET)], tier="starter") as server:
        for command in (["trade", "BTC/USDT", "--side", "buy"], ["reconcile"], ["reconcile"]):
            code, out, err = tg_cli(*command, "--url", server.url, "--db", db, "--json", env=env)
            assert code == 0, out + err
            assert "Rate limit exceeded" not in out + err
        sandbox = server.sandbox
        assert sandbox is not None and sandbox.limits is not None
        assert sandbox.limits.refused == 0
        assert sum(c.value for c in sandbox.limits.rest.values()) > 0  # the counters did count


def tg(*args: str) -> Any:  # the command's --json output: an object or a list, by command
    return tg_json(*args, env=ENV)


def private(url: str, method: str, **params: str) -> Any:
    """A private call of another client on tg's key, signed as tg signs it."""
    nonce = str(NonceSource().next())  # wall-clock microseconds, as tg's own client counts
    body = urlencode({"nonce": nonce, **params})
    headers = {
        "API-Key": API_KEY,
        "API-Sign": sign(f"/0/private/{method}", nonce, body, SECRET),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    answer = httpx.post(f"{url}/0/private/{method}", content=body, headers=headers).json()
    assert answer["error"] == [], answer
    return answer["result"]


def cancel_behind_tgs_back(url: str, txid: str) -> None:
    private(url, "CancelOrder", txid=txid)


def open_stops(url: str) -> list[dict]:
    return [o for o in private(url, "OpenOrders")["open"].values() if o["descr"]["ordertype"] == "stop-loss"]


def test_orders_and_positions_with_url_show_the_exchange_and_change_nothing(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    db = str(tmp_path / "tg.db")
    summary = tg("trade", "BTC/USDT", "--side", "buy", "--url", sandbox.url, "--db", db)
    stop = next(o for o in summary["orders"] if o["role"] == "stop_loss")

    cancel_behind_tgs_back(sandbox.url, stop["txid"])
    stale = {o["txid"]: o for o in tg("orders", "--db", db)}
    assert stale[stop["txid"]]["status"] == "open"  # the database alone does not know yet

    fresh = {o["txid"]: o for o in tg("orders", "--url", sandbox.url, "--db", db)}
    assert fresh[stop["txid"]]["status"] == "canceled"  # shown as the exchange has it now
    [position] = tg("positions", "--url", sandbox.url, "--db", db)
    assert position["status"] == "open"
    assert open_stops(sandbox.url) == []  # listing only read: no stop was placed
    assert {o["txid"]: o for o in tg("orders", "--db", db)}[stop["txid"]]["status"] == "open"  # nor written

    outcome = tg("reconcile", "--url", sandbox.url, "--db", db)  # the command that repairs
    assert any("placed stop_loss" in change for change in outcome["changes"])
    [placed] = open_stops(sandbox.url)
    assert placed["vol"] == position["size"]


def test_listings_refuse_a_remote_url_without_live(tmp_path: Path) -> None:
    for command in ("positions", "orders"):
        code, _, err = tg_cli(command, "--url", "https://api.kraken.com", "--db", str(tmp_path / "x.db"))
        assert code == 2 and "--live" in err


@pytest.mark.parametrize("fault", ["stop-fail", "partial-fill", "crash", "db-fail"])
def test_simulate_drives_a_served_sandbox(sandbox: SandboxServer, tmp_path: Path, fault: str) -> None:
    summary = tg("simulate", "--url", sandbox.url, "--fault", fault, "--runs", "2", "--db", str(tmp_path / "tg.db"))
    assert summary["ok"] is True
    assert summary["injected"].get(fault, 0) >= 2
    assert sum(summary["outcomes"].values()) == 2


def test_simulate_refuses_a_remote_url(tmp_path: Path) -> None:
    code, _, err = tg_cli("simulate", "--url", "https://api.kraken.com", "--db", str(tmp_path / "x.db"), env=ENV)
    assert code == 2 and "only drives a sandbox served on this machine" in err

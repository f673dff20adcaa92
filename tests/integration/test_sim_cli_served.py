"""`tg sim ... --url` on a served sandbox: what a CI job does between runs of a bot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from simulator.testing import ServedSandbox, served_sandbox

pytestmark = pytest.mark.integration

runner = CliRunner()
TOKEN = "a-control-token-of-some-length"


@pytest.fixture
def served() -> Iterator[ServedSandbox]:
    with served_sandbox(control_token=TOKEN) as sandbox:
        yield sandbox


def tg(served: ServedSandbox, *args: str) -> Any:
    return runner.invoke(app, ["sim", *args, "--url", served.url, "--control-token", TOKEN])


def tg_json(served: ServedSandbox, *args: str) -> Any:
    result = tg(served, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_faults_are_added_listed_removed_logged_and_cleared(served: ServedSandbox) -> None:
    assert tg_json(served, "fault", "add", "busy:endpoint=Time", "latency:seconds=1") == {"added": [0, 1]}
    assert [r["fault"] for r in tg_json(served, "fault", "list")["rules"]] == ["busy", "latency"]
    assert tg(served, "fault", "list").stdout == "#0 busy:endpoint=Time,times=1\n#1 latency:seconds=1\n"

    import httpx

    assert httpx.get(f"{served.url}/0/public/Time").json()["error"] == ["EService:Busy"]
    assert httpx.get(f"{served.url}/0/public/Time").json()["error"] == []  # 1 s later on the frozen clock
    log = tg_json(served, "fault", "log")["log"]
    assert [(e["fault"], e["rule"], e["outcome"]) for e in log] == [
        ("busy", 0, "EService:Busy"),
        ("latency", 1, "ok"),
    ]
    assert "#0 busy on Time: refused with EService:Busy -> EService:Busy" in tg(served, "fault", "log").stdout
    assert [r["id"] for r in tg_json(served, "fault", "remove", "0")["rules"]] == [1]
    assert tg_json(served, "fault", "clear") == {"rules": []}
    assert len(tg_json(served, "fault", "log")["log"]) == 2


def test_the_served_sandbox_is_found_through_tg_sim_url_without_url(served: ServedSandbox) -> None:
    """A bot's CI job names its sandbox once, in the environment."""
    env = {"TG_SIM_URL": served.url, "TG_SANDBOX_TOKEN": TOKEN}
    added = runner.invoke(app, ["sim", "fault", "add", "busy:endpoint=Time", "--json"], env=env)
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["sim", "fault", "list"], env=env)
    assert listed.stdout == "#0 busy:endpoint=Time,times=1\n"


def test_status_advance_reset_price_fill_balances_and_clock(served: ServedSandbox) -> None:
    start = tg_json(served, "status")
    assert start["frozen"] and start["balances"]["USD"] == "100000.0000"

    tg_json(served, "balances", "USD=5000", "BTC=1")
    tg_json(served, "price", "jump", "--pair", "BTC/USD", "--pct", "-10")
    fallen = tg_json(served, "status")
    assert float(fallen["prices"]["BTC/USD"]["last"]) == pytest.approx(
        float(start["prices"]["BTC/USD"]["last"]) * 0.9, abs=0.1
    )
    assert fallen["balances"]["BTC"] == "1.0000000000"

    advanced = tg_json(served, "advance", "2h")
    assert advanced["to"] - advanced["from"] == 7_200
    assert tg_json(served, "clock", "release")["frozen"] is False
    assert tg_json(served, "clock", "freeze")["frozen"] is True
    reset = tg_json(served, "reset")
    assert reset["accounts"]["default"]["balances"]["ZUSD"] == "100000.0000"
    assert [shape["shape"] for shape in reset["shapes"]] == ["jump"]  # the market went through it


def test_a_resting_order_is_filled_from_the_command_line(served: ServedSandbox) -> None:
    import krakenex

    kraken = krakenex.API(served.key, served.secret)
    kraken.uri = served.url
    placed = kraken.query_private(
        "AddOrder", {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "30000"}
    )
    [txid] = placed["result"]["txid"]

    assert tg_json(served, "fill", txid, "--volume", "0.005")["status"] == "open"
    assert "closed, filled 0.01000000 of 0.01000000" in tg(served, "fill", txid).stdout
    advanced = tg_json(served, "advance", "1m")
    assert advanced["changed"] == {} and advanced["still_open"] == 0


def test_a_scenario_is_loaded_into_a_served_sandbox(served: ServedSandbox, tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('[[event]]\nat = "1m"\nfor = "1m"\nfault = "unavailable"\n')
    loaded = tg_json(served, "scenario", str(scenario))
    assert loaded["added"] == [0] and loaded["rules"][0]["times"] is None

    scenario.write_text('[[event]]\nat = "1m"\nfault = "meteor"\n')
    refused = tg(served, "scenario", str(scenario))
    assert refused.exit_code == 2 and "unknown fault 'meteor'" in refused.stderr


def test_bad_input_and_a_missing_token_are_one_line_each(served: ServedSandbox) -> None:
    no_token = runner.invoke(app, ["sim", "fault", "list", "--url", served.url], env={"TG_SANDBOX_TOKEN": ""})
    assert no_token.exit_code == 2
    last_line = no_token.stderr.splitlines()[-1]  # the served sandbox, in this process, logs its refusal first
    assert last_line.startswith("error: the sandbox refused faults: EGeneral:Permission denied")
    assert "TG_SANDBOX_TOKEN" in no_token.stderr

    bad = tg(served, "fault", "add", "meteor")
    assert bad.exit_code == 2 and "unknown fault 'meteor'" in bad.stderr
    unknown = tg(served, "fault", "remove", "7")
    assert unknown.exit_code == 2 and "Invalid arguments:id" in unknown.stderr
    nobody = runner.invoke(app, ["sim", "status", "--url", "http://127.0.0.1:9"])
    assert nobody.exit_code == 4 and "is `tg sim serve` running there?" in nobody.stderr
    assert nobody.stderr.startswith("error: no answer from http://127.0.0.1:"), nobody.stderr  # not "refused"
    assert "Traceback" not in bad.output + unknown.output + nobody.output


def test_serve_refuses_a_bad_scenario_before_listening(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text('[[event]]\nat = "1m"\nprice = { shape = "jump" }\n')
    refused = runner.invoke(app, ["sim", "serve", "--port", "0", "--scenario", str(scenario)])
    assert refused.exit_code == 2
    assert refused.stderr == f"error: {scenario}: event.1.price: jump needs pct, the move in percent (e.g. -8)\n"
    missing = runner.invoke(app, ["sim", "serve", "--port", "0", "--scenario", str(tmp_path / "none.toml")])
    assert missing.exit_code == 2 and "cannot read the scenario" in missing.stderr

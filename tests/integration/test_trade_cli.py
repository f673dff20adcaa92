"""`tg trade` end to end through Typer's runner: the embedded sandbox over its wire,
SQLite, and the CLI, checked against the rows it stored."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.domain.enums import OrderRole, PositionStatus
from core.storage.store import Store
from simulator.embedded import EmbeddedExchange

pytestmark = pytest.mark.integration

runner = CliRunner()


def trade(db: Path, *args: str) -> dict:
    result = runner.invoke(app, ["trade", *args, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_trade_json_matches_stored_rows(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    summary = trade(db, "BTC/USDT", "--side", "buy")

    assert summary["symbol"] == "BTC/USDT"
    assert summary["approved"] is True
    assert summary["success"] is True
    assert summary["db_path"] == str(db)
    roles = {o["role"]: o for o in summary["orders"]}
    assert set(roles) == {"entry", "stop_loss", "take_profit"}
    entry = roles["entry"]
    filled = Decimal(entry["filled_volume"])
    assert filled > 0
    assert Decimal(roles["stop_loss"]["volume"]) == filled
    assert Decimal(roles["take_profit"]["volume"]) == filled

    with Store.open(db) as store:
        run = store.get_run(summary["run_id"])
        assert run is not None and run.summary == summary
        orders = {o.role: o for o in store.orders(run_id=summary["run_id"])}
        assert orders[OrderRole.ENTRY].external_id == entry["txid"]
        assert orders[OrderRole.ENTRY].filled_volume == filled
        [position] = store.positions(run_id=summary["run_id"])
        assert position.status is PositionStatus.OPEN
        assert position.id == summary["position"]["id"]
        assert position.size == filled
        assert position.stop_loss == Decimal(summary["position"]["stop_loss"])
        assert position.take_profit == Decimal(summary["position"]["take_profit"])
        for role in (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT):
            assert orders[role].position_id == position.id
            assert orders[role].volume == position.size
            assert orders[role].external_id == roles[role.value]["txid"]


def test_agent_cycle_stores_votes_and_outputs(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    summary = trade(db, "BTC/USDT")

    assert summary["action"] in {"BUY", "SELL", "HOLD"}
    assert len(summary["votes"]) == 6
    with Store.open(db) as store:
        assert len(store.votes(summary["run_id"])) == 6
        agents = {o["agent"] for o in store.agent_outputs(summary["run_id"])}
        assert {"technical_analysis", "regime_detection"} <= agents


def test_sandbox_state_survives_between_commands(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    first = trade(db, "BTC/USDT", "--side", "buy")
    second = trade(db, "BTC/USDT", "--side", "buy")
    txids = {o["txid"] for o in first["orders"]} | {o["txid"] for o in second["orders"]}
    assert len(txids) == 6  # the second run saw the first run's exchange, ids never repeat
    with Store.open(db) as store:
        assert len(store.positions(status=PositionStatus.OPEN)) == 2


def test_an_entry_the_quote_balance_caps_is_one_the_exchange_accepts(tmp_path: Path) -> None:
    """The account's quote is what binds: sized at the snapshot price, the buy would
    fill at the ask plus impact and pay the taker fee, and the exchange would refuse it."""
    db = tmp_path / "tg.db"
    with EmbeddedExchange.open(tmp_path / "tg.sandbox.db") as sandbox:
        sandbox.reset(balances={"USDT": Decimal(5000), "XXBT": Decimal(10)})
        sandbox.save()
    summary = trade(db, "BTC/USDT", "--side", "buy")
    assert any(r.startswith("available_quote: 5000") for r in summary["risk"]["reasons"])
    assert summary["status"] == "FILLED", summary["error_message"]
    entry = next(o for o in summary["orders"] if o["role"] == "entry")
    assert Decimal(entry["filled_volume"]) * Decimal(entry["avg_fill_price"]) < Decimal(5000)


def test_a_failed_trade_says_why(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    with EmbeddedExchange.open(tmp_path / "tg.sandbox.db") as sandbox:
        sandbox.reset(balances={"USDT": Decimal(5000), "XXBT": Decimal(10)})
        sandbox.save()
    config = tmp_path / "tg.toml"
    config.write_text("[risk]\nentry_slippage_pct = 0\n")
    result = runner.invoke(app, ["trade", "BTC/USDT", "--side", "buy", "--db", str(db), "--config", str(config)])
    assert result.exit_code == 1
    assert "error: entry order not placed: Kraken answered EOrder:Insufficient funds" in " ".join(result.stdout.split())


def test_runs_and_show(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    summary = trade(db, "BTC/USDT", "--side", "buy")
    listed = runner.invoke(app, ["runs", "--db", str(db), "--json"])
    assert listed.exit_code == 0
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [summary["run_id"]]
    shown = runner.invoke(app, ["show", summary["run_id"][:6], "--db", str(db), "--json"])
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == summary
    human = runner.invoke(app, ["show", summary["run_id"], "--db", str(db)])
    assert human.exit_code == 0
    assert summary["orders"][0]["txid"] in human.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trade", "ZZZ/USD"], "unknown symbol"),
        (["trade", "BTC/USDT", "--side", "buy", "--volume", "lots"], "--volume must be a number"),
        (["trade", "BTC/USDT", "--volume", "1"], "--volume needs --side"),
        (["show", "R-nope"], "no run"),
        (["trade", "BTC/USDT", "--url", "https://api.kraken.com"], "--live"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--db", str(tmp_path / "tg.db")])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreadable_config_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "tg.toml"
    config.write_text("[risk\nbroken")
    result = runner.invoke(app, ["trade", "BTC/USDT", "--db", str(tmp_path / "tg.db"), "--config", str(config)])
    assert result.exit_code == 2
    assert "not valid TOML" in result.stderr


def test_sim_reset_refuses_to_strand_open_positions(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    before = trade(db, "BTC/USDT", "--side", "buy")
    refused = runner.invoke(app, ["sim", "reset", "--db", str(db)])
    assert refused.exit_code == 1
    assert before["position"]["id"] in refused.stderr and "--force" in refused.stderr
    assert trade(db, "BTC/USDT", "--side", "buy")["status"] == "FILLED"  # nothing was reset


def test_sim_reset_forced_closes_the_records_and_never_reuses_an_id(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    before = trade(db, "BTC/USDT", "--side", "buy")
    reset = runner.invoke(app, ["sim", "reset", "--force", "--db", str(db)])
    assert reset.exit_code == 0, reset.output
    assert "closed on the record" in reset.stdout and before["position"]["id"] in reset.stdout
    after = trade(db, "BTC/USDT", "--side", "buy")
    assert {o["txid"] for o in after["orders"]}.isdisjoint({o["txid"] for o in before["orders"]})
    with Store.open(db) as store:
        [closed, opened] = store.positions()
        assert closed.status is PositionStatus.CLOSED and opened.status is PositionStatus.OPEN
        assert after["position"]["id"] == opened.id
        assert "abandoned" in store.alerts()[-1]["message"]
    listed = runner.invoke(app, ["positions", "--db", str(db), "--json"])
    assert [p["id"] for p in json.loads(listed.stdout) if p["status"] == "open"] == [opened.id]


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("tg ")

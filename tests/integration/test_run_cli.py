"""`tg run`: continuous trading on the coordinator's schedule, on simulated time, with the
invariants checked after every cycle; stopped by its end or by a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.domain.enums import PositionStatus
from core.storage.store import Store
from tests.integration.tg_processes import tg_command

pytestmark = pytest.mark.integration

runner = CliRunner()


def tg_run(db: Path, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["run", *args, "--db", str(db), "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_two_days_of_two_symbols_on_simulated_time(tmp_path: Path) -> None:
    code, summary = tg_run(tmp_path / "tg.db", "--symbols", "BTC/USDT,ETH/USD", "--every", "1h", "--for", "2d")

    assert code == 0, summary
    assert summary["ok"] and summary["simulated"] and summary["stopped_by"] == "end"
    assert summary["duration_s"] >= 2 * 86_400
    assert summary["cycles"] == 2 * 48  # a decision per symbol per hour
    assert summary["checks"] >= 48 and all(v == 0 for v in summary["invariants"].values())
    with Store.open(tmp_path / "tg.db") as store:
        [run] = [r for r in store.list_runs() if r.kind == "run"]
        assert run.status == "ok" and run.summary["cycles"] == 96
        for position in store.positions(status=PositionStatus.OPEN):
            assert any(o.status.is_live for o in store.orders(position_id=position.id) if o.role.value == "stop_loss")


def test_a_pair_named_twice_is_traded_as_one(tmp_path: Path) -> None:
    code, summary = tg_run(tmp_path / "tg.db", "--symbols", "BTC/USDT,btc/usdt,BTC/USDT", "--for", "2h")

    assert code == 0, summary
    assert summary["symbols"] == ["BTC/USDT"]
    assert summary["cycles"] == 3  # a decision an hour, for one pair


def test_days_of_random_faults_hold_every_invariant(tmp_path: Path) -> None:
    """The soak in small: the closing note's figure is `--for 30d` over three symbols."""
    code, summary = tg_run(
        tmp_path / "tg.db", "--symbols", "BTC/USDT,XRP/USDT", "--for", "3d", "--fault", "random", "--seed", "5"
    )
    assert code == 0, summary["invariants"]
    assert summary["ok"] and sum(summary["injected"].values()) > 10
    assert len(summary["injected"]) >= 4  # a mix of faults, not one over and over


def test_failures_degrade_the_run_and_it_recovers_when_they_stop(tmp_path: Path) -> None:
    """Snapshots refused for a while: decisions fail, the coordinator steps down, and
    once the exchange answers again it steps back up to normal."""
    code, summary = tg_run(
        tmp_path / "tg.db",
        "--symbols",
        "BTC/USDT",
        "--for",
        "2d",
        "--fault",
        "unavailable:endpoint=OHLC,times=40",
    )
    assert code == 0, summary
    steps = [a for a in summary["alerts"] if a.startswith("degradation")]
    assert "degradation normal -> reduced" in steps and summary["degradation"] == "normal"
    assert summary["injected"]["unavailable"] == 40


def test_bad_options_are_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in (["--every", "soon"], ["--symbols", ","], ["--symbols", "FOO/BAR", "--for", "1h"]):
        result = runner.invoke(app, ["run", *args, "--db", str(tmp_path / "tg.db")])
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_it_gracefully_with_the_summary(tmp_path: Path, signum: int, code: int) -> None:
    db = tmp_path / "tg.db"
    process = subprocess.Popen(
        tg_command("run", "--symbols", "BTC/USDT", "--for", "3650d", "--db", str(db), "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TG_DATA_DIR": str(tmp_path / "data")},
    )
    assert process.stderr is not None
    started = process.stderr.readline()  # the run says when it is under way
    assert "started" in started, started
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)

    assert process.returncode == code, err
    summary = json.loads(out)
    assert summary["stopped_by"] == signal.Signals(signum).name
    assert summary["ok"] and summary["cycles"] >= 1
    with Store.open(db) as store:
        for position in store.positions(status=PositionStatus.OPEN):  # never left without its stop
            assert any(o.status.is_live for o in store.orders(position_id=position.id) if o.role.value == "stop_loss")

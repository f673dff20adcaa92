"""Long work is never wasted: `simulate`, `replay` and `run` are runs of tg's database
from before their work starts, record what they finish as they go, and an interruption
keeps it (as interrupted); `tg show` shows every kind of run, ended or not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.replay import replay_sandbox, replays_folder
from cli.wiring import fault_catalog, simulation_sandbox
from core.domain.config import load_settings
from core.flows.campaign import recorded_run
from core.flows.candles import load_candles
from core.flows.replay import Replay, ReplayOptions
from core.flows.simulation import RunResult, Simulation
from core.storage.store import RunRecord, Store
from tests.integration.test_replay_cli import candle_file
from tests.integration.tg_cli import tg

pytestmark = pytest.mark.integration


def only_record(db: Path) -> RunRecord:
    """The database's one run, as `tg show` reads it."""
    with Store.open(db) as store:
        [listed] = store.list_runs()
        record = recorded_run(store, listed.run_id)
    assert record is not None
    return record


def only_run(db: Path) -> dict:
    record = only_record(db)
    return {"run_id": record.run_id, "kind": record.kind, "status": record.status, **record.summary}


async def test_an_interrupted_simulation_keeps_the_runs_it_finished(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "tg.db")
    simulation = Simulation(settings, simulation_sandbox(settings), tmp_path / "work", catalog=fault_catalog())
    finished: list[RunResult] = []

    def ctrl_c_after_two(result: RunResult) -> None:
        finished.append(result)
        if len(finished) == 2:
            raise KeyboardInterrupt

    with Store.open(settings.db_path) as store, pytest.raises(KeyboardInterrupt):
        await simulation.run(["busy"], runs=10, seed=3, progress=ctrl_c_after_two, record_in=store)

    run = only_run(settings.db_path)
    assert run["kind"] == "simulate" and run["status"] == "interrupted" and run["interrupted"] is True
    assert [d["seed"] for d in run["details"]] == [3, 4]
    assert [d["run_id"] for d in run["details"]] == [f"{run['run_id']}.0", f"{run['run_id']}.1"]
    assert run["runs"] == 2 and run["ok"] is True
    assert list(run)[-3:] == ["ok", "details", "interrupted"]  # as the report and the interruption wrote them


async def test_each_finished_simulated_run_is_recorded_before_the_next_starts(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "tg.db")
    simulation = Simulation(settings, simulation_sandbox(settings), tmp_path / "work", catalog=fault_catalog())
    seen: list[int] = []

    def look(_result: RunResult) -> None:  # what a kill at this moment would leave
        seen.append(only_run(settings.db_path)["runs"])

    with Store.open(settings.db_path) as store:
        await simulation.run([], runs=3, seed=1, progress=look, record_in=store)
    assert seen == [1, 2, 3]
    assert only_run(settings.db_path)["status"] == "ok"


def test_simulate_with_a_bad_symbol_is_bad_input_and_records_nothing(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    code, _, err = tg("simulate", "--symbol", "FOO/BAR", "--db", str(db))
    assert code == 2
    assert err.count("\n") == 1 and "unknown symbol FOO/BAR" in err
    with Store.open(db) as store:
        assert store.list_runs() == []


def test_simulate_on_an_unwritable_database_stops_before_any_work(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    code, out, err = tg("simulate", "--runs", "50", "--db", str(not_a_folder / "tg.db"))
    assert code == 4, err
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1


async def test_an_interrupted_replay_is_listed_with_its_progress(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    settings = load_settings(db=db)
    series = load_candles(candle_file(tmp_path / "btc.csv"), interval_minutes=60)
    replay = Replay(settings, replay_sandbox(settings), replays_folder(db), catalog=fault_catalog())

    def progress(done: int, total: int) -> None:
        if done == 100:
            raise KeyboardInterrupt

    with Store.open(db) as store, pytest.raises(KeyboardInterrupt):
        await replay.run(series, ReplayOptions(symbol="BTC/USD", every=4), progress, record_in=store)

    run = only_run(db)
    assert run["kind"] == "replay" and run["status"] == "interrupted"
    assert run["progress"] == {"candles": 100, "of": 240}
    assert run["decisions"] == 25 and Path(run["db_path"]).exists()
    code, out, _ = tg("show", run["run_id"], "--db", str(db))
    assert code == 0 and "is interrupted" in out and '"candles": 100' in out


@pytest.mark.parametrize(
    ("command", "kind", "shown"),
    [
        (["trade", "BTC/USDT", "--side", "buy"], "trade", "position"),
        (["simulate", "--runs", "2", "--workers", "1"], "simulate", "every invariant held"),
        (["run", "--for", "6h"], "run", "h of simulated time"),
    ],
)
def test_show_shows_every_kind_of_run(tmp_path: Path, command: list[str], kind: str, shown: str) -> None:
    db = tmp_path / "tg.db"
    code, _, err = tg(*command, "--db", str(db))
    assert code == 0, err
    run = only_run(db)
    assert run["kind"] == kind
    code, out, err = tg("show", run["run_id"][:6], "--db", str(db))
    assert code == 0, err
    assert shown in out
    code, out, _ = tg("show", run["run_id"], "--db", str(db), "--json")
    assert json.loads(out) == only_record(db).summary  # what the command's --json printed

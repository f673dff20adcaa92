"""How `tg simulate` keeps its campaign in tg's database: each finished run's result a
row of its own with the campaign's totals (a cost that does not grow with the runs
before), read back by `tg show` and `tg campaign` as the command printed it, and kept
by a process SIGKILLed mid-campaign."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from core.domain.errors import DatabaseWriteError
from core.execution.invariants import InvariantReport
from core.flows.campaign import KIND, recorded_run
from core.flows.journal import RUN_DIED, RunJournal
from core.flows.simulation import RunResult, SimulationReport, take_in
from core.storage.store import RUN_STARTED, Store
from tests.integration.tg_cli import tg

pytestmark = pytest.mark.integration


def run_result(index: int, status: str, *, broken: bool = False, faults: tuple[str, ...] = ("busy",)) -> RunResult:
    invariants = InvariantReport()
    if broken:
        invariants.add("protected", "no stop on the exchange")
        invariants.add("protected", "no target either")
    injected = Counter({fault.partition(":")[0]: index + 1 for fault in faults})
    return RunResult(index, 100 + index, list(faults), status, None, injected, invariants)


RESULTS = [
    run_result(0, "FILLED"),
    run_result(1, "CRASHED", faults=("crash:after=3", "busy")),
    run_result(2, "FILLED", broken=True, faults=("vanish:mode=hidden,match=any",)),
    run_result(3, "PARTIAL", faults=()),
]


def test_the_totals_kept_as_runs_come_in_are_what_their_details_add_up_to() -> None:
    report = SimulationReport(run_id="R-1", campaign="C-1")
    for result in RESULTS:
        report.add(result)

    whole = report.to_dict()
    details = whole.pop("details")
    assert whole == report.totals()
    assert [d["run_id"] for d in details] == ["R-1.0", "R-1.1", "R-1.2", "R-1.3"]
    assert whole["runs"] == 4 and whole["ok"] is False
    assert whole["outcomes"] == dict(sorted(Counter(d["status"] for d in details).items()))
    assert whole["faults"] == sorted({f for d in details for f in d["faults"]})
    injected: Counter[str] = Counter()
    for detail in details:
        injected.update(detail["injected"])
    assert whole["injected"] == dict(sorted(injected.items()))
    assert whole["invariants"]["protected"] == 2 and sum(whole["invariants"].values()) == 2


def test_a_run_whose_write_failed_is_kept_by_the_campaigns_end(tmp_path: Path) -> None:
    refuse = {"run_results": 0}

    def guard(table: str) -> None:
        if refuse.get(table):
            refuse[table] -= 1
            raise DatabaseWriteError("disk full")

    with Store.open(tmp_path / "tg.db", write_guard=guard) as store:
        journal = RunJournal.start(store, "R-1", kind=KIND, symbol="BTC/USDT", params={})
        report = SimulationReport(run_id="R-1")
        take_in(report, RESULTS[0], journal)
        refuse["run_results"] = 1  # the disk fills up
        with pytest.raises(DatabaseWriteError), journal.interruptible(report.totals):
            take_in(report, RESULTS[1], journal)

        record = recorded_run(store, "R-1")

    assert record is not None and record.status == "failed"
    assert [d["run"] for d in record.summary["details"]] == [0, 1] and record.summary["runs"] == 2
    assert list(record.summary)[-3:] == ["ok", "details", "error"]  # where the command's report had them


def test_a_campaign_that_finished_nothing_shows_as_it_is(tmp_path: Path) -> None:
    with Store.open(tmp_path / "tg.db") as store:
        RunJournal.start(store, "R-1", kind=KIND, symbol="BTC/USDT", params={})
        record = recorded_run(store, "R-1")
        assert recorded_run(store, "R-none") is None
    assert record is not None and record.summary == {} and record.status == RUN_STARTED


CAMPAIGN = """
import json, multiprocessing, os, signal, sys, asyncio
from pathlib import Path
from cli.wiring import fault_catalog, simulation_sandbox
from core.domain.config import load_settings
from core.flows.simulation import Simulation
from core.storage.store import Store

folder = Path(sys.argv[1])
settings = load_settings(db=folder / "tg.db")
simulation = Simulation(settings, simulation_sandbox(settings), folder / "work", catalog=fault_catalog())
{kill}
with Store.open(settings.db_path) as store:
    asyncio.run(simulation.run(["busy"], runs={runs}, seed=3, progress=kill, record_in=store, workers={workers}))
"""
"""A campaign in the process `python -c` runs, in the folder given as its argument: `kill`
is called with each result once it is recorded."""

KILLED_AFTER_TWO = CAMPAIGN.format(
    runs=5,
    workers=1,
    kill="""
def kill(result):  # called once the run is recorded: the worst moment to be killed
    if result.index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
""",
)


def test_a_sigkilled_campaign_leaves_every_finished_run_recorded(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_TWO, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert not list((tmp_path / "work").glob("run-*"))  # a recorded run's folder is gone: disk stays one run's

    with Store.open(tmp_path / "tg.db") as store:
        [listed] = store.list_runs()
        assert "details" not in listed.summary  # while it runs the record holds the totals alone
        record = recorded_run(store, listed.run_id)
    assert listed.status == RUN_STARTED  # as recorded; its process is gone, which `tg runs` tells
    assert record is not None and record.status == RUN_DIED
    assert record.summary["runs"] == 2 and [d["seed"] for d in record.summary["details"]] == [3, 4]
    code, out, err = tg("show", record.run_id, "--db", str(tmp_path / "tg.db"))
    assert code == 0, err
    out = " ".join(out.split())
    assert "died: its process ended without finishing it; what it had finished:" in out
    assert "every invariant held" in out
    code, out, err = tg("runs", "--json", "--db", str(tmp_path / "tg.db"))
    assert code == 0, err
    assert [(r["run_id"], r["status"]) for r in json.loads(out)] == [(record.run_id, RUN_DIED)]


KILLED_WITH_WORKERS = CAMPAIGN.format(
    runs=12,
    workers=2,
    kill="""
def kill(result):
    workers = [child.pid for child in multiprocessing.active_children()]
    (folder / "workers.json").write_text(json.dumps(workers))
    os.kill(os.getpid(), signal.SIGKILL)
""",
)


def test_the_workers_of_a_sigkilled_campaign_end_with_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WITH_WORKERS, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    workers = json.loads((tmp_path / "workers.json").read_text())
    assert len(workers) == 2
    for pid in workers:
        try:
            exited = os.pidfd_open(pid)
        except ProcessLookupError:  # gone already
            continue
        try:
            ready, _, _ = select.select([exited], [], [], 60)  # the process's exit, not a sleep
        finally:
            os.close(exited)
        assert ready, f"worker {pid} outlived its killed parent"

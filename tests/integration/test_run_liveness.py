"""Which recorded runs are still running: a run's lease names its process, so `tg runs`
tells a run whose process was killed (listed as died) from one still at work. Before,
every killed run was listed as running forever. The SIGKILLed process itself is
tests/integration/test_simulate_records.py's campaign."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.flows.journal import RUN_DIED, RUN_LEASE_TTL_S, RunJournal, as_listed
from core.storage.store import RUN_STARTED, LeaseRecord, Store

pytestmark = pytest.mark.integration


def status_of(store: Store, run_id: str) -> str:
    [record] = as_listed(store, [r for r in store.list_runs() if r.run_id == run_id])
    return record.status


def test_a_run_whose_process_runs_is_running_and_a_finished_one_lets_go(store: Store) -> None:
    journal = RunJournal.start(store, "R-000000000001", kind="run", symbol="BTC/USDT", params={})
    assert status_of(store, journal.run_id) == RUN_STARTED
    lease = store.lease(f"run:{journal.run_id}")
    assert lease is not None and lease.host and lease.expires_at > 0

    journal.finish("ok", {})
    assert status_of(store, journal.run_id) == "ok" and store.lease(f"run:{journal.run_id}") is None


def test_a_run_whose_process_ended_without_finishing_died(store: Store) -> None:
    journal = RunJournal.start(store, "R-000000000002", kind="replay", symbol="BTC/USDT", params={})
    lease = store.lease(f"run:{journal.run_id}")
    assert lease is not None
    gone = LeaseRecord(lease.name, "gone", lease.host, _ended_pid(), lease.expires_at)  # its process, killed
    assert store.claim_lease(gone, replacing=lease.token)

    assert status_of(store, journal.run_id) == RUN_DIED


def test_a_run_of_another_machine_is_running_until_its_lease_runs_out(store: Store) -> None:
    journal = RunJournal.start(store, "R-000000000003", kind="run", symbol="BTC/USDT", params={})
    lease = store.lease(f"run:{journal.run_id}")
    assert lease is not None
    elsewhere = LeaseRecord(lease.name, "far", "another-host", 1, lease.expires_at)
    assert store.claim_lease(elsewhere, replacing=lease.token)
    assert status_of(store, journal.run_id) == RUN_STARTED  # it cannot be asked: its lease says

    silent = LeaseRecord(lease.name, "far2", "another-host", 1, lease.expires_at - 2 * RUN_LEASE_TTL_S)
    assert store.claim_lease(silent, replacing="far")
    assert status_of(store, journal.run_id) == RUN_DIED


def test_a_run_recorded_before_runs_had_leases_stays_as_recorded(store: Store) -> None:
    store.start_run("R-000000000004", kind="run", symbol="BTC/USDT", started_at=1.0, params={})
    assert status_of(store, "R-000000000004") == RUN_STARTED


def _ended_pid() -> int:
    """The pid of a process of this machine that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid

"""A run's results, one row each: recorded with the run's totals, read back by part,
kept when the run's end writes one whose write was cut short, and moved out of the
summaries an older tg wrote them into (schema 3 -> 4), on each backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.domain.errors import DatabaseWriteError
from core.storage.backends import backend_for
from core.storage.schema import RUN_RESULTS, RUNS, SCHEMA_VERSION
from core.storage.store import Store


def result(part: int) -> dict:
    return {"run": part, "seed": 10 + part, "status": "FILLED", "injected": {"busy": 1}, "violations": {}}


def test_results_are_rows_of_their_own_read_back_by_part(store: Store) -> None:
    store.start_run("R-1", kind="simulate", symbol="BTC/USDT", started_at=1.0, params={})
    store.start_run("R-2", kind="simulate", symbol="BTC/USDT", started_at=2.0, params={})
    for part in (4, 0, 2):  # a shard's share: every other run, finishing in any order
        store.record_result("R-1", part, result(part), {"runs": part})
    store.record_result("R-2", 0, result(7), {"runs": 1})

    assert store.run_results("R-1") == [result(0), result(2), result(4)]
    assert store.run_results("R-2") == [result(7)]
    assert store.run_results("R-nothing") == []
    run = store.get_run("R-1")
    assert run is not None and run.summary == {"runs": 2}  # the totals as last recorded, alone


def test_a_result_and_its_totals_are_written_together_or_not_at_all(store: Store) -> None:
    store.start_run("R-1", kind="simulate", symbol=None, started_at=1.0, params={})
    store.record_result("R-1", 0, result(0), {"runs": 1})

    with pytest.raises(DatabaseWriteError, match="could not write result 0 of run R-1 to run_results"):
        store.record_result("R-1", 0, result(0), {"runs": 2})  # part 0 is there already

    run = store.get_run("R-1")
    assert run is not None and run.summary == {"runs": 1}
    assert store.run_results("R-1") == [result(0)]


def test_the_end_of_a_run_keeps_the_results_not_yet_recorded(store: Store) -> None:
    store.start_run("R-1", kind="simulate", symbol=None, started_at=1.0, params={})
    store.record_result("R-1", 0, result(0), {"runs": 1})

    store.finish_run(
        "R-1", status="interrupted", finished_at=2.0, summary={"runs": 2}, results={0: result(0), 1: result(1)}
    )

    assert store.run_results("R-1") == [result(0), result(1)]


def as_schema_3(location: Path | str) -> None:
    """A database as tg wrote it before run_results: the table gone, the version 3."""
    engine = backend_for(location).engine(busy_timeout=1)
    with engine.begin() as conn:
        RUN_RESULTS.drop(conn)
        backend_for(location).set_schema_version(conn, 3)


def test_a_schema_3_database_moves_simulate_results_out_of_their_summaries(location: Path | str) -> None:
    details = [{"run": 0, "seed": 1, "status": "FILLED"}, {"run": 1, "seed": 2, "status": "CRASHED"}]
    with Store.open(location) as store:
        store.start_run("R-sim", kind="simulate", symbol="BTC/USDT", started_at=1.0, params={})
        store.finish_run(
            "R-sim", status="interrupted", finished_at=2.0, summary={"runs": 2, "details": details, "interrupted": True}
        )
        store.start_run("R-none", kind="simulate", symbol="BTC/USDT", started_at=3.0, params={})  # killed at once
        store.start_run("R-trade", kind="trade", symbol="BTC/USDT", started_at=4.0, params={})
        store.finish_run("R-trade", status="FILLED", finished_at=5.0, summary={"details": ["not results"]})
    as_schema_3(location)

    with Store.open(location) as store:
        sim, none, trade = (store.get_run(r) for r in ("R-sim", "R-none", "R-trade"))
        assert sim is not None and sim.summary == {"runs": 2, "interrupted": True}
        assert store.run_results("R-sim") == details
        assert none is not None and none.summary == {} and store.run_results("R-none") == []
        assert trade is not None and trade.summary == {"details": ["not results"]}

    engine = backend_for(location).engine(busy_timeout=1)
    with engine.connect() as conn:
        assert backend_for(location).schema_version(conn) == SCHEMA_VERSION
        stored = conn.execute(sa.select(RUNS.c.summary).where(RUNS.c.run_id == "R-sim")).scalar_one()
    assert "details" not in json.loads(stored)

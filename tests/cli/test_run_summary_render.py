"""`tg run`'s summary as people read it: the assets a check left to another tg's
execution are named, and a run stored before checks left anything out still shows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cli.render import run_summary
from core.flows.run_loop import RunSummary


def summary(unjudged: dict[str, int]) -> RunSummary:
    return RunSummary(
        run_id="R-1",
        symbols=["BTC/USD", "ETH/USD"],
        simulated=False,
        started_at=0.0,
        ended_at=60.0,
        stopped_by="end",
        cycles=3,
        trades=1,
        realized_pnl=Decimal(0),
        open_positions=[],
        alerts=[],
        degradation="normal",
        checks=2,
        invariants={},
        violations=[],
        injected={},
        reconcile_errors=[],
        unjudged=unjudged,
    )


def test_the_assets_left_to_another_execution_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    run_summary(summary({"ETH": 2, "BTC": 1}).to_dict(), as_json=False)
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "left to an execution in flight when checked (this run's or another tg's): BTC (1 check), ETH (2 checks)" in out
    )


def test_a_run_stored_before_shows_without_them(capsys: pytest.CaptureFixture[str]) -> None:
    data = summary({}).to_dict()
    del data["unjudged"]
    run_summary(data, as_json=False)
    out = capsys.readouterr().out
    assert "every one held" in out and "left to an execution" not in out

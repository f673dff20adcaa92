"""How a scheduled task's failure is told: a failure tg knows (its error says what
happened and what to do) in one line, a bug with its traceback. `tg run` printed a
whole traceback each time another tg held a symbol's lease past the wait."""

from __future__ import annotations

import logging

import pytest

from core.decision.coordinator import TaskStatus
from tests.coordinator.conftest import MakeCoordinator
from tests.coordinator.fakes import RecordingVenue


async def test_a_known_failure_is_one_line(
    make_coordinator: MakeCoordinator, venue: RecordingVenue, caplog: pytest.LogCaptureFixture
) -> None:
    venue.failing_snapshots = 1
    with caplog.at_level(logging.WARNING, logger="core.decision.coordinator"):
        result = await make_coordinator()._run_scheduled_task("trading_decision", "BTC/USDT")

    assert result.status is TaskStatus.FAILED
    [record] = [r for r in caplog.records if r.name == "core.decision.coordinator"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "trading_decision for BTC/USDT failed: EService:Unavailable" in record.getMessage()


async def test_a_bug_keeps_its_traceback(
    make_coordinator: MakeCoordinator,
    venue: RecordingVenue,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(symbol: str) -> None:
        raise KeyError("nobody expected this")

    monkeypatch.setattr(venue, "snapshot", broken)
    with caplog.at_level(logging.WARNING, logger="core.decision.coordinator"):
        result = await make_coordinator()._run_scheduled_task("trading_decision", "BTC/USDT")

    assert result.status is TaskStatus.FAILED and "KeyError" in result.note
    [record] = [r for r in caplog.records if r.name == "core.decision.coordinator"]
    assert record.levelno == logging.ERROR and record.exc_info is not None

"""Degradation: failures in a row step the coordinator down (reduced size, no new
entries, halted) and successes in a row step it back up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.decision.bus import MessageTopic
from core.decision.coordinator import DegradationLevel, TaskName, TaskStatus
from core.domain.errors import ServiceUnavailableError
from tests.coordinator.conftest import MakeCoordinator
from tests.coordinator.fakes import RecordingVenue, traders

DOWN = [DegradationLevel.REDUCED, DegradationLevel.CONSERVATIVE, DegradationLevel.HALTED]


async def test_consecutive_failures_step_down_to_halted_and_successes_step_back_up(
    make_coordinator: MakeCoordinator, venue: RecordingVenue
) -> None:
    coordinator = make_coordinator()
    venue.failing_snapshots = 9
    levels = []
    for _ in range(9):
        result = await coordinator._run_scheduled_task("trading_decision", "BTC/USDT")
        assert result.status is TaskStatus.FAILED and "ServiceUnavailableError" in result.note
        levels.append(coordinator.degradation_level)
    assert levels[2::3] == DOWN and levels[:2] == [DegradationLevel.NORMAL] * 2

    halted = await coordinator._run_scheduled_task("trading_decision", "BTC/USDT")
    assert halted.status is TaskStatus.SKIPPED and "halted" in halted.note
    assert venue.snapshots.count("BTC/USDT") == 9  # a halted coordinator does not even look

    for _ in range(9):  # analysis keeps running while halted, and its successes bring trading back
        assert (await coordinator._run_scheduled_task("technical_analysis", "BTC/USDT")).status is TaskStatus.COMPLETED
    assert coordinator.degradation_level is DegradationLevel.NORMAL

    events = [
        (m.payload["from"], m.payload["to"])
        for m in await coordinator.message_bus.get_history(MessageTopic.SYSTEM_EVENTS)
    ]
    assert events == [
        ("normal", "reduced"),
        ("reduced", "conservative"),
        ("conservative", "halted"),
        ("halted", "conservative"),
        ("conservative", "reduced"),
        ("reduced", "normal"),
    ]


async def test_a_success_resets_the_failure_count(make_coordinator: MakeCoordinator, venue: RecordingVenue) -> None:
    coordinator = make_coordinator()
    for _ in range(3):
        venue.failing_snapshots = 2
        for _ in range(2):
            await coordinator._run_scheduled_task("technical_analysis", "BTC/USDT")
        await coordinator._run_scheduled_task("technical_analysis", "BTC/USDT")
    assert coordinator.degradation_level is DegradationLevel.NORMAL


async def test_reduced_trades_at_the_reduced_size(make_coordinator: MakeCoordinator, venue: RecordingVenue) -> None:
    normal = await make_coordinator().run_cycle("ETH/USD")
    coordinator = make_coordinator(config={"degradation": {"failures_per_step": 1, "reduced_size_factor": "0.4"}})
    venue.failing_snapshots = 1
    await coordinator._run_scheduled_task("technical_analysis", "ETH/USD")
    assert coordinator.degradation_level is DegradationLevel.REDUCED

    reduced = await coordinator.run_cycle("ETH/USD")
    assert reduced.level is DegradationLevel.REDUCED
    assert normal.verdict is not None and reduced.verdict is not None
    assert normal.verdict.proposal.volume is not None
    assert reduced.verdict.proposal.volume == normal.verdict.proposal.volume * Decimal("0.4")
    assert any("degradation level reduced sizes at 0.4x" in r for r in reduced.verdict.reasons)
    assert venue.executed[-1][0].volume == reduced.verdict.proposal.volume


async def test_conservative_makes_no_new_entries(make_coordinator: MakeCoordinator, venue: RecordingVenue) -> None:
    coordinator = make_coordinator(config={"degradation": {"failures_per_step": 1}})
    venue.failing_snapshots = 2
    for _ in range(2):
        await coordinator._run_scheduled_task("regime_detection", "BTC/USDT")
    assert coordinator.degradation_level is DegradationLevel.CONSERVATIVE

    result = await coordinator.run_cycle("BTC/USDT")
    assert result.decision is not None and result.proposal is not None  # it still decides...
    assert result.stopped_by == "conservative" and result.verdict is None  # ...but sends nothing
    assert venue.executed == []


async def test_a_vote_without_quorum_counts_as_a_failure(make_coordinator: MakeCoordinator) -> None:
    broken = traders(*[RuntimeError("provider down")] * 6)
    coordinator = make_coordinator(votes=broken, config={"degradation": {"failures_per_step": 2}})
    first = await coordinator.run_cycle("BTC/USDT")
    assert first.status is TaskStatus.COMPLETED and "only 0 valid votes, quorum is 4" in first.note
    await coordinator.run_cycle("BTC/USDT")
    assert coordinator.degradation_level is DegradationLevel.REDUCED


async def test_a_failed_execution_counts_as_a_failure(
    make_coordinator: MakeCoordinator, venue: RecordingVenue, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*_: object) -> object:
        raise ServiceUnavailableError("EService:Unavailable")

    monkeypatch.setattr(venue, "execute", refuse)
    coordinator = make_coordinator(config={"degradation": {"failures_per_step": 1}})
    with pytest.raises(ServiceUnavailableError):
        await coordinator.run_cycle("BTC/USDT")  # called directly, the failure is raised...
    assert coordinator.degradation_level is DegradationLevel.REDUCED  # ...and counted


async def test_an_unknown_task_name_is_refused(make_coordinator: MakeCoordinator) -> None:
    with pytest.raises(ValueError, match="portfolio_rebalance"):
        await make_coordinator()._run_scheduled_task("portfolio_rebalance", "BTC/USDT")
    assert [t.value for t in TaskName] == ["technical_analysis", "regime_detection", "trading_decision"]

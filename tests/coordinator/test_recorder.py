"""The recorder is a bus subscriber: it stores what the coordinator publishes, and when
it fails, trading goes on and the coordinator degrades, then recovers."""

from __future__ import annotations

from pathlib import Path

from core.decision.coordinator import DegradationLevel, TaskStatus
from core.domain.errors import DatabaseWriteError
from core.storage.store import Store
from tests.coordinator.conftest import MakeCoordinator
from tests.coordinator.fakes import RecordingVenue


async def test_a_trading_decision_is_recorded_through_the_bus(make_coordinator: MakeCoordinator, store: Store) -> None:
    coordinator = make_coordinator()
    result = await coordinator.run_cycle("BTC/USDT", correlation_id="R-1")
    assert result.execution is not None
    await coordinator.message_bus.drain()

    assert [o["agent"] for o in store.agent_outputs("R-1")] == ["technical_analysis", "regime_detection", "risk"]
    assert len(store.votes("R-1")) == 6
    assert "recorder" in coordinator.message_bus.stats()


async def test_a_failing_recorder_degrades_trading_but_never_stops_it(
    make_coordinator: MakeCoordinator, venue: RecordingVenue, tmp_path: Path
) -> None:
    broken = {"on": True}

    def disk(table: str) -> None:
        if broken["on"] and table in ("agent_outputs", "model_votes"):
            raise DatabaseWriteError(f"injected: {table} refused")

    with Store.open(tmp_path / "failing.db", write_guard=disk) as failing:
        coordinator = make_coordinator(store=failing, config={"degradation": {"failures_per_step": 2}})
        levels = []
        for _ in range(4):
            result = await coordinator.run_cycle("BTC/USDT")
            await coordinator.message_bus.drain()
            levels.append(coordinator.degradation_level)
            assert result.status is TaskStatus.COMPLETED
        assert len(venue.executed) >= 2  # the first decisions traded while the recorder failed
        assert levels[1] is DegradationLevel.REDUCED and levels[-1] is DegradationLevel.CONSERVATIVE

        broken["on"] = False  # the disk is fixed: trading comes back (a failure shows at the next task's end)
        for _ in range(8):
            await coordinator.run_cycle("BTC/USDT")
            await coordinator.message_bus.drain()
        assert coordinator.degradation_level is DegradationLevel.NORMAL

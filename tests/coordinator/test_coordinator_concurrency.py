"""Orchestration under concurrency (Critical Risk #2): scheduled tasks on one symbol at
once without deadlock and with ordered messages, no double trading, many symbols in
parallel, time limits, and the schedule itself. Event-loop time is virtual (looptime):
model latencies are real sleeps that cost nothing, and a deadlock hits its timeout."""

from __future__ import annotations

import asyncio

import pytest

from core.decision.bus import MessageTopic
from core.decision.coordinator import TaskName, TaskStatus
from core.domain.enums import Side
from core.domain.errors import TaskTimeoutError
from tests.coordinator.conftest import MakeCoordinator
from tests.coordinator.fakes import (
    BULL,
    PIPELINE,
    TA_LONG,
    RecordingVenue,
    ScriptedModel,
    assert_messages_properly_ordered,
    traders,
    vote,
)
from tests.virtual_time import elapse

pytestmark = pytest.mark.looptime


def slow_models(delay: float) -> dict[str, object]:
    return {
        "ta": ScriptedModel("ta", TA_LONG, delay=delay),
        "regime": ScriptedModel("regime", BULL, delay=delay),
        "votes": traders(*[vote("BUY")] * 6, delay=delay),
    }


async def test_concurrent_agent_execution_same_symbol(make_coordinator: MakeCoordinator, venue: RecordingVenue) -> None:
    coordinator = make_coordinator(**slow_models(1.0))  # type: ignore[arg-type]
    await coordinator.start()

    tasks = [
        coordinator._run_scheduled_task("technical_analysis", "BTC/USDT"),
        coordinator._run_scheduled_task("regime_detection", "BTC/USDT"),
        coordinator._run_scheduled_task("trading_decision", "BTC/USDT"),
    ]
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=10.0)

    assert len(results) == 3
    assert all(r is not None and r.status is TaskStatus.COMPLETED for r in results)
    ta_task, regime_task, decision_task = results
    assert ta_task.ta is not None and ta_task.regime is None
    assert regime_task.regime is not None and regime_task.decision is None
    assert decision_task.execution is not None and decision_task.execution.success
    assert len(venue.executed) == 1

    messages = await coordinator._message_bus.get_history()
    topics = assert_messages_properly_ordered(messages)
    assert topics[ta_task.correlation_id] == list(PIPELINE[:2])
    assert topics[regime_task.correlation_id] == list(PIPELINE[:3])
    assert topics[decision_task.correlation_id] == list(PIPELINE)


async def test_a_second_trade_decision_for_a_symbol_is_skipped_not_doubled(
    make_coordinator: MakeCoordinator, venue: RecordingVenue
) -> None:
    venue.execute_delay = 5.0  # the first decision is still executing when the others arrive
    coordinator = make_coordinator(**slow_models(1.0))  # type: ignore[arg-type]

    first, second, third = await asyncio.wait_for(
        asyncio.gather(
            coordinator._run_scheduled_task("trading_decision", "BTC/USDT"),
            coordinator._run_scheduled_task("trading_decision", "BTC/USDT"),
            coordinator.run_cycle("BTC/USDT"),
        ),
        timeout=60,
    )

    assert first.status is TaskStatus.COMPLETED and first.execution is not None
    for skipped in (second, third):
        assert skipped.status is TaskStatus.SKIPPED
        assert "already running" in skipped.note and skipped.execution is None
    assert len(venue.executed) == 1 and venue.most_executions_at_once == {"BTC/USDT": 1}
    assert venue.snapshots == ["BTC/USDT"]  # the skipped ones did not even look at the market

    again = await coordinator.run_cycle("BTC/USDT")  # once it is done, the symbol is free again
    assert again.status is TaskStatus.COMPLETED and len(venue.executed) == 2


async def test_twelve_symbols_decide_concurrently(make_coordinator: MakeCoordinator, venue: RecordingVenue) -> None:
    symbols = [f"C{i:02d}/USD" for i in range(12)]
    coordinator = make_coordinator(**slow_models(2.0))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()

    started = loop.time()
    results = await asyncio.wait_for(coordinator.run_all(symbols), timeout=30)
    elapsed = loop.time() - started

    # each cycle waits 2 s for TA, 2 s for regime and 2 s for the six votes (in parallel):
    # one cycle's 6 s for all twelve, where one after the other would take 72 s
    assert elapsed == pytest.approx(6.0, abs=0.01)
    assert [r.status for r in results] == [TaskStatus.COMPLETED] * 12
    assert sorted(p.symbol for p, _ in venue.executed) == symbols
    assert all(p.side is Side.BUY for p, _ in venue.executed)
    assert len({cid for _, cid in venue.executed}) == 12
    assert_messages_properly_ordered(await coordinator.message_bus.get_history())


async def test_a_hung_model_hits_the_task_time_limit_instead_of_deadlocking(
    make_coordinator: MakeCoordinator, venue: RecordingVenue
) -> None:
    coordinator = make_coordinator(
        ta=ScriptedModel("ta", TA_LONG, delay=10_000),
        model_timeout_s=100_000,  # the agents would wait: the coordinator's limit must end it
        config={"timeouts_s": {"technical_analysis": 5, "regime_detection": 5, "trading_decision": 20}},
    )
    loop = asyncio.get_running_loop()
    started = loop.time()

    scheduled = await asyncio.wait_for(coordinator._run_scheduled_task("trading_decision", "BTC/USDT"), 60)
    assert scheduled.status is TaskStatus.TIMED_OUT
    assert "longer than its 20s limit" in scheduled.note
    assert loop.time() - started == pytest.approx(20, abs=0.01)
    with pytest.raises(TaskTimeoutError, match="trading_decision for BTC/USDT took longer than its 20s limit"):
        await asyncio.wait_for(coordinator.run_cycle("BTC/USDT"), 60)  # called directly, it raises
    analysis = await asyncio.wait_for(coordinator._run_scheduled_task(TaskName.TECHNICAL_ANALYSIS, "BTC/USDT"), 60)
    assert analysis.status is TaskStatus.TIMED_OUT and "5s limit" in analysis.note
    assert venue.executed == []


async def test_the_time_limit_never_cuts_an_execution_short(
    make_coordinator: MakeCoordinator, venue: RecordingVenue
) -> None:
    venue.execute_delay = 50.0
    coordinator = make_coordinator(
        config={"timeouts_s": {"technical_analysis": 5, "regime_detection": 5, "trading_decision": 10}}
    )
    result = await asyncio.wait_for(coordinator.run_cycle("BTC/USDT"), timeout=100)
    assert result.status is TaskStatus.COMPLETED
    assert result.execution is not None and result.execution.success and len(venue.executed) == 1


async def test_the_schedule_runs_every_task_at_its_interval_and_stops_cleanly(
    make_coordinator: MakeCoordinator, venue: RecordingVenue
) -> None:
    venue.execute_delay = 30.0
    coordinator = make_coordinator(
        config={
            "symbols": ["BTC/USDT", "ETH/USD"],
            "intervals_s": {"technical_analysis": 60, "regime_detection": 300, "trading_decision": 1800},
        }
    )
    await coordinator.start()
    await coordinator.start()  # a second start changes nothing
    await elapse(3600 + 10)  # the decisions at 0 s and 1830 s ran; the one at 3660 s has not started
    await asyncio.wait_for(coordinator.stop(), timeout=60)

    messages = await coordinator.message_bus.get_history()
    topics = assert_messages_properly_ordered(messages)
    kinds = {cid: tuple(t) for cid, t in topics.items()}
    decisions = [cid for cid, t in kinds.items() if MessageTopic.TRADING_SIGNALS in t]
    regimes = [cid for cid, t in kinds.items() if t[-1] is MessageTopic.REGIME_UPDATES]
    analyses = [cid for cid, t in kinds.items() if t[-1] is MessageTopic.TA_SIGNALS]
    assert len(decisions) == 2 * 2  # two symbols, at 0 s and after 30 s of execution + 1800 s
    assert len(regimes) == 2 * 13  # 0, 300, ... 3600
    assert len(analyses) == 2 * 61  # 0, 60, ... 3600
    assert len(venue.executed) == 4
    events = [m.payload["event"] for m in messages if m.topic is MessageTopic.SYSTEM_EVENTS]
    assert events == ["started"]


async def test_stop_waits_for_a_running_execution(make_coordinator: MakeCoordinator, venue: RecordingVenue) -> None:
    venue.execute_delay = 40.0
    coordinator = make_coordinator(config={"symbols": ["BTC/USDT"]})
    await coordinator.start()
    await elapse(10)  # the first decision is executing now
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(coordinator.stop(), timeout=120)
    assert loop.time() - started == pytest.approx(30, abs=0.01)
    assert len(venue.executed) == 1

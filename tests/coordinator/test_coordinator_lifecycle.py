"""The full trade lifecycle (Critical Risk #2): a snapshot from the sandbox Kraken, the
real agents asking scripted language models, the vote, the risk engine, the execution
manager and the position tracker, all through the coordinator."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import respx

from core.decision.agents import RegimeDetectionAgent, TechnicalAnalysisAgent, TradingDecisionAgent
from core.decision.coordinator import CoordinatorAgent, TaskStatus
from core.decision.llm.offline import default_trading_models
from core.decision.risk import RiskManagementEngine
from core.domain.config import ModelSettings, Settings
from core.domain.enums import Action, Bias, OrderRole, OrderStatus, PositionSide, PositionStatus, Regime, Side
from core.domain.models import Position
from core.execution.positions import PositionTracker
from core.flows.trade_cycle import ExchangeVenue, TradeCycle, read_risk_state
from tests.coordinator.fakes import (
    BULL,
    PIPELINE,
    TA_LONG,
    ScriptedModel,
    assert_messages_properly_ordered,
    traders,
    vote,
)
from tests.llm.provider_fakes import KEY, KEY_ENV, OPENAI_COMPATIBLE
from tests.tg_client import Rig, open_rig

pytestmark = pytest.mark.integration


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with open_rig(tmp_path) as opened:
        yield opened


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(db=tmp_path / "tg.db")


async def test_end_to_end_buy_trade_execution(rig: Rig, settings: Settings) -> None:
    """TA says long, the regime is trending_bull, six models vote BUY, risk approves,
    the orders go out, and an open position with its stop and target is stored."""
    ta_model = ScriptedModel("ta", TA_LONG)
    regime_model = ScriptedModel("regime", BULL)
    voters = traders(*[vote("BUY", 0.8)] * 6)
    coordinator = CoordinatorAgent(
        ExchangeVenue(rig.client, rig.store, rig.clock, settings),
        ta_agent=TechnicalAnalysisAgent(ta_model),
        regime_agent=RegimeDetectionAgent(regime_model),
        decision_agent=TradingDecisionAgent(voters),
        risk_engine=RiskManagementEngine(settings.risk),
        store=rig.store,
        clock=rig.clock,
    )
    await coordinator.start()

    started = time.perf_counter()
    result = await coordinator.run_cycle("BTC/USDT", correlation_id="R-lifecycle")
    elapsed = time.perf_counter() - started

    assert elapsed < 30  # the seed's criterion
    assert result.status is TaskStatus.COMPLETED
    assert result.ta is not None and result.ta.bias is Bias.LONG
    assert result.regime is not None and result.regime.regime is Regime.TRENDING_BULL
    assert result.decision is not None and result.decision.action is Action.BUY
    assert result.decision.consensus_strength == 1.0 and result.conflict is None
    assert result.verdict is not None and result.verdict.is_approved()
    assert "BTC/USDT" in ta_model.prompts[0] and "trending_bull" in voters[0].prompts[0]

    execution = result.execution
    assert execution is not None and execution.success is True
    assert execution.order is not None and execution.order.external_id is not None
    position = execution.position
    assert position is not None and position.status is PositionStatus.OPEN
    assert position.side is PositionSide.LONG
    assert position.stop_loss is not None and position.take_profit is not None
    assert position.stop_loss < position.entry_price < position.take_profit

    [stored] = PositionTracker(rig.store, rig.clock).open_positions("BTC/USDT")
    assert stored.id == position.id and stored.run_id == "R-lifecycle"
    protection = {o.role: o for o in rig.store.orders(position_id=position.id)}
    assert protection[OrderRole.STOP_LOSS].price == position.stop_loss
    assert protection[OrderRole.TAKE_PROFIT].price == position.take_profit
    resting = await rig.client.open_orders()
    for role in (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT):
        order = protection[role]
        assert order.status is OrderStatus.OPEN and order.volume == position.size
        assert resting[order.external_id or ""].side == Side.SELL.value

    await coordinator.message_bus.drain()  # the recorder writes as a bus subscriber
    assert len(rig.store.votes("R-lifecycle")) == 6
    agents = [o["agent"] for o in rig.store.agent_outputs("R-lifecycle")]
    assert agents == ["technical_analysis", "regime_detection", "risk"]
    topics = assert_messages_properly_ordered(await coordinator.message_bus.get_history())
    assert topics["R-lifecycle"] == list(PIPELINE)
    await coordinator.stop()


async def test_trade_cycle_runs_through_the_coordinator_with_the_offline_models(rig: Rig, settings: Settings) -> None:
    report = await TradeCycle(rig.client, rig.store, rig.clock, settings).run("BTC/USDT")
    summary = report.to_dict()

    # the seeded sandbox opens on a quiet market: every offline strategy holds
    assert (summary["action"], summary["status"], summary["conflict"]) == ("HOLD", "HOLD", None)
    assert [v["model"] for v in summary["votes"]] == [m.name for m in default_trading_models()]
    run = rig.store.get_run(report.run_id)
    assert run is not None and run.summary == summary and run.status == "HOLD"
    assert len(rig.store.votes(report.run_id)) == 6 and rig.store.conflicts() == []


def _remote_answer(request: httpx.Request) -> httpx.Response:
    """DeepSeek as the TA slot, four trader slots and the conflict slot: a short bias,
    BUY votes priced off the prompt, and a ruling to halve the trade."""
    prompt = json.loads(request.content)["messages"][-1]["content"]
    if prompt.startswith("You are a technical analyst"):
        text = '{"bias": "short", "confidence": 0.7, "reasoning": "lower highs"}'
    elif "Rule on the trade" in prompt:
        text = '{"action": "modify", "confidence": 0.8, "size_factor": 0.5, "reasoning": "halve it against the bias"}'
    else:
        price = Decimal(re.search(r"Last price ([0-9.]+)", prompt).group(1))  # type: ignore[union-attr]
        text = (
            f'{{"action": "BUY", "confidence": 0.8, "entry": {price}, "stop_loss": {(price * Decimal("0.98")):.1f}, '
            f'"take_profit": {(price * Decimal("1.05")):.1f}}}'
        )
    return OPENAI_COMPATIBLE.ok(text)


@respx.mock
async def test_trade_cycle_switched_to_a_provider_by_configuration(
    rig: Rig, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    route = respx.post(OPENAI_COMPATIBLE.url).mock(side_effect=_remote_answer)
    deepseek = OPENAI_COMPATIBLE.slot()
    models = ModelSettings(
        ta=deepseek, trader_1=deepseek, trader_2=deepseek, trader_3=deepseek, trader_4=deepseek, conflict=deepseek
    )
    remote = settings.model_copy(update={"models": models})

    report = await TradeCycle(rig.client, rig.store, rig.clock, remote).run("BTC/USDT")
    summary = report.to_dict()

    assert route.call_count == 6  # TA, four votes, the ruling
    assert summary["ta"]["bias"] == "short" and summary["action"] == "BUY"
    assert [v["model"] for v in summary["votes"]][:4] == [f"trader_{i}:deepseek-chat" for i in range(1, 5)]
    assert summary["conflict"]["type"] == "trade_against_ta"
    assert (summary["conflict"]["action"], summary["conflict"]["model"]) == ("modify", "conflict:deepseek-chat")
    assert summary["status"] == "FILLED" and summary["risk"]["status"] == "reduced"
    assert any("conflict ruling modify sizes at 0.5x" in r for r in summary["risk"]["reasons"])
    [row] = rig.store.conflicts("BTC/USDT")
    assert (row["run_id"], row["resolution_action"]) == (report.run_id, "modify")


async def test_risk_state_is_read_from_the_balance_and_the_database(rig: Rig, settings: Settings) -> None:
    now = rig.clock.time() + 12 * 3600  # noon: the sandbox opens at midnight UTC
    pair = await rig.client.resolve_pair("BTC/USDT")

    def closed(position_id: str, pnl: str, closed_at: float) -> Position:
        return Position(
            position_id,
            "BTC/USDT",
            PositionSide.LONG,
            Decimal("0.01"),
            Decimal(90000),
            Decimal(88000),
            Decimal(95000),
            status=PositionStatus.CLOSED,
            opened_at=closed_at - 60,
            closed_at=closed_at,
            exit_price=Decimal(89000),
            realized_pnl=Decimal(pnl),
        )

    for position in (
        closed("P-yesterday", "-50", now - 2 * 86_400),  # before today (UTC): a loss, but not today's
        closed("P-win", "30", now - 3_000),
        closed("P-loss-1", "-12.5", now - 2_000),
        closed("P-loss-2", "-7.25", now - 1_000),
    ):
        rig.store.upsert_position(position)
    rig.store.upsert_position(
        Position("P-open", "BTC/USDT", PositionSide.LONG, Decimal("0.02"), Decimal(91000), Decimal(89000), None)
    )

    state = await read_risk_state(rig.client, rig.store, pair, Decimal(90000), now=now)

    balances = await rig.client.balance()
    assert state.available_quote == balances[pair.quote] and state.available_quote > 0
    assert state.equity == balances[pair.quote] + balances.get(pair.base, Decimal(0)) * 90000
    assert (state.open_positions, state.open_exposure) == (1, Decimal("1820.00"))
    assert state.daily_pnl == Decimal("10.25")  # 30 - 12.5 - 7.25
    assert state.consecutive_losses == 2

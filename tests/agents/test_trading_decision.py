"""TradingDecisionAgent: parallel votes, quorum, ties, timeouts; and the proposal it makes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from core.decision.agents import (
    RegimeDetectionAgent,
    TechnicalAnalysisAgent,
    TradingDecisionAgent,
    aggregate_votes,
    create_trade_proposal,
)
from core.decision.llm.interface import ModelContext, ModelReply
from core.domain.enums import Action, Bias, Regime, Side
from core.domain.errors import ConfigError
from core.domain.models import MarketSnapshot, ModelDecision, RegimeOutput, TAOutput, TradingDecisionOutput

TA = TAOutput("BTC/USDT", Bias.LONG, 0.8, "up", 0.7, 0.5, {"atr_14": Decimal(500)})
REGIME = RegimeOutput("BTC/USDT", Regime.TRENDING_BULL, 0.9, 0.01)


def _vote_text(action: str, confidence: float, entry: int = 45000, stop: int = 44000, target: int = 47000) -> str:
    if action == "HOLD":
        return f'{{"action": "HOLD", "confidence": {confidence}}}'
    if action == "SELL":
        stop, target = 2 * entry - stop, 2 * entry - target
    return (
        f'{{"action": "{action}", "confidence": {confidence}, "entry": {entry}, '
        f'"stop_loss": {stop}, "take_profit": {target}}}'
    )


def _vote(model: str, action: Action, confidence: float, valid: bool = True) -> ModelDecision:
    return ModelDecision(model, action, confidence, valid=valid)


async def test_clean_uptrend_reaches_a_buy_consensus_with_protective_levels(uptrend: MarketSnapshot) -> None:
    ta = await TechnicalAnalysisAgent().process(uptrend)
    regime = await RegimeDetectionAgent().process(uptrend, ta)
    decision = await TradingDecisionAgent().process(uptrend, ta, regime)
    assert decision.action is Action.BUY
    assert decision.votes["BUY"] >= 4 and decision.consensus_strength == decision.votes["BUY"] / 6
    assert decision.stop_loss is not None and decision.take_profit is not None and decision.entry is not None
    assert decision.stop_loss < decision.entry < decision.take_profit
    assert decision.take_profit - decision.entry >= 2 * (decision.entry - decision.stop_loss)
    proposal = create_trade_proposal(decision, regime)
    assert proposal is not None
    assert (proposal.side, proposal.regime, proposal.volume) == (Side.BUY, Regime.TRENDING_BULL, None)
    assert proposal.reward_risk >= 2


async def test_downtrend_reaches_a_sell_consensus(downtrend: MarketSnapshot) -> None:
    ta = await TechnicalAnalysisAgent().process(downtrend)
    decision = await TradingDecisionAgent().process(downtrend, ta, await RegimeDetectionAgent().process(downtrend, ta))
    assert decision.action is Action.SELL
    assert decision.take_profit < decision.entry < decision.stop_loss  # type: ignore[operator]


async def test_votes_run_in_parallel_and_medians_set_the_levels(
    uptrend: MarketSnapshot, scripted: Callable[..., Any]
) -> None:
    models = [
        scripted("a", _vote_text("BUY", 0.6, entry=45000, stop=44000, target=47000)),
        scripted("b", _vote_text("BUY", 0.8, entry=45010, stop=44200, target=47500)),
        scripted("c", _vote_text("BUY", 0.7, entry=45020, stop=44400, target=48000)),
        scripted("d", _vote_text("HOLD", 0.9)),
    ]
    decision = await TradingDecisionAgent(models, quorum=3).process(uptrend, TA, REGIME)
    assert decision.action is Action.BUY
    assert decision.consensus_strength == 0.75
    # mean 0.7 of the agreeing votes * (0.75 + 0.5 * 0.75)
    assert decision.confidence == pytest.approx(0.7875)
    assert (decision.entry, decision.stop_loss, decision.take_profit) == (
        Decimal(45010),
        Decimal(44200),
        Decimal(47500),
    )
    assert [d.model for d in decision.model_decisions] == ["a", "b", "c", "d"]
    assert "1.5 ATR" in models[0].prompts[0]  # the trending preset's stop multiple


def test_split_three_buy_three_hold_is_hold_at_half_consensus() -> None:
    votes = [_vote(f"b{i}", Action.BUY, 0.8) for i in range(3)] + [_vote(f"h{i}", Action.HOLD, 0.6) for i in range(3)]
    decision = aggregate_votes("BTC/USDT", votes, quorum=4, last_price=Decimal(100))
    assert (decision.action, decision.consensus_strength) == (Action.HOLD, 0.5)
    assert decision.votes == {"BUY": 3, "HOLD": 3}
    assert decision.confidence == pytest.approx(0.6)  # 0.6 * (0.75 + 0.25)
    assert create_trade_proposal(decision) is None


def test_buy_sell_tie_is_hold_with_no_support() -> None:
    votes = [
        _vote("b1", Action.BUY, 0.8),
        _vote("b2", Action.BUY, 0.8),
        _vote("s1", Action.SELL, 0.8),
        _vote("s2", Action.SELL, 0.8),
    ]
    decision = aggregate_votes("BTC/USDT", votes, quorum=4, last_price=Decimal(100))
    assert (decision.action, decision.consensus_strength, decision.confidence) == (Action.HOLD, 0.0, 0.0)


def test_strict_plurality_wins_and_unanimity_boosts_confidence_capped_at_one() -> None:
    mixed = [
        _vote("b1", Action.BUY, 0.8),
        _vote("b2", Action.BUY, 0.8),
        _vote("s", Action.SELL, 0.9),
        _vote("h", Action.HOLD, 0.9),
    ]
    assert aggregate_votes("X", mixed, quorum=4, last_price=Decimal(1)).action is Action.BUY
    unanimous = [_vote(f"b{i}", Action.BUY, 0.9) for i in range(4)]
    decision = aggregate_votes("X", unanimous, quorum=4, last_price=Decimal(1))
    assert decision.confidence == 1.0  # 0.9 * 1.25 capped
    assert decision.entry == 1  # no vote priced an entry: the last price


def test_below_quorum_is_hold_and_invalid_votes_do_not_count() -> None:
    votes = [_vote(f"b{i}", Action.BUY, 0.9) for i in range(3)] + [
        _vote(f"x{i}", Action.HOLD, 0.0, valid=False) for i in range(3)
    ]
    decision = aggregate_votes("X", votes, quorum=4, last_price=Decimal(1))
    assert (decision.action, decision.consensus_strength, decision.confidence) == (Action.HOLD, 0.0, 0.0)
    assert decision.votes == {"BUY": 3}
    enough = aggregate_votes("X", votes, quorum=3, last_price=Decimal(1))
    assert (enough.action, enough.consensus_strength) == (Action.BUY, 1.0)


class _Hangs:
    """A model whose answer never comes."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def generate(self, prompt: str, *, context: ModelContext) -> ModelReply:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.mark.looptime
async def test_hanging_and_crashing_models_become_invalid_votes_within_the_timeout(
    uptrend: MarketSnapshot, scripted: Callable[..., Any]
) -> None:
    good = [scripted(f"g{i}", _vote_text("BUY", 0.7)) for i in range(4)]
    models = [*good, _Hangs("slow"), scripted("broken", ValueError("bad gateway"))]
    loop = asyncio.get_running_loop()
    start = loop.time()
    decision = await TradingDecisionAgent(models, quorum=4, model_timeout_s=12).process(uptrend, TA, REGIME)
    assert loop.time() - start == pytest.approx(12)  # all waited together, not one after another
    invalid = {d.model: d for d in decision.model_decisions if not d.valid}
    assert set(invalid) == {"slow", "broken"}
    assert all(d.action is Action.HOLD and d.confidence == 0 for d in invalid.values())
    assert "within 12" in invalid["slow"].reasoning and "bad gateway" in invalid["broken"].reasoning
    assert (decision.action, decision.consensus_strength) == (Action.BUY, 1.0)


@pytest.mark.looptime
async def test_too_many_timeouts_lose_the_quorum(uptrend: MarketSnapshot, scripted: Callable[..., Any]) -> None:
    models = [scripted("g1", _vote_text("BUY", 0.7)), *(_Hangs(f"slow{i}") for i in range(5))]
    decision = await TradingDecisionAgent(models, quorum=4, model_timeout_s=3).process(uptrend, TA, REGIME)
    assert decision.action is Action.HOLD
    assert sum(not d.valid for d in decision.model_decisions) == 5


def test_quorum_must_fit_the_models(scripted: Callable[..., Any]) -> None:
    with pytest.raises(ConfigError, match="quorum 4"):
        TradingDecisionAgent([scripted("a", "{}")], quorum=4)
    with pytest.raises(ConfigError):
        TradingDecisionAgent(quorum=0)
    assert len(TradingDecisionAgent().models) == 6


def test_create_trade_proposal_needs_a_priced_buy_or_sell() -> None:
    priced = TradingDecisionOutput("BTC/USDT", Action.SELL, 0.8, 0.7, [], Decimal(100), Decimal(103), Decimal(94))
    proposal = create_trade_proposal(priced)
    assert proposal is not None
    assert (proposal.side, proposal.entry_price, proposal.stop_loss, proposal.take_profit) == (
        Side.SELL,
        Decimal(100),
        Decimal(103),
        Decimal(94),
    )
    assert (proposal.confidence, proposal.regime) == (0.7, None)
    unpriced = TradingDecisionOutput("BTC/USDT", Action.BUY, 0.8, 0.7, [], Decimal(100), None, Decimal(104))
    assert create_trade_proposal(unpriced) is None

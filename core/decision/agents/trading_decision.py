"""The trading decision: several models vote in parallel, the votes are tallied.

Rules of the tally (aggregate_votes):
- a vote that failed (exception, timeout, unparseable answer) is invalid and does
  not count; fewer than `quorum` valid votes -> HOLD;
- the action with strictly the most valid votes wins, any tie -> HOLD;
- consensus_strength = votes for the output action / valid votes;
- confidence = mean confidence of the agreeing votes * (0.75 + 0.5 * consensus_strength),
  capped at 1: unanimity lifts it by a quarter, an even split leaves it, less dampens it;
- entry, stop and target are the medians of the agreeing votes' levels (entry falls
  back to the last price when no agreeing vote priced one).
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from core.decision.agents.regime_detection import REGIME_PRESETS
from core.decision.llm.interface import LanguageModel, ModelContext
from core.decision.llm.offline import default_trading_models
from core.decision.llm.parsing import VoteAnswer, ask
from core.domain.enums import Action, Side
from core.domain.errors import ConfigError
from core.domain.models import (
    MarketSnapshot,
    ModelDecision,
    RegimeOutput,
    TAOutput,
    TradeProposal,
    TradingDecisionOutput,
)


def decision_prompt(snapshot: MarketSnapshot, ta: TAOutput, regime: RegimeOutput, stop_atr: Decimal) -> str:
    ind = ta.indicators
    return (
        f"You trade {snapshot.symbol} spot. Last price {snapshot.price}, ATR(14) {ind.get('atr_14')}.\n"
        f"Technical analysis: bias {ta.bias.value} (confidence {ta.confidence}), trend {ta.trend_direction}, "
        f"strength {ta.trend_strength}, momentum {ta.momentum}, support {ta.support}, "
        f"resistance {ta.resistance}, signals {', '.join(ta.signals)}.\n"
        f"Regime: {regime.regime.value} (confidence {regime.confidence}).\n"
        f"Indicators: {', '.join(f'{k}={v}' for k, v in ind.items())}.\n"
        f"Place a stop about {stop_atr} ATR from entry and a take-profit at least twice that distance.\n"
        'Answer with one JSON object: {"action": "BUY|SELL|HOLD", "confidence": 0..1, "entry": number, '
        '"stop_loss": number, "take_profit": number, "reasoning": "..."}'
    )


def _median(values: Sequence[Decimal | None]) -> Decimal | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def aggregate_votes(
    symbol: str, decisions: list[ModelDecision], *, quorum: int, last_price: Decimal
) -> TradingDecisionOutput:
    """Tally the votes by the rules in this module's docstring."""
    valid = [d for d in decisions if d.valid]
    if len(valid) < quorum:
        return TradingDecisionOutput(symbol, Action.HOLD, 0.0, 0.0, decisions)
    counts = Counter(d.action for d in valid).most_common()
    tied = len(counts) > 1 and counts[0][1] == counts[1][1]
    action = Action.HOLD if tied else counts[0][0]
    agreeing = [d for d in valid if d.action is action]
    consensus = len(agreeing) / len(valid)
    if not agreeing:
        return TradingDecisionOutput(symbol, action, consensus, 0.0, decisions)
    mean_confidence = statistics.fmean(d.confidence for d in agreeing)
    confidence = round(min(1.0, mean_confidence * (0.75 + 0.5 * consensus)), 4)
    if action is Action.HOLD:
        return TradingDecisionOutput(symbol, action, consensus, confidence, decisions)
    entry = _median([d.entry for d in agreeing])
    return TradingDecisionOutput(
        symbol,
        action,
        consensus,
        confidence,
        decisions,
        entry=entry if entry is not None else last_price,
        stop_loss=_median([d.stop_loss for d in agreeing]),
        take_profit=_median([d.take_profit for d in agreeing]),
    )


class TradingDecisionAgent:
    """Asks every model for a vote at once, each within `model_timeout_s`, and tallies."""

    def __init__(
        self, models: Sequence[LanguageModel] | None = None, *, quorum: int = 4, model_timeout_s: float = 30.0
    ) -> None:
        self.models = list(models) if models is not None else default_trading_models()
        if not 1 <= quorum <= len(self.models):
            raise ConfigError(f"quorum {quorum} must be between 1 and the number of models ({len(self.models)})")
        self.quorum = quorum
        self.model_timeout_s = model_timeout_s

    async def process(self, snapshot: MarketSnapshot, ta: TAOutput, regime: RegimeOutput) -> TradingDecisionOutput:
        stop_atr = REGIME_PRESETS[regime.regime].stop_atr_multiple
        context = ModelContext(
            task="trading_decision",
            snapshot=snapshot,
            indicators=ta.indicators,
            ta=ta,
            regime=regime,
            stop_atr_multiple=stop_atr,
        )
        prompt = decision_prompt(snapshot, ta, regime, stop_atr)
        decisions = await asyncio.gather(*(self._vote(model, prompt, context) for model in self.models))
        return aggregate_votes(snapshot.symbol, list(decisions), quorum=self.quorum, last_price=snapshot.price)

    async def _vote(self, model: LanguageModel, prompt: str, context: ModelContext) -> ModelDecision:
        parsed = await ask(model, prompt, context=context, schema=VoteAnswer, timeout_s=self.model_timeout_s)
        vote = parsed.answer
        if vote is None:
            return ModelDecision(model.name, Action.HOLD, 0.0, reasoning="; ".join(parsed.errors), valid=False)
        return ModelDecision(
            model.name,
            vote.action,
            vote.confidence,
            vote.entry,
            vote.stop_loss,
            vote.take_profit,
            vote.reasoning,
        )


def create_trade_proposal(decision: TradingDecisionOutput, regime: RegimeOutput | None = None) -> TradeProposal | None:
    """The trade a BUY or SELL decision proposes; None for HOLD or when a level is missing."""
    if decision.action is Action.HOLD:
        return None
    if decision.entry is None or decision.stop_loss is None or decision.take_profit is None:
        return None
    return TradeProposal(
        symbol=decision.symbol,
        side=Side.BUY if decision.action is Action.BUY else Side.SELL,
        entry_price=decision.entry,
        stop_loss=decision.stop_loss,
        take_profit=decision.take_profit,
        confidence=decision.confidence,
        regime=regime.regime if regime is not None else None,
    )

"""Conflicts among the agents over one trading decision: how they are found, what a
resolver is asked, and how its ruling is kept within bounds.

Found only around a trade on the table (a BUY or SELL, or a tie that kept one from
winning), most serious first: the trade against the technical bias, the technical
bias against the regime, a trade in high volatility, low consensus. The ruling is
proceed, modify, wait or abort; a modify shrinks the size to no less than
`min_size_factor` and may move the stop closer to entry, never further; no valid
ruling (a timeout, an unparseable answer) is a wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pydantic import AliasChoices, Field

from core.decision.llm.parsing import ConflictAction, ConflictAnswer
from core.domain.config import ConflictSettings
from core.domain.enums import Action, Bias, Regime
from core.domain.errors import InputError
from core.domain.models import MarketSnapshot, RegimeOutput, TAOutput, Ticker, TradingDecisionOutput


class ConflictType(StrEnum):
    TRADE_AGAINST_TA = "trade_against_ta"
    TA_REGIME_MISMATCH = "ta_regime_mismatch"
    HIGH_VOLATILITY = "high_volatility"
    LOW_CONSENSUS = "low_consensus"


_BULL = (Regime.TRENDING_BULL, Regime.VOLATILE_BULL)
_BEAR = (Regime.TRENDING_BEAR, Regime.VOLATILE_BEAR)
_VOLATILE = (Regime.VOLATILE_BULL, Regime.VOLATILE_BEAR)


@dataclass(frozen=True)
class ConflictInfo:
    """A disagreement among the agents over one decision. `details` names every
    conflict found; `conflict_type` is the first (the most serious) of them."""

    conflict_type: str
    ta_output: TAOutput | None = None
    regime_output: RegimeOutput | None = None
    decision_output: TradingDecisionOutput | None = None
    details: tuple[str, ...] = ()
    snapshot: MarketSnapshot | None = None
    correlation_id: str | None = None

    @property
    def symbol(self) -> str:
        outputs: tuple[TradingDecisionOutput | TAOutput | RegimeOutput | MarketSnapshot | None, ...] = (
            self.decision_output,
            self.ta_output,
            self.regime_output,
            self.snapshot,
        )
        for output in outputs:
            if output is not None:
                return output.symbol
        raise InputError("a conflict needs an agent output or a snapshot to name its symbol")


@dataclass(frozen=True)
class ConflictResolution:
    """The ruling, clamped: a modify trades `size_factor` (within [min, 1]) of the size
    with `stop_loss` (never further from entry than the decision's)."""

    action: ConflictAction
    confidence: float
    reasoning: str
    size_factor: Decimal
    stop_loss: Decimal | None
    model: str
    notes: tuple[str, ...] = ()  # what the clamps changed
    fallback: bool = False  # no valid ruling came: wait

    @property
    def allows_trade(self) -> bool:
        return self.action in (ConflictAction.PROCEED, ConflictAction.MODIFY)


class ResolutionAnswer(ConflictAnswer):
    """A resolver's ruling, with the tighter stop a modify may set."""

    stop_loss: Decimal | None = Field(
        default=None, gt=0, validation_alias=AliasChoices("stop_loss", "stop", "new_stop_loss")
    )


def _is_split(decision: TradingDecisionOutput) -> bool:
    """A tie at the top of the valid votes with a trade in it: HOLD by the tally, still contested."""
    counts = decision.votes
    if len(counts) < 2:
        return False
    top = max(counts.values())
    leaders = [action for action, n in counts.items() if n == top]
    return len(leaders) > 1 and any(action != Action.HOLD.value for action in leaders)


def detect_conflicts(
    ta: TAOutput, regime: RegimeOutput, decision: TradingDecisionOutput, settings: ConflictSettings
) -> list[tuple[ConflictType, str]]:
    """Every conflict around a trade on the table, most serious first; none without a trade."""
    trade = decision.action if decision.action is not Action.HOLD else None
    split = _is_split(decision)
    found: list[tuple[ConflictType, str]] = []
    if trade is None and not split:
        return found
    if trade is not None:
        wanted = Bias.LONG if trade is Action.BUY else Bias.SHORT
        if ta.bias not in (wanted, Bias.NEUTRAL):
            found.append((ConflictType.TRADE_AGAINST_TA, f"{trade.value} against a {ta.bias.value} technical bias"))
    if (ta.bias is Bias.LONG and regime.regime in _BEAR) or (ta.bias is Bias.SHORT and regime.regime in _BULL):
        found.append(
            (ConflictType.TA_REGIME_MISMATCH, f"{ta.bias.value} technical bias in a {regime.regime.value} regime")
        )
    if trade is not None and (regime.regime in _VOLATILE or regime.volatility > settings.max_volatility):
        found.append(
            (
                ConflictType.HIGH_VOLATILITY,
                f"{trade.value} in a {regime.regime.value} regime, ATR {regime.volatility:.2%} of price",
            )
        )
    if split or decision.consensus_strength < settings.min_consensus:
        votes = ", ".join(f"{n} {action}" for action, n in decision.votes.items())
        found.append((ConflictType.LOW_CONSENSUS, f"split vote ({votes}), consensus {decision.consensus_strength:.0%}"))
    return found


def _tightened_stop(
    proposed: Decimal | None, decision: TradingDecisionOutput | None, notes: list[str]
) -> Decimal | None:
    """The proposed stop if it lies between the decision's stop and its entry, else the decision's."""
    if decision is None or decision.stop_loss is None or decision.entry is None:
        return None
    current, entry = decision.stop_loss, decision.entry
    if proposed is None:
        return current
    up = 1 if decision.action is Action.BUY else -1
    if (proposed - current) * up < 0:
        notes.append(f"stop {proposed} would widen the stop {current}: kept {current}")
        return current
    if (entry - proposed) * up <= 0:
        notes.append(f"stop {proposed} is not on the losing side of entry {entry}: kept {current}")
        return current
    return proposed


def clamp_resolution(
    answer: ResolutionAnswer | None,
    errors: tuple[str, ...],
    decision: TradingDecisionOutput | None,
    settings: ConflictSettings,
    model: str,
) -> ConflictResolution:
    """The resolver's ruling within bounds; no valid ruling is a wait."""
    if answer is None:
        reason = "; ".join(errors) or "no answer"
        return ConflictResolution(
            ConflictAction.WAIT, 0.0, f"fallback to wait: {reason}", Decimal(0), None, model, fallback=True
        )
    notes: list[str] = []
    stop = decision.stop_loss if decision is not None else None
    if answer.action is ConflictAction.MODIFY:
        size = min(Decimal(1), max(settings.min_size_factor, answer.size_factor))
        if size != answer.size_factor:
            notes.append(f"size factor {answer.size_factor} clamped to {size}")
        stop = _tightened_stop(answer.stop_loss, decision, notes)
    elif answer.action is ConflictAction.PROCEED:
        size = Decimal(1)
    else:
        size, stop = Decimal(0), None
    return ConflictResolution(answer.action, answer.confidence, answer.reasoning, size, stop, model, tuple(notes))


def conflict_prompt(info: ConflictInfo) -> str:
    ta, regime, decision = info.ta_output, info.regime_output, info.decision_output
    lines = [f"The agents trading {info.symbol} disagree: {info.conflict_type}."]
    lines += [f"- {detail}" for detail in info.details]
    if ta is not None:
        lines.append(
            f"Technical analysis: bias {ta.bias.value} (confidence {ta.confidence}), trend {ta.trend_direction}, "
            f"momentum {ta.momentum}, support {ta.support}, resistance {ta.resistance}."
        )
    if regime is not None:
        lines.append(
            f"Regime: {regime.regime.value} (confidence {regime.confidence}), ATR {regime.volatility:.2%} of price."
        )
    if decision is not None:
        lines.append(
            f"Decision: {decision.action.value}, consensus {decision.consensus_strength:.0%}, confidence "
            f"{decision.confidence}, entry {decision.entry}, stop-loss {decision.stop_loss}, "
            f"take-profit {decision.take_profit}."
        )
        lines += [
            f"  vote {d.model}: {d.action.value} ({d.confidence}){'' if d.valid else ' invalid'} {d.reasoning}"
            for d in decision.model_decisions
        ]
    lines.append(
        "Rule on the trade: proceed (as proposed), modify (smaller, and optionally a stop closer to entry), "
        "wait (not now), or abort (drop it).\n"
        'Answer with one JSON object: {"action": "proceed|modify|wait|abort", "confidence": 0..1, '
        '"reasoning": "...", "size_factor": 0.25..1 (modify only), "stop_loss": number or null (modify only)}'
    )
    return "\n".join(lines)


def price_only_snapshot(info: ConflictInfo, now: float) -> MarketSnapshot:
    """For a conflict built by hand without a snapshot: the decision's price, no candles."""
    decision, ta = info.decision_output, info.ta_output
    price = decision.entry if decision is not None and decision.entry is not None else None
    if price is None and ta is not None:
        price = ta.indicators.get("price")
    last = price if price is not None else Decimal(0)
    return MarketSnapshot(info.symbol, now, Ticker(last, last, last), {})

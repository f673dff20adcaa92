"""Deterministic offline models: rule-based stand-ins that answer in the JSON a
language model is asked for, so the whole cycle runs without a network or keys.

They read the structured ModelContext, not the prompt. Each trading model is one
documented strategy; all price a trade the same way: entry at the last price, the
stop `stop_atr_multiple` ATRs away (the regime's preset, else 1.5) and the target at
the model's reward multiple (>= 2R) of that risk.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring_ascii

from core.decision.indicators import rounded
from core.decision.llm.interface import LanguageModel, ModelContext, ModelReply, Task
from core.domain.enums import Action, Bias, Regime
from core.domain.errors import ModelError
from core.domain.models import RegimeOutput, TAOutput

DEFAULT_STOP_ATR_MULTIPLE = Decimal("1.5")
_BULL_REGIMES = (Regime.TRENDING_BULL, Regime.VOLATILE_BULL)
_BEAR_REGIMES = (Regime.TRENDING_BEAR, Regime.VOLATILE_BEAR)


_ENCODE = json.JSONEncoder().encode
"""json.dumps with its default options, without re-reading them at each of an answer's fields."""
_STRING = encode_basestring_ascii
"""What _ENCODE does with a str, without its checks: keys and most values are strings."""


def answer_json(fields: Mapping[str, object]) -> str:
    """A flat JSON object whose Decimals are written as exact JSON numbers."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, Decimal):
            text = format(value, "f")
        else:
            text = _STRING(value) if type(value) is str else _ENCODE(value)
        parts.append(f"{_STRING(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


def _clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return round(min(high, max(low, value)), 2)


def _sign(value: Decimal | float) -> int:
    return (value > 0) - (value < 0)


def _inputs(name: str, indicators: Mapping[str, Decimal], needs: tuple[str, ...]) -> dict[str, Decimal]:
    missing = [key for key in needs if key not in indicators]
    if missing:
        raise ModelError(f"{name} needs indicators {', '.join(missing)}; compute them before asking")
    return {key: indicators[key] for key in needs}


def _check_task(name: str, expected: Task, context: ModelContext) -> None:
    if context.task != expected:
        raise ModelError(f"{name} answers {expected} only, not {context.task}; use it in that slot")


@dataclass(frozen=True)
class Signal:
    action: Action
    confidence: float
    reasoning: str


class OfflineTrader(ABC):
    """A trading strategy that votes BUY, SELL or HOLD with priced levels."""

    name: str
    reward_multiple: Decimal
    needs: tuple[str, ...]

    @abstractmethod
    def decide(self, price: Decimal, ind: dict[str, Decimal], ta: TAOutput, regime: RegimeOutput | None) -> Signal:
        """The strategy's call; `ind` holds its `needs`, all present."""

    async def generate(self, prompt: str, *, context: ModelContext) -> ModelReply:
        _check_task(self.name, "trading_decision", context)
        if context.ta is None:
            raise ModelError(f"{self.name} needs the technical analysis in its context")
        ind = _inputs(self.name, context.ta.indicators, (*self.needs, "atr_14"))
        price = context.snapshot.price
        signal = self.decide(price, ind, context.ta, context.regime)
        fields: dict[str, object] = {
            "action": signal.action.value,
            "confidence": signal.confidence,
            "entry": price,
            "stop_loss": None,
            "take_profit": None,
        }
        if signal.action is not Action.HOLD:
            direction = 1 if signal.action is Action.BUY else -1
            risk = (context.stop_atr_multiple or DEFAULT_STOP_ATR_MULTIPLE) * ind["atr_14"]
            fields["stop_loss"] = rounded(price - direction * risk)
            fields["take_profit"] = rounded(price + direction * self.reward_multiple * risk)
        fields["reasoning"] = signal.reasoning
        return ModelReply(text=answer_json(fields), model=self.name)


class TrendFollower(OfflineTrader):
    """Rides an established trend: EMA20 on the trend's side of EMA50, price beyond
    EMA20, the directional indicators agreeing, and ADX >= 20 to prove a trend exists.
    Confidence grows with ADX."""

    name = "trend_follower"
    reward_multiple = Decimal("2.5")
    needs = ("ema_20", "ema_50", "adx_14", "plus_di_14", "minus_di_14")

    def decide(self, price: Decimal, ind: dict[str, Decimal], ta: TAOutput, regime: RegimeOutput | None) -> Signal:
        adx = float(ind["adx_14"])
        if adx < 20:
            return Signal(Action.HOLD, 0.6, f"ADX {adx:.1f} < 20: no trend to follow")
        confidence = _clamp(0.5 + 0.4 * min(adx - 20, 30) / 30)
        if ind["ema_20"] > ind["ema_50"] and price > ind["ema_20"] and ind["plus_di_14"] > ind["minus_di_14"]:
            return Signal(Action.BUY, confidence, f"EMA20 above EMA50, price above EMA20, ADX {adx:.1f}")
        if ind["ema_20"] < ind["ema_50"] and price < ind["ema_20"] and ind["minus_di_14"] > ind["plus_di_14"]:
            return Signal(Action.SELL, confidence, f"EMA20 below EMA50, price below EMA20, ADX {adx:.1f}")
        return Signal(Action.HOLD, 0.5, "averages and directional indicators disagree")


class MeanReverter(OfflineTrader):
    """Fades stretched prices back to the mean: RSI <= 30 with the price at or below
    the lower Bollinger band buys, RSI >= 70 at or above the upper band sells. Stands
    aside when ADX >= 25, because stretched prices in a trend keep stretching."""

    name = "mean_reverter"
    reward_multiple = Decimal("2")
    needs = ("rsi_14", "bb_upper", "bb_lower", "adx_14")

    def decide(self, price: Decimal, ind: dict[str, Decimal], ta: TAOutput, regime: RegimeOutput | None) -> Signal:
        rsi, adx = float(ind["rsi_14"]), float(ind["adx_14"])
        if adx >= 25:
            return Signal(Action.HOLD, 0.6, f"ADX {adx:.1f} >= 25: trend too strong to fade")
        if rsi <= 30 and price <= ind["bb_lower"]:
            return Signal(Action.BUY, _clamp(0.55 + (30 - rsi) / 60, high=0.9), f"RSI {rsi:.1f} at lower band")
        if rsi >= 70 and price >= ind["bb_upper"]:
            return Signal(Action.SELL, _clamp(0.55 + (rsi - 70) / 60, high=0.9), f"RSI {rsi:.1f} at upper band")
        return Signal(Action.HOLD, 0.5, f"RSI {rsi:.1f} inside the bands: nothing stretched")


class Momentum(OfflineTrader):
    """Follows MACD: a positive histogram with the MACD line above zero buys, the
    mirror sells. A histogram still growing adds confidence."""

    name = "momentum"
    reward_multiple = Decimal("2")
    needs = ("macd", "macd_hist", "macd_hist_prev")

    def decide(self, price: Decimal, ind: dict[str, Decimal], ta: TAOutput, regime: RegimeOutput | None) -> Signal:
        hist, line = ind["macd_hist"], ind["macd"]
        if _sign(hist) == 0 or _sign(hist) != _sign(line):
            return Signal(Action.HOLD, 0.5, "MACD line and histogram disagree")
        growing = abs(hist) > abs(ind["macd_hist_prev"]) and _sign(ind["macd_hist_prev"]) == _sign(hist)
        confidence = 0.7 if growing else 0.55
        action = Action.BUY if hist > 0 else Action.SELL
        return Signal(action, confidence, f"MACD {line} histogram {hist} ({'growing' if growing else 'fading'})")


class Breakout(OfflineTrader):
    """Trades a close beyond the previous 20-candle range (Donchian channel). Bands
    widening behind the move and no swing level left in the way add confidence."""

    name = "breakout"
    reward_multiple = Decimal("3")
    needs = ("donchian_high_20", "donchian_low_20", "bb_width_ratio")

    def decide(self, price: Decimal, ind: dict[str, Decimal], ta: TAOutput, regime: RegimeOutput | None) -> Signal:
        expansion_bonus = 0.15 if ind["bb_width_ratio"] > 1 else 0.0
        if price > ind["donchian_high_20"]:
            confidence = 0.55 + expansion_bonus + (0.1 if ta.resistance is None else 0.0)
            return Signal(Action.BUY, _clamp(confidence), f"close above the 20-candle high {ind['donchian_high_20']}")
        if price < ind["donchian_low_20"]:
            confidence = 0.55 + expansion_bonus + (0.1 if ta.support is None else 0.0)
            return Signal(Action.SELL, _clamp(confidence), f"close below the 20-candle low {ind['donchian_low_20']}")
        if ind["bb_width_ratio"] < Decimal("0.6"):
            return Signal(Action.HOLD, 0.5, "bands squeezed: waiting for the break")
        return Signal(Action.HOLD, 0.55, "price inside its 20-candle range")


class RegimeAligned(OfflineTrader):
    """Trades only with the regime: a bull regime and a long technical bias buy, the
    mirror sells; a breakout-potential regime follows a confident bias at reduced
    confidence; ranging and choppy markets hold."""

    name = "regime_aligned"
    reward_multiple = Decimal("2.5")
    needs = ()

    def decide(self, price: Decimal, ind: dict[str, Decimal], ta: TAOutput, regime: RegimeOutput | None) -> Signal:
        if regime is None:
            raise ModelError(f"{self.name} needs the regime in its context")
        confidence = (ta.confidence + regime.confidence) / 2
        damp = 0.8 if regime.regime in (Regime.VOLATILE_BULL, Regime.VOLATILE_BEAR) else 1.0
        if regime.regime in _BULL_REGIMES and ta.bias is Bias.LONG:
            return Signal(Action.BUY, _clamp(confidence * damp), f"{regime.regime.value} with a long bias")
        if regime.regime in _BEAR_REGIMES and ta.bias is Bias.SHORT:
            return Signal(Action.SELL, _clamp(confidence * damp), f"{regime.regime.value} with a short bias")
        if regime.regime is Regime.BREAKOUT_POTENTIAL and ta.bias is not Bias.NEUTRAL and ta.confidence >= 0.6:
            action = Action.BUY if ta.bias is Bias.LONG else Action.SELL
            return Signal(action, _clamp(confidence * 0.7), f"breakout potential leaning {ta.bias.value}")
        return Signal(Action.HOLD, 0.6, f"{regime.regime.value} with a {ta.bias.value} bias: no aligned trade")


class ContrarianRisk(OfflineTrader):
    """The sceptic: holds unless every check agrees (averages, price vs EMA50, MACD
    histogram, RSI side of 50, higher timeframes, regime direction, technical bias),
    and refuses to chase an RSI beyond 80 / below 20."""

    name = "contrarian_risk"
    reward_multiple = Decimal("2")
    needs = ("ema_20", "ema_50", "macd_hist", "rsi_14")

    def decide(self, price: Decimal, ind: dict[str, Decimal], ta: TAOutput, regime: RegimeOutput | None) -> Signal:
        votes = [
            _sign(ind["ema_20"] - ind["ema_50"]),
            _sign(price - ind["ema_50"]),
            _sign(ind["macd_hist"]),
            _sign(ind["rsi_14"] - 50),
            {Bias.LONG: 1, Bias.SHORT: -1, Bias.NEUTRAL: 0}[ta.bias],
        ]
        if "higher_tf_trend" in ta.indicators:
            votes.append(_sign(ta.indicators["higher_tf_trend"]))
        if regime is not None:
            votes.append(1 if regime.regime in _BULL_REGIMES else -1 if regime.regime in _BEAR_REGIMES else 0)
        direction = votes[0]
        if direction == 0 or any(v != direction for v in votes):
            return Signal(Action.HOLD, 0.7, f"checks split {votes}: no trade without full agreement")
        rsi = float(ind["rsi_14"])
        if (direction > 0 and rsi > 80) or (direction < 0 and rsi < 20):
            return Signal(Action.HOLD, 0.65, f"all checks agree but RSI {rsi:.1f} is extreme: not chasing")
        action = Action.BUY if direction > 0 else Action.SELL
        return Signal(action, _clamp(0.55 + 0.05 * (len(votes) - 5)), f"all {len(votes)} checks agree")


class OfflineTechnicalAnalyst:
    """Scores the indicators into a bias: EMA20 vs EMA50, price vs EMA50, MACD
    histogram, RSI beyond 55/45 and higher-timeframe trend each add +-1; a mean score
    of +-0.4 or more sets the bias. Confidence is 0.2 + 0.75 * |score| * min(ADX/25, 1):
    agreeing indicators without a trend behind them (low ADX) are weak evidence."""

    name = "offline_ta"
    _NEEDS = ("price", "ema_20", "ema_50", "macd_hist", "rsi_14", "adx_14")

    async def generate(self, prompt: str, *, context: ModelContext) -> ModelReply:
        _check_task(self.name, "technical_analysis", context)
        ind = _inputs(self.name, context.indicators, self._NEEDS)
        rsi = float(ind["rsi_14"])
        checks = {
            "ema_20_vs_ema_50": _sign(ind["ema_20"] - ind["ema_50"]),
            "price_vs_ema_50": _sign(ind["price"] - ind["ema_50"]),
            "macd_histogram": _sign(ind["macd_hist"]),
            "rsi": 1 if rsi > 55 else -1 if rsi < 45 else 0,
        }
        if "higher_tf_trend" in context.indicators:
            checks["higher_timeframes"] = _sign(context.indicators["higher_tf_trend"])
        score = sum(checks.values()) / len(checks)
        trend_evidence = min(float(ind["adx_14"]) / 25, 1.0)
        confidence = _clamp(0.2 + 0.75 * abs(score) * trend_evidence, high=0.95)
        if score >= 0.4:
            bias = Bias.LONG
        elif score <= -0.4:
            bias = Bias.SHORT
        else:
            bias, confidence = Bias.NEUTRAL, 0.5
        fields = {
            "bias": bias.value,
            "confidence": confidence,
            "signals": [f"{name}_{'up' if v > 0 else 'down'}" for name, v in checks.items() if v],
            "reasoning": f"score {score:+.2f} from {checks}",
        }
        return ModelReply(text=answer_json(fields), model=self.name)


class OfflineRegimeClassifier:
    """Classifies with ADX, directional indicators, ATR against its recent mean,
    Bollinger width against its recent mean and the choppiness index:
    ADX >= 25 trends (volatile when ATR runs 1.5x its mean), squeezed bands (<= 0.6x)
    promise a breakout, choppiness >= 61.8 or an ATR spike without trend is choppy,
    anything else ranges."""

    name = "offline_regime"
    _NEEDS = ("adx_14", "plus_di_14", "minus_di_14", "atr_ratio", "bb_width_ratio", "chop_14")

    async def generate(self, prompt: str, *, context: ModelContext) -> ModelReply:
        _check_task(self.name, "regime", context)
        ind = _inputs(self.name, context.indicators, self._NEEDS)
        adx, atr_ratio = float(ind["adx_14"]), float(ind["atr_ratio"])
        squeeze, chop = float(ind["bb_width_ratio"]), float(ind["chop_14"])
        direction = _sign(ind["plus_di_14"] - ind["minus_di_14"])
        if context.ta is not None and context.ta.trend_direction in ("up", "down"):
            direction = 1 if context.ta.trend_direction == "up" else -1
        volatile = atr_ratio >= 1.5
        if adx >= 25 and direction != 0:
            regime = {
                (1, False): Regime.TRENDING_BULL,
                (1, True): Regime.VOLATILE_BULL,
                (-1, False): Regime.TRENDING_BEAR,
                (-1, True): Regime.VOLATILE_BEAR,
            }[(direction, volatile)]
            confidence, why = (
                _clamp(0.55 + (adx - 25) / 50, high=0.95),
                f"ADX {adx:.1f}, ATR x{atr_ratio:.2f}",
            )
        elif squeeze <= 0.6:
            regime, confidence = Regime.BREAKOUT_POTENTIAL, _clamp(0.5 + (0.6 - squeeze), high=0.9)
            why = f"Bollinger width at {squeeze:.2f}x its mean"
        elif chop >= 61.8 or volatile:
            regime, confidence = Regime.CHOPPY, _clamp(0.5 + (chop - 61.8) / 40, low=0.5, high=0.9)
            why = f"choppiness {chop:.1f}, ATR x{atr_ratio:.2f}, ADX {adx:.1f}"
        else:
            regime, confidence = Regime.RANGING, _clamp(0.5 + (25 - adx) / 50, high=0.9)
            why = f"ADX {adx:.1f} without a squeeze or chop"
        fields = {"regime": regime.value, "confidence": confidence, "reasoning": why}
        return ModelReply(text=answer_json(fields), model=self.name)


class OfflineConflictResolver:
    """Rules on a conflicted decision: abort when the technical bias opposes the
    trade, wait on a HOLD or a thin split without a bias behind it, halve the size
    in volatile or choppy regimes or on a thin split, else proceed."""

    name = "offline_conflict"

    async def generate(self, prompt: str, *, context: ModelContext) -> ModelReply:
        _check_task(self.name, "conflict", context)
        decision, ta, regime = context.decision, context.ta, context.regime
        if decision is None:
            raise ModelError(f"{self.name} needs the trading decision in its context")
        bias = ta.bias if ta is not None else Bias.NEUTRAL
        wanted = {Action.BUY: Bias.LONG, Action.SELL: Bias.SHORT}.get(decision.action)
        risky = regime is not None and regime.regime in (
            Regime.VOLATILE_BULL,
            Regime.VOLATILE_BEAR,
            Regime.CHOPPY,
        )
        thin = decision.consensus_strength < 0.6
        if wanted is None:
            ruling = ("wait", 0.8, Decimal(0), "the decision is HOLD: nothing to trade")
        elif bias not in (wanted, Bias.NEUTRAL):
            ruling = (
                "abort",
                0.85,
                Decimal(0),
                f"technical bias {bias.value} opposes {decision.action.value}",
            )
        elif thin and bias is Bias.NEUTRAL:
            ruling = ("wait", 0.7, Decimal(0), "split vote without a technical bias: wait for clarity")
        elif risky or thin:
            why = f"{regime.regime.value} regime" if risky and regime is not None else "a split vote"
            ruling = ("modify", 0.75, Decimal("0.5"), f"reduce position size by 50% due to {why}")
        else:
            ruling = ("proceed", 0.8, Decimal(1), "signals agree")
        action, confidence, size_factor, reasoning = ruling
        fields = {
            "action": action,
            "reasoning": reasoning,
            "confidence": confidence,
            "size_factor": size_factor,
        }
        return ModelReply(text=answer_json(fields), model=self.name)


def default_trading_models() -> list[LanguageModel]:
    """The six offline strategies that vote when no providers are configured."""
    return [TrendFollower(), MeanReverter(), Momentum(), Breakout(), RegimeAligned(), ContrarianRisk()]

"""Regime detection: which of the seven market regimes a symbol is in, held steady
by hysteresis so one odd candle cannot flip the trading parameters back and forth.

The model (default: the offline classifier) reads the indicators; the agent keeps,
per symbol, the confirmed regime and a candidate, and switches only after the
candidate was seen `confirmations` times in a row. A failed model answer reports
choppy at confidence 0 (the most careful preset) and leaves the state untouched:
a broken answer is no evidence that the market changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.decision.agents.technical_analysis import measure
from core.decision.llm.interface import LanguageModel, ModelContext
from core.decision.llm.offline import OfflineRegimeClassifier
from core.decision.llm.parsing import RegimeAnswer, ask
from core.domain.enums import Regime
from core.domain.errors import ConfigError
from core.domain.models import MarketSnapshot, RegimeOutput, TAOutput


@dataclass(frozen=True)
class RegimePreset:
    """How hard to trade in a regime: applied to size (risk), stops (models), and the
    confidence a proposal needs (risk)."""

    position_size_factor: Decimal
    stop_atr_multiple: Decimal
    min_confidence: float


REGIME_PRESETS: dict[Regime, RegimePreset] = {
    Regime.TRENDING_BULL: RegimePreset(Decimal("1"), Decimal("1.5"), 0.55),
    Regime.TRENDING_BEAR: RegimePreset(Decimal("1"), Decimal("1.5"), 0.55),
    Regime.VOLATILE_BULL: RegimePreset(Decimal("0.5"), Decimal("2.5"), 0.65),
    Regime.VOLATILE_BEAR: RegimePreset(Decimal("0.5"), Decimal("2.5"), 0.65),
    Regime.RANGING: RegimePreset(Decimal("0.75"), Decimal("1.5"), 0.6),
    Regime.BREAKOUT_POTENTIAL: RegimePreset(Decimal("0.75"), Decimal("2"), 0.6),
    Regime.CHOPPY: RegimePreset(Decimal("0.25"), Decimal("2"), 0.75),
}


@dataclass
class _Held:
    regime: Regime
    confidence: float
    candidate: Regime | None = None
    seen: int = 0


def regime_prompt(snapshot: MarketSnapshot, indicators: dict[str, Decimal], ta: TAOutput | None) -> str:
    lines = "\n".join(f"  {key}: {value}" for key, value in indicators.items())
    trend = f"Technical analysis: trend {ta.trend_direction}, bias {ta.bias.value}.\n" if ta is not None else ""
    regimes = "|".join(r.value for r in Regime)
    return (
        f"Classify the market regime of {snapshot.symbol} at {snapshot.price} from these indicators:\n"
        f"{lines}\n{trend}"
        f'Answer with one JSON object: {{"regime": "{regimes}", "confidence": 0..1, "reasoning": "..."}}'
    )


class RegimeDetectionAgent:
    """Classifies each snapshot's regime, with per-symbol hysteresis."""

    def __init__(self, model: LanguageModel | None = None, *, confirmations: int = 2, timeout_s: float = 30.0) -> None:
        if confirmations < 1:
            raise ConfigError(f"regime confirmations must be at least 1, got {confirmations}")
        self.model = model if model is not None else OfflineRegimeClassifier()
        self.confirmations = confirmations
        self.timeout_s = timeout_s
        self._held: dict[str, _Held] = {}

    def current(self, symbol: str) -> Regime | None:
        """The confirmed regime of `symbol`, None before its first reading."""
        held = self._held.get(symbol)
        return held.regime if held is not None else None

    async def process(self, snapshot: MarketSnapshot, ta: TAOutput | None = None) -> RegimeOutput:
        indicators = dict(ta.indicators) if ta is not None else measure(snapshot).indicators
        context = ModelContext(task="regime", snapshot=snapshot, indicators=indicators, ta=ta)
        parsed = await ask(
            self.model,
            regime_prompt(snapshot, indicators, ta),
            context=context,
            schema=RegimeAnswer,
            timeout_s=self.timeout_s,
        )
        volatility = float(indicators.get("atr_pct", 0))
        if parsed.answer is None:
            fallback = RegimeAnswer.fallback(parsed.errors)
            return RegimeOutput(snapshot.symbol, fallback.regime, 0.0, volatility, [fallback.reasoning])
        regime, confidence, note = self._confirm(snapshot.symbol, parsed.answer)
        reasons = [parsed.answer.reasoning, note] if note else [parsed.answer.reasoning]
        return RegimeOutput(snapshot.symbol, regime, confidence, volatility, reasons)

    def _confirm(self, symbol: str, answer: RegimeAnswer) -> tuple[Regime, float, str]:
        """Fold one reading into the symbol's state; returns the regime to report."""
        held = self._held.get(symbol)
        if held is None:
            self._held[symbol] = _Held(answer.regime, answer.confidence)
            return answer.regime, answer.confidence, ""
        if answer.regime is held.regime:
            held.confidence, held.candidate, held.seen = answer.confidence, None, 0
            return held.regime, held.confidence, ""
        held.seen = held.seen + 1 if answer.regime is held.candidate else 1
        held.candidate = answer.regime
        if held.seen >= self.confirmations:
            previous = held.regime
            self._held[symbol] = _Held(answer.regime, answer.confidence)
            return (
                answer.regime,
                answer.confidence,
                f"changed from {previous.value} after {held.seen} readings",
            )
        note = f"holding {held.regime.value}: {answer.regime.value} seen {held.seen}/{self.confirmations} times"
        return held.regime, held.confidence, note

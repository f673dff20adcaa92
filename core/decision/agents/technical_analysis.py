"""Technical analysis: measure the market on every timeframe the snapshot carries,
then let a model judge the bias.

Measurement (indicators, trend, momentum, levels) is pure and deterministic and
happens here; judgement (bias, confidence) is the model's, so an offline rule set
and a language model are interchangeable. The shortest timeframe with enough
candles is the primary one: its indicators are keyed plainly (`rsi_14`); every
other usable timeframe is keyed with its interval (`240m_rsi_14`) and feeds
`higher_tf_trend`, the mean of their trend signs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from core.decision import indicators as ti
from core.decision.llm.interface import LanguageModel, ModelContext
from core.decision.llm.offline import OfflineTechnicalAnalyst
from core.decision.llm.parsing import TAAnswer, ask
from core.domain.errors import InputError
from core.domain.models import Candle, MarketSnapshot, TAOutput

MIN_CANDLES = 60  # EMA50 plus room for its previous value; ADX needs 28, MACD 34
INDICATOR_WINDOW = 200
"""Candles the indicators are computed over, the most recent. Smoothed indicators
(EMA, MACD, ATR, ADX, RSI) remember their start: after 250 candles the EMA50's
start weighs (49/51)**250, under 1e-4, and the others' far less. Kraken hands out
720 candles, themselves a cut of the whole history; measuring them all cost a
replay most of its time for no visible difference."""
RATIO_WINDOW = 50  # ATR and band width are judged against their mean over this many candles
BANDS_PERIOD = 20
CHOP_PERIOD = 14
SQUEEZE_RATIO = Decimal("0.6")


def _ratio(value: float, history: Sequence[float]) -> Decimal:
    """`value` over the mean of `history`; 1 when the history is flat at zero."""
    mean = math.fsum(history) / len(history)
    return ti.rounded(value / mean) if mean else Decimal(1)


def timeframe_indicators(candles: Sequence[Candle], windows: ti.PriceWindows | None = None) -> dict[str, Decimal]:
    """The indicator set of one timeframe; needs at least MIN_CANDLES candles.

    Computed in floats (read through `windows` when the caller measures repeatedly);
    each value read is rounded to a Decimal once, here."""
    if len(candles) < MIN_CANDLES:
        raise InputError(f"need {MIN_CANDLES} candles for the indicators, got {len(candles)}")
    candles = candles[-INDICATOR_WINDOW:]
    prices = windows.of(candles) if windows is not None else ti.Prices.of(candles)
    closes = prices.close
    price = closes[-1]
    ema_20, ema_50 = ti.ema(closes, 20), ti.ema(closes, 50)
    macd = ti.macd(closes)
    atr = ti.atr(prices)
    # windowed indicators, asked only for the values used (the same values as over all candles)
    bands = ti.bollinger(closes[-(BANDS_PERIOD + RATIO_WINDOW - 1) :], BANDS_PERIOD)
    widths = [(u - low) / mid for u, low, mid in zip(bands.upper, bands.lower, bands.middle)]
    directional = ti.adx(prices)
    prior = candles[-21:-1]
    r = ti.rounded
    return {
        "price": candles[-1].close,
        "ema_20": r(ema_20[-1]),
        "ema_20_prev": r(ema_20[-2]),
        "ema_50": r(ema_50[-1]),
        "ema_50_prev": r(ema_50[-2]),
        "sma_20": r(ti.sma(closes[-20:], 20)[-1]),
        "rsi_14": r(ti.rsi(closes)[-1]),
        "macd": r(macd.line[-1]),
        "macd_signal": r(macd.signal[-1]),
        "macd_hist": r(macd.histogram[-1]),
        "macd_hist_prev": r(macd.histogram[-2]),
        "atr_14": r(atr[-1]),
        "atr_pct": r(atr[-1] / price),
        "atr_ratio": _ratio(atr[-1], atr[-RATIO_WINDOW:]),
        "bb_upper": r(bands.upper[-1]),
        "bb_middle": r(bands.middle[-1]),
        "bb_lower": r(bands.lower[-1]),
        "bb_width": r(widths[-1]),
        "bb_width_ratio": _ratio(widths[-1], widths[-RATIO_WINDOW:]),
        "adx_14": r(directional.adx[-1]),
        "plus_di_14": r(directional.plus_di[-1]),
        "minus_di_14": r(directional.minus_di[-1]),
        "chop_14": r(ti.choppiness(prices.tail(CHOP_PERIOD + 1), CHOP_PERIOD)[-1]),
        "donchian_high_20": max(c.high for c in prior),
        "donchian_low_20": min(c.low for c in prior),
    }


def trend_of(ind: dict[str, Decimal]) -> str:
    """up when EMA20 > EMA50 with the price above EMA50, down for the mirror, else sideways."""
    if ind["ema_20"] > ind["ema_50"] and ind["price"] > ind["ema_50"]:
        return "up"
    if ind["ema_20"] < ind["ema_50"] and ind["price"] < ind["ema_50"]:
        return "down"
    return "sideways"


def _signals(ind: dict[str, Decimal]) -> list[str]:
    signals = ["ema_20_above_ema_50" if ind["ema_20"] > ind["ema_50"] else "ema_20_below_ema_50"]
    if ind["ema_20_prev"] <= ind["ema_50_prev"] and ind["ema_20"] > ind["ema_50"]:
        signals.append("ema_bullish_cross")
    if ind["ema_20_prev"] >= ind["ema_50_prev"] and ind["ema_20"] < ind["ema_50"]:
        signals.append("ema_bearish_cross")
    signals.append("macd_above_signal" if ind["macd_hist"] > 0 else "macd_below_signal")
    if ind["rsi_14"] >= 70:
        signals.append("rsi_overbought")
    elif ind["rsi_14"] <= 30:
        signals.append("rsi_oversold")
    if ind["price"] > ind["bb_upper"]:
        signals.append("above_upper_band")
    elif ind["price"] < ind["bb_lower"]:
        signals.append("below_lower_band")
    if ind["adx_14"] >= 25:
        signals.append("strong_trend")
    elif ind["adx_14"] < 20:
        signals.append("weak_trend")
    if ind["bb_width_ratio"] <= SQUEEZE_RATIO:
        signals.append("bb_squeeze")
    return signals


def _clamp(value: float, low: float = -1.0, high: float = 1.0) -> float:
    return round(min(high, max(low, value)), 3)


@dataclass(frozen=True)
class Measurements:
    """Everything measured about a snapshot before any model is asked."""

    interval: int  # the primary timeframe, in minutes
    indicators: dict[str, Decimal]
    signals: list[str]
    trend_direction: str
    trend_strength: float  # ADX / 50, capped at 1
    momentum: float  # half RSI's distance from 50, half the MACD histogram in half-ATRs
    support: Decimal | None
    resistance: Decimal | None


def measure(snapshot: MarketSnapshot, windows: ti.PriceWindows | None = None) -> Measurements:
    """Indicators, signals, trend, momentum and levels of every usable timeframe."""
    usable = sorted(iv for iv, candles in snapshot.candles.items() if len(candles) >= MIN_CANDLES)
    if not usable:
        have = {iv: len(c) for iv, c in snapshot.candles.items()}
        raise InputError(f"{snapshot.symbol}: need {MIN_CANDLES} candles on some interval, have {have}")
    primary, *higher = usable
    indicators = timeframe_indicators(snapshot.candles[primary], windows)
    signals = _signals(indicators)
    higher_trends: list[int] = []
    for interval in higher:
        tf = timeframe_indicators(snapshot.candles[interval], windows)
        indicators.update({f"{interval}m_{key}": value for key, value in tf.items()})
        trend = trend_of(tf)
        signals.append(f"{interval}m_trend_{trend}")
        higher_trends.append({"up": 1, "down": -1, "sideways": 0}[trend])
    if higher_trends:
        indicators["higher_tf_trend"] = ti.rounded(Decimal(sum(higher_trends)) / len(higher_trends))
    rsi_part = (float(indicators["rsi_14"]) - 50) / 50
    atr = indicators["atr_14"]
    macd_part = _clamp(float(indicators["macd_hist"] / (atr / 2))) if atr else 0.0
    levels = ti.support_resistance(snapshot.candles[primary], snapshot.price)
    return Measurements(
        interval=primary,
        indicators=indicators,
        signals=signals,
        trend_direction=trend_of(indicators),
        trend_strength=_clamp(float(indicators["adx_14"]) / 50, low=0.0),
        momentum=_clamp(0.5 * rsi_part + 0.5 * macd_part),
        support=levels.support,
        resistance=levels.resistance,
    )


def ta_prompt(symbol: str, m: Measurements) -> str:
    lines = "\n".join(f"  {key}: {value}" for key, value in m.indicators.items())
    return (
        f"You are a technical analyst. Judge {symbol} from these indicators of its "
        f"{m.interval}-minute candles (keys prefixed with an interval come from that timeframe):\n"
        f"{lines}\n"
        f"Measured trend: {m.trend_direction}; signals: {', '.join(m.signals)}; "
        f"support {m.support}; resistance {m.resistance}.\n"
        'Answer with one JSON object: {"bias": "long|short|neutral", "confidence": 0..1, '
        '"trend": "up|down|sideways", "signals": ["..."], "reasoning": "..."}'
    )


class TechnicalAnalysisAgent:
    """Measures a snapshot and asks `model` (default: the offline analyst) for the bias.
    It keeps the last windows it measured: the next snapshot shares most of their candles."""

    def __init__(self, model: LanguageModel | None = None, *, timeout_s: float = 30.0) -> None:
        self.model = model if model is not None else OfflineTechnicalAnalyst()
        self.timeout_s = timeout_s
        self._windows = ti.PriceWindows()

    async def process(self, snapshot: MarketSnapshot) -> TAOutput:
        m = measure(snapshot, self._windows)
        context = ModelContext(task="technical_analysis", snapshot=snapshot, indicators=m.indicators)
        parsed = await ask(
            self.model,
            ta_prompt(snapshot.symbol, m),
            context=context,
            schema=TAAnswer,
            timeout_s=self.timeout_s,
        )
        answer = parsed.answer if parsed.answer is not None else TAAnswer.fallback(parsed.errors)
        extra = answer.signals if parsed.answer is not None else ["ta_model_fallback"]
        return TAOutput(
            symbol=snapshot.symbol,
            bias=answer.bias,
            confidence=answer.confidence,
            trend_direction=answer.trend or m.trend_direction,
            trend_strength=m.trend_strength,
            momentum=m.momentum,
            indicators=m.indicators,
            signals=list(dict.fromkeys([*m.signals, *extra])),
            support=m.support,
            resistance=m.resistance,
        )

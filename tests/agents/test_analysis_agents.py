"""TechnicalAnalysisAgent and RegimeDetectionAgent on synthetic markets."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from core.decision.agents import REGIME_PRESETS, RegimeDetectionAgent, TechnicalAnalysisAgent
from core.decision.agents.technical_analysis import MIN_CANDLES
from core.domain.enums import Bias, Regime
from core.domain.errors import ConfigError, InputError
from core.domain.models import MarketSnapshot


async def test_uptrend_reads_long_and_trending_bull(uptrend: MarketSnapshot) -> None:
    ta = await TechnicalAnalysisAgent().process(uptrend)
    assert (ta.bias, ta.trend_direction) == (Bias.LONG, "up")
    assert ta.confidence >= 0.6 and ta.trend_strength > 0.5 and ta.momentum > 0
    ind = ta.indicators
    assert ind["price"] == uptrend.price
    assert ind["ema_20"] > ind["ema_50"] and ind["adx_14"] >= 25
    assert ind["bb_lower"] < ind["bb_middle"] == ind["sma_20"] < ind["bb_upper"]
    assert ind["240m_ema_20"] > ind["240m_ema_50"] and ind["higher_tf_trend"] == 1
    assert "240m_trend_up" in ta.signals and "strong_trend" in ta.signals
    assert ta.support is not None and ta.support < uptrend.price
    regime = await RegimeDetectionAgent().process(uptrend, ta)
    assert regime.regime is Regime.TRENDING_BULL
    assert regime.volatility == pytest.approx(float(ind["atr_14"] / uptrend.price))


async def test_downtrend_reads_short_and_trending_bear(downtrend: MarketSnapshot) -> None:
    ta = await TechnicalAnalysisAgent().process(downtrend)
    assert (ta.bias, ta.trend_direction) == (Bias.SHORT, "down")
    assert ta.momentum < 0
    assert (await RegimeDetectionAgent().process(downtrend, ta)).regime is Regime.TRENDING_BEAR


async def test_flat_noise_is_ranging_or_choppy_without_a_strong_read(flat: MarketSnapshot) -> None:
    ta = await TechnicalAnalysisAgent().process(flat)
    assert ta.trend_strength < 0.4
    assert ta.confidence < 0.6
    regime = await RegimeDetectionAgent().process(flat)  # computes its own indicators without ta
    assert regime.regime in (Regime.RANGING, Regime.CHOPPY)


async def test_the_shortest_timeframe_with_enough_candles_is_primary(markets: Any) -> None:
    closes = markets.flat_closes(100, seed=1)
    short = markets.candles(closes[: MIN_CANDLES - 1], 15)
    snapshot = markets.snapshot({15: short, 60: markets.candles(closes, 60)})
    ta = await TechnicalAnalysisAgent().process(snapshot)
    assert ta.indicators["price"] == snapshot.candles[60][-1].close
    assert not any(key.startswith("15m_") for key in ta.indicators)


async def test_too_few_candles_is_an_input_error(markets: Any) -> None:
    snapshot = markets.snapshot({60: markets.candles(markets.flat_closes(MIN_CANDLES - 1, seed=1), 60)})
    with pytest.raises(InputError, match=f"need {MIN_CANDLES} candles"):
        await TechnicalAnalysisAgent().process(snapshot)


async def test_ta_takes_bias_from_its_model(uptrend: MarketSnapshot, scripted: Callable[..., Any]) -> None:
    model = scripted("llm", 'Sure. {"trend": "sideways", "bias": "short", "confidence": 0.8, "signals": ["wedge"]}')
    ta = await TechnicalAnalysisAgent(model).process(uptrend)
    assert (ta.bias, ta.confidence, ta.trend_direction) == (Bias.SHORT, 0.8, "sideways")
    assert "wedge" in ta.signals
    assert "rsi_14" in model.prompts[0] and '"bias"' in model.prompts[0]


async def test_ta_falls_back_to_neutral_when_its_model_fails(
    uptrend: MarketSnapshot, scripted: Callable[..., Any]
) -> None:
    ta = await TechnicalAnalysisAgent(scripted("llm", "no idea", "still no idea")).process(uptrend)
    assert (ta.bias, ta.confidence) == (Bias.NEUTRAL, 0)
    assert "ta_model_fallback" in ta.signals
    assert ta.trend_direction == "up"  # measurements survive the model's failure


def _regime_text(regime: Regime, confidence: float = 0.8) -> str:
    return f'{{"regime": "{regime.value}", "confidence": {confidence}}}'


async def test_regime_changes_only_after_consecutive_confirmations(
    uptrend: MarketSnapshot, scripted: Callable[..., Any]
) -> None:
    bull, bear = Regime.TRENDING_BULL, Regime.TRENDING_BEAR
    readings = [bull, bear, bull, bear, bear, bull]
    model = scripted("llm", *[_regime_text(r) for r in readings])
    agent = RegimeDetectionAgent(model, confirmations=2)
    reported = [(await agent.process(uptrend)).regime for _ in readings]
    # bear once is held off; bull resets the count; bear twice switches; bull once is held off
    assert reported == [bull, bull, bull, bull, bear, bear]
    assert agent.current("BTC/USDT") is bear


async def test_hysteresis_is_per_symbol(uptrend: MarketSnapshot, scripted: Callable[..., Any]) -> None:
    model = scripted("llm", _regime_text(Regime.RANGING), _regime_text(Regime.CHOPPY))
    agent = RegimeDetectionAgent(model, confirmations=3)
    eth = MarketSnapshot("ETH/USD", uptrend.timestamp, uptrend.ticker, uptrend.candles)
    assert (await agent.process(uptrend)).regime is Regime.RANGING
    assert (await agent.process(eth)).regime is Regime.CHOPPY  # first reading of ETH is adopted at once
    held = await agent.process(uptrend)
    assert held.regime is Regime.RANGING
    assert "choppy seen 1/3 times" in held.reasons[-1]


async def test_a_failed_regime_answer_reports_choppy_and_keeps_the_state(
    uptrend: MarketSnapshot, scripted: Callable[..., Any]
) -> None:
    model = scripted(
        "llm", _regime_text(Regime.TRENDING_BULL), RuntimeError("down"), _regime_text(Regime.TRENDING_BULL)
    )
    agent = RegimeDetectionAgent(model, confirmations=2)
    await agent.process(uptrend)
    failed = await agent.process(uptrend)
    assert (failed.regime, failed.confidence) == (Regime.CHOPPY, 0)
    assert agent.current("BTC/USDT") is Regime.TRENDING_BULL


def test_presets_cover_every_regime_and_calm_markets_trade_fuller() -> None:
    assert set(REGIME_PRESETS) == set(Regime)
    calm, wild = REGIME_PRESETS[Regime.TRENDING_BULL], REGIME_PRESETS[Regime.CHOPPY]
    assert calm.position_size_factor > wild.position_size_factor
    assert calm.min_confidence < wild.min_confidence
    assert all(p.stop_atr_multiple > 0 and Decimal(0) < p.position_size_factor <= 1 for p in REGIME_PRESETS.values())


def test_confirmations_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        RegimeDetectionAgent(confirmations=0)

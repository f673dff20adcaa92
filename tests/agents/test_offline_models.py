"""The offline models: each answers valid, deterministic JSON; each follows its strategy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.decision.agents import RegimeDetectionAgent, TechnicalAnalysisAgent
from core.decision.llm.interface import ModelContext
from core.decision.llm.offline import (
    ContrarianRisk,
    MeanReverter,
    OfflineConflictResolver,
    OfflineRegimeClassifier,
    OfflineTechnicalAnalyst,
    TrendFollower,
    answer_json,
    default_trading_models,
)
from core.decision.llm.parsing import ConflictAction, ConflictAnswer, RegimeAnswer, TAAnswer, VoteAnswer, parse_answer
from core.domain.enums import Action, Bias, Regime
from core.domain.errors import ModelError
from core.domain.models import MarketSnapshot, ModelDecision, RegimeOutput, TAOutput, Ticker, TradingDecisionOutput

PRICE = Decimal(100)
BASE_INDICATORS = {
    "price": PRICE,
    "ema_20": Decimal(99),
    "ema_50": Decimal(97),
    "macd": Decimal("0.5"),
    "macd_hist": Decimal("0.1"),
    "macd_hist_prev": Decimal("0.05"),
    "rsi_14": Decimal(60),
    "adx_14": Decimal(30),
    "plus_di_14": Decimal(30),
    "minus_di_14": Decimal(10),
    "atr_14": Decimal(2),
    "bb_upper": Decimal(104),
    "bb_lower": Decimal(94),
    "bb_width_ratio": Decimal("1.1"),
    "donchian_high_20": Decimal(101),
    "donchian_low_20": Decimal(90),
    "higher_tf_trend": Decimal(1),
    "atr_ratio": Decimal(1),
    "chop_14": Decimal(40),
}


def _snapshot(price: Decimal = PRICE) -> MarketSnapshot:
    return MarketSnapshot("BTC/USDT", 0.0, Ticker(price, price, price), {})


def _ta(bias: Bias = Bias.LONG, confidence: float = 0.8, **overrides: Decimal) -> TAOutput:
    return TAOutput("BTC/USDT", bias, confidence, "up", 0.6, 0.4, {**BASE_INDICATORS, **overrides})


def _regime(regime: Regime = Regime.TRENDING_BULL, confidence: float = 0.8) -> RegimeOutput:
    return RegimeOutput("BTC/USDT", regime, confidence, 0.02)


def _vote_context(ta: TAOutput, regime: RegimeOutput | None = None, stop_atr: Decimal | None = None) -> ModelContext:
    return ModelContext(
        "trading_decision", _snapshot(), ta.indicators, ta, regime or _regime(), stop_atr_multiple=stop_atr
    )


async def _vote(model: object, context: ModelContext) -> VoteAnswer:
    reply = await model.generate("ignored by offline models", context=context)  # type: ignore[attr-defined]
    return parse_answer(reply.text, VoteAnswer)


async def _market_context(snapshot: MarketSnapshot) -> ModelContext:
    ta = await TechnicalAnalysisAgent().process(snapshot)
    regime = await RegimeDetectionAgent().process(snapshot, ta)
    return ModelContext("trading_decision", snapshot, ta.indicators, ta, regime, stop_atr_multiple=Decimal("1.5"))


def test_default_models_are_the_six_strategies() -> None:
    names = [m.name for m in default_trading_models()]
    assert names == [
        "trend_follower",
        "mean_reverter",
        "momentum",
        "breakout",
        "regime_aligned",
        "contrarian_risk",
    ]


@pytest.mark.parametrize("market", ["uptrend", "downtrend", "flat"])
async def test_every_model_answers_valid_deterministic_priced_json(market: str, request: pytest.FixtureRequest) -> None:
    context = await _market_context(request.getfixturevalue(market))
    atr = context.ta.indicators["atr_14"]  # type: ignore[union-attr]
    for model in default_trading_models():
        first = await model.generate("p", context=context)
        again = await model.generate("p", context=context)
        assert first.text == again.text, model.name
        assert first.model == model.name
        vote = parse_answer(first.text, VoteAnswer)
        assert vote.entry == context.snapshot.price
        if vote.action is Action.HOLD:
            assert vote.stop_loss is None and vote.take_profit is None
            continue
        assert vote.stop_loss is not None and vote.take_profit is not None
        risk = abs(vote.entry - vote.stop_loss)
        assert risk == pytest.approx(Decimal("1.5") * atr, rel=Decimal("1e-9"))
        assert abs(vote.take_profit - vote.entry) >= 2 * risk


async def test_the_regime_preset_sets_the_stop_distance() -> None:
    vote = await _vote(TrendFollower(), _vote_context(_ta(), stop_atr=Decimal("2.5")))
    assert vote.action is Action.BUY
    assert vote.stop_loss == Decimal(95)  # 100 - 2.5 * ATR 2
    assert vote.take_profit == Decimal("112.5")  # 2.5R


async def test_trend_follower_needs_adx_of_20() -> None:
    assert (await _vote(TrendFollower(), _vote_context(_ta(adx_14=Decimal(19))))).action is Action.HOLD
    short = _ta(Bias.SHORT, ema_20=Decimal(101), ema_50=Decimal(103), plus_di_14=Decimal(10), minus_di_14=Decimal(30))
    assert (await _vote(TrendFollower(), _vote_context(short))).action is Action.SELL


async def test_mean_reverter_fades_stretches_only_without_a_trend() -> None:
    stretched_low = _ta(rsi_14=Decimal(25), bb_lower=Decimal(101), adx_14=Decimal(15))
    vote = await _vote(MeanReverter(), _vote_context(stretched_low))
    assert vote.action is Action.BUY
    assert (vote.stop_loss, vote.take_profit) == (Decimal(97), Decimal(106))  # 1.5 ATR, 2R
    trending = _ta(rsi_14=Decimal(25), bb_lower=Decimal(101), adx_14=Decimal(30))
    assert (await _vote(MeanReverter(), _vote_context(trending))).action is Action.HOLD
    stretched_high = _ta(rsi_14=Decimal(75), bb_upper=Decimal(99), adx_14=Decimal(15))
    assert (await _vote(MeanReverter(), _vote_context(stretched_high))).action is Action.SELL


async def test_contrarian_holds_unless_everything_agrees_and_rsi_is_sane() -> None:
    assert (await _vote(ContrarianRisk(), _vote_context(_ta()))).action is Action.BUY
    split = _ta(macd_hist=Decimal("-0.1"))
    assert (await _vote(ContrarianRisk(), _vote_context(split))).action is Action.HOLD
    ranging = _regime(Regime.RANGING)
    assert (await _vote(ContrarianRisk(), _vote_context(_ta(), ranging))).action is Action.HOLD
    overbought = _ta(rsi_14=Decimal(85))
    vote = await _vote(ContrarianRisk(), _vote_context(overbought))
    assert vote.action is Action.HOLD and "not chasing" in vote.reasoning


async def test_regime_aligned_needs_the_regime_and_follows_it() -> None:
    model = next(m for m in default_trading_models() if m.name == "regime_aligned")
    assert (await _vote(model, _vote_context(_ta()))).action is Action.BUY
    assert (await _vote(model, _vote_context(_ta(), _regime(Regime.CHOPPY)))).action is Action.HOLD
    with pytest.raises(ModelError, match="needs the regime"):
        await model.generate("p", context=ModelContext("trading_decision", _snapshot(), ta=_ta()))


async def test_models_refuse_other_tasks_and_missing_inputs() -> None:
    with pytest.raises(ModelError, match="answers trading_decision only"):
        await TrendFollower().generate("p", context=ModelContext("regime", _snapshot(), ta=_ta()))
    with pytest.raises(ModelError, match="needs the technical analysis"):
        await TrendFollower().generate("p", context=ModelContext("trading_decision", _snapshot()))
    bare = TAOutput("BTC/USDT", Bias.LONG, 0.8, "up", 0.5, 0.5, {"atr_14": Decimal(1)})
    with pytest.raises(ModelError, match="ema_20, ema_50, adx_14"):
        await TrendFollower().generate("p", context=ModelContext("trading_decision", _snapshot(), ta=bare))


def test_answer_json_writes_decimals_as_exact_numbers() -> None:
    text = answer_json({"entry": Decimal("45000.10"), "stop_loss": None, "action": "BUY", "confidence": 0.5})
    assert text == '{"entry": 45000.10, "stop_loss": null, "action": "BUY", "confidence": 0.5}'


async def test_offline_analyst_reads_indicators_into_a_bias() -> None:
    bullish = ModelContext("technical_analysis", _snapshot(), BASE_INDICATORS)
    answer = parse_answer((await OfflineTechnicalAnalyst().generate("p", context=bullish)).text, TAAnswer)
    assert answer.bias is Bias.LONG
    # all five checks agree and ADX >= 25: 0.2 + 0.75 * 1 * 1
    assert answer.confidence == 0.95
    mixed = {
        **BASE_INDICATORS,
        "macd_hist": Decimal(-1),
        "rsi_14": Decimal(50),
        "higher_tf_trend": Decimal(0),
    }
    answer = parse_answer(
        (
            await OfflineTechnicalAnalyst().generate(
                "p", context=ModelContext("technical_analysis", _snapshot(), mixed)
            )
        ).text,
        TAAnswer,
    )
    assert answer.bias is Bias.NEUTRAL


@pytest.mark.parametrize(
    ("overrides", "ta_trend", "expected"),
    [
        ({}, "up", Regime.TRENDING_BULL),
        ({"atr_ratio": Decimal("1.6")}, "up", Regime.VOLATILE_BULL),
        ({}, "down", Regime.TRENDING_BEAR),
        ({"atr_ratio": Decimal(2)}, "down", Regime.VOLATILE_BEAR),
        ({"adx_14": Decimal(15), "bb_width_ratio": Decimal("0.5")}, "sideways", Regime.BREAKOUT_POTENTIAL),
        ({"adx_14": Decimal(15), "chop_14": Decimal(70)}, "sideways", Regime.CHOPPY),
        ({"adx_14": Decimal(15)}, "sideways", Regime.RANGING),
    ],
)
async def test_offline_regime_classifier_rules(overrides: dict[str, Decimal], ta_trend: str, expected: Regime) -> None:
    ta = TAOutput("BTC/USDT", Bias.NEUTRAL, 0.5, ta_trend, 0.5, 0.0, {})
    context = ModelContext("regime", _snapshot(), {**BASE_INDICATORS, **overrides}, ta=ta)
    answer = parse_answer((await OfflineRegimeClassifier().generate("p", context=context)).text, RegimeAnswer)
    assert answer.regime is expected


def _decision(action: Action, consensus: float) -> TradingDecisionOutput:
    votes = [ModelDecision(f"m{i}", action, 0.7) for i in range(3)]
    return TradingDecisionOutput("BTC/USDT", action, consensus, 0.7, votes)


@pytest.mark.parametrize(
    ("action", "consensus", "bias", "regime", "ruling", "size"),
    [
        (Action.HOLD, 1.0, Bias.LONG, Regime.TRENDING_BULL, ConflictAction.WAIT, Decimal(0)),
        (Action.BUY, 1.0, Bias.SHORT, Regime.TRENDING_BULL, ConflictAction.ABORT, Decimal(0)),
        (Action.BUY, 0.5, Bias.NEUTRAL, Regime.TRENDING_BULL, ConflictAction.WAIT, Decimal(0)),
        (Action.BUY, 0.5, Bias.LONG, Regime.VOLATILE_BULL, ConflictAction.MODIFY, Decimal("0.5")),
        (Action.BUY, 0.8, Bias.LONG, Regime.TRENDING_BULL, ConflictAction.PROCEED, Decimal(1)),
    ],
)
async def test_offline_conflict_resolver_rulings(
    action: Action, consensus: float, bias: Bias, regime: Regime, ruling: ConflictAction, size: Decimal
) -> None:
    context = ModelContext(
        "conflict", _snapshot(), ta=_ta(bias), regime=_regime(regime), decision=_decision(action, consensus)
    )
    answer = parse_answer((await OfflineConflictResolver().generate("p", context=context)).text, ConflictAnswer)
    assert (answer.action, answer.size_factor) == (ruling, size)
    if ruling is ConflictAction.MODIFY:
        assert "reduce position" in answer.reasoning.lower()

"""RiskManagementEngine: every rule approves, reduces or rejects with reasons; exact sizing."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from core.decision.risk import RiskManagementEngine
from core.domain.config import RiskSettings
from core.domain.enums import Regime, Side, VerdictStatus
from core.domain.models import RiskState, TradeProposal

# defaults: risk 1% per trade, max position 25% of equity, min confidence 0.55, min R:R 1.5,
# stop distance 0.2%..10%, 3 open positions
ENGINE = RiskManagementEngine(RiskSettings())
RICH = RiskState(equity=Decimal(10000), available_quote=Decimal(10000))
LONG = TradeProposal("BTC/USDT", Side.BUY, Decimal(100), Decimal(95), Decimal(110), confidence=0.7)
SHORT = TradeProposal("BTC/USDT", Side.SELL, Decimal(100), Decimal(105), Decimal(90), confidence=0.7)


def _with(proposal: TradeProposal, **changes: object) -> TradeProposal:
    return dataclasses.replace(proposal, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("proposal", [LONG, SHORT], ids=["buy", "sell"])
def test_risk_sized_volume_is_approved(proposal: TradeProposal) -> None:
    verdict = ENGINE.validate_trade(proposal, RICH)
    assert verdict.status is VerdictStatus.APPROVED and verdict.is_approved()
    assert verdict.proposal.volume == Decimal(20)  # 10000 * 1% / stop distance 5
    assert verdict.proposal == dataclasses.replace(proposal, volume=Decimal(20))
    assert "size:" in verdict.reasons[0] and "stop distance 5" in verdict.reasons[0]


def test_sizing_arithmetic_is_exact_decimal() -> None:
    engine = RiskManagementEngine(
        RiskSettings(
            risk_per_trade=Decimal("0.0075"),
            max_position_pct=Decimal(1),
            max_total_exposure_pct=Decimal(10),
            max_correlated_exposure_pct=Decimal(10),
        )
    )
    state = RiskState(equity=Decimal("12345.67"), available_quote=Decimal(10**9))
    proposal = TradeProposal("BTC/USDT", Side.BUY, Decimal("43210.5"), Decimal("42800.25"), Decimal("44100"), 0.9)
    volume = engine.validate_trade(proposal, state).proposal.volume
    assert volume == Decimal("92.592525") / Decimal("410.25")  # 12345.67 * 0.0075 over 410.25
    assert isinstance(volume, Decimal)


def test_max_position_pct_caps_and_reduces() -> None:
    verdict = ENGINE.validate_trade(_with(LONG, stop_loss=Decimal(98), take_profit=Decimal(104)), RICH)
    # risk allows 100 / 2 = 50, but 25% of 10000 at 100 is 25
    assert (verdict.status, verdict.proposal.volume) == (VerdictStatus.REDUCED, Decimal(25))
    assert verdict.is_approved()
    assert any(
        r.startswith("max_position_pct: 25.00% of equity 10000") and "caps the volume at 25" in r
        for r in verdict.reasons
    )


def test_available_quote_caps_and_reduces_with_leverage_counted() -> None:
    poor = RiskState(equity=Decimal(10000), available_quote=Decimal(1000))
    exact = RiskManagementEngine(RiskSettings(entry_slippage_pct=Decimal(0)))
    verdict = exact.validate_trade(LONG, poor)
    assert (verdict.status, verdict.proposal.volume) == (VerdictStatus.REDUCED, Decimal(10))
    assert any(r.startswith("available_quote: 1000") for r in verdict.reasons)
    margin = RiskManagementEngine(RiskSettings(max_leverage=Decimal(2), entry_slippage_pct=Decimal(0)))
    levered = margin.validate_trade(_with(LONG, leverage=Decimal(2)), poor)
    assert (levered.status, levered.proposal.volume) == (VerdictStatus.APPROVED, Decimal(20))
    refused = ENGINE.validate_trade(_with(LONG, leverage=Decimal(2)), poor)
    assert refused.reasons == ["leverage: 2x is above the maximum 1x"]


def test_available_quote_cap_leaves_room_for_the_fee_and_slippage() -> None:
    """A buy sized to the last quote unit at the snapshot price is refused by the
    exchange: it fills at the ask plus impact and pays the taker fee on top."""
    poor = RiskState(equity=Decimal(10000), available_quote=Decimal(1000), entry_fee=Decimal("0.0026"))
    verdict = ENGINE.validate_trade(LONG, poor)
    assert verdict.status is VerdictStatus.REDUCED
    volume = verdict.proposal.volume
    assert volume is not None
    assert volume == Decimal(1000) / (Decimal(100) * Decimal("1.0076"))
    assert volume * Decimal(100) * (1 + Decimal("0.0026") + Decimal("0.005")) <= Decimal(1000)
    assert any("plus 0.26% fee and 0.50% slippage caps the volume" in r for r in verdict.reasons)


def test_operator_volume_is_kept_when_allowed_and_reduced_when_not() -> None:
    smaller = ENGINE.validate_trade(_with(LONG, volume=Decimal(5)), RICH)
    assert (smaller.status, smaller.proposal.volume) == (VerdictStatus.APPROVED, Decimal(5))
    larger = ENGINE.validate_trade(_with(LONG, volume=Decimal(30)), RICH)
    assert (larger.status, larger.proposal.volume) == (VerdictStatus.REDUCED, Decimal(20))
    assert "volume: requested 30 is above the allowed 20; reduced" in larger.reasons


@pytest.mark.parametrize("volume", [Decimal(0), Decimal(-1)])
def test_non_positive_operator_volume_is_rejected(volume: Decimal) -> None:
    verdict = ENGINE.validate_trade(_with(LONG, volume=volume), RICH)
    assert verdict.status is VerdictStatus.REJECTED and not verdict.is_approved()
    assert verdict.reasons == [f"volume: requested {volume} must be above 0"]


def test_no_quote_balance_leaves_nothing_to_trade() -> None:
    verdict = ENGINE.validate_trade(LONG, RiskState(equity=Decimal(10000), available_quote=Decimal(0)))
    assert verdict.status is VerdictStatus.REJECTED
    assert verdict.reasons[-1] == "volume: 0 after caps; nothing to trade"


def test_regime_preset_scales_size_and_raises_the_confidence_bar() -> None:
    choppy = _with(LONG, regime=Regime.CHOPPY, confidence=0.8)
    verdict = ENGINE.validate_trade(choppy, RICH)
    assert (verdict.status, verdict.proposal.volume) == (VerdictStatus.APPROVED, Decimal(5))  # 20 * 0.25
    assert any(r.startswith("regime: choppy preset sizes at 0.25x") for r in verdict.reasons)
    timid = ENGINE.validate_trade(_with(choppy, confidence=0.7), RICH)
    assert timid.status is VerdictStatus.REJECTED
    assert timid.reasons == ["confidence: 0.7 is below the minimum 0.75 (regime choppy)"]


@pytest.mark.parametrize(
    ("changes", "state", "reason"),
    [
        ({"stop_loss": Decimal(0)}, RICH, "stop_loss: required, got 0; every trade needs a stop above 0"),
        ({"stop_loss": Decimal(101)}, RICH, "stop_loss: 101 must be below entry 100 for a buy"),
        ({"take_profit": Decimal(99)}, RICH, "take_profit: 99 must be above entry 100 for a buy"),
        (
            {"stop_loss": Decimal("99.9"), "take_profit": Decimal(101)},
            RICH,
            "stop_distance: 0.10% of entry is below the minimum 0.20%",
        ),
        (
            {"stop_loss": Decimal(80), "take_profit": Decimal(150)},
            RICH,
            "stop_distance: 20.00% of entry is above the maximum 10.00%",
        ),
        ({"take_profit": Decimal(106)}, RICH, "reward_risk: 1.20 is below the minimum 1.5"),
        ({"confidence": 0.5}, RICH, "confidence: 0.5 is below the minimum 0.55 (settings)"),
        ({}, dataclasses.replace(RICH, open_positions=3), "max_open_positions: 3 open, the limit is 3"),
        ({}, dataclasses.replace(RICH, equity=Decimal(0)), "equity: 0 leaves nothing to risk"),
        ({"entry_price": Decimal(0)}, RICH, "entry: price 0 must be above 0"),
    ],
)
def test_each_rule_rejects_with_its_numbers(changes: dict[str, object], state: RiskState, reason: str) -> None:
    proposal = _with(LONG, **changes)
    verdict = ENGINE.validate_trade(proposal, state)
    assert verdict.status is VerdictStatus.REJECTED
    assert verdict.reasons == [reason]
    assert verdict.proposal is proposal


def test_sell_stops_must_be_above_entry() -> None:
    verdict = ENGINE.validate_trade(_with(SHORT, stop_loss=Decimal(99)), RICH)
    assert verdict.reasons == ["stop_loss: 99 must be above entry 100 for a sell"]


def test_a_rejection_names_every_broken_rule() -> None:
    verdict = ENGINE.validate_trade(
        _with(LONG, take_profit=Decimal(106), confidence=0.1), dataclasses.replace(RICH, open_positions=5)
    )
    assert [r.split(":")[0] for r in verdict.reasons] == ["reward_risk", "confidence", "max_open_positions"]


def test_boundaries_are_inclusive() -> None:
    at_limits = _with(LONG, stop_loss=Decimal(90), take_profit=Decimal(115), confidence=0.55)  # 10%, 1.5R
    assert ENGINE.validate_trade(at_limits, RICH).is_approved()
    at_min_stop = _with(LONG, stop_loss=Decimal("99.8"), take_profit=Decimal("100.3"))  # 0.2%, 1.5R
    assert ENGINE.validate_trade(at_min_stop, RICH).is_approved()


class TestExposureAndCircuitBreakers:
    def test_total_exposure_caps_what_is_left(self) -> None:
        state = dataclasses.replace(RICH, total_exposure=Decimal(7000))
        verdict = ENGINE.validate_trade(LONG, state)  # 75% of 10000 less 7000 open = 500 -> 5 at 100
        assert (verdict.status, verdict.proposal.volume) == (VerdictStatus.REDUCED, Decimal(5))
        assert any(r.startswith("max_total_exposure_pct: 75.00% of equity less 7000") for r in verdict.reasons)

    def test_correlated_exposure_caps_the_same_asset(self) -> None:
        state = dataclasses.replace(RICH, open_exposure=Decimal(4500), total_exposure=Decimal(4500))
        verdict = ENGINE.validate_trade(LONG, state)  # 50% of 10000 less 4500 = 500 -> 5 at 100
        assert verdict.proposal.volume == Decimal(5)
        assert any(r.startswith("max_correlated_exposure_pct") for r in verdict.reasons)

    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"daily_pnl": Decimal(-300)}, "daily_loss: 300 lost, the breaker trips at 3.00% of equity (300)"),
            ({"weekly_pnl": Decimal(-800)}, "weekly_loss: 800 lost, the breaker trips at 7.00% of equity (700)"),
            ({"drawdown": Decimal("0.2")}, "drawdown: 20.00% from the peak, the breaker trips at 15.00%"),
        ],
    )
    def test_breakers_reject(self, changes: dict, reason: str) -> None:
        verdict = ENGINE.validate_trade(LONG, dataclasses.replace(RICH, **changes))
        assert verdict.status is VerdictStatus.REJECTED
        assert reason in verdict.reasons

    def test_a_loss_under_the_limit_trades(self) -> None:
        verdict = ENGINE.validate_trade(LONG, dataclasses.replace(RICH, daily_pnl=Decimal(-299)))
        assert verdict.is_approved()

    def test_a_losing_streak_raises_the_bar_and_cools_down(self) -> None:
        streak = dataclasses.replace(RICH, consecutive_losses=3, last_loss_at=1000.0, now=1000.0 + 600)
        cooling = ENGINE.validate_trade(_with(LONG, confidence=0.9), streak)
        assert "cooldown: 3 losses in a row; no new entry for another 3000 s" in cooling.reasons
        later = dataclasses.replace(streak, now=1000.0 + 3600)
        assert ENGINE.validate_trade(_with(LONG, confidence=0.9), later).is_approved()
        timid = ENGINE.validate_trade(_with(LONG, confidence=0.6), later)
        assert any(r.startswith("confidence: 0.6 is below the minimum 0.65") for r in timid.reasons)


def test_trading_history_from_closed_positions() -> None:
    from core.decision.risk import trading_history
    from core.domain.enums import PositionSide, PositionStatus
    from core.domain.models import Position

    def closed(pnl: int, at: float) -> Position:
        return Position(
            id=f"P{at}",
            symbol="BTC/USDT",
            side=PositionSide.LONG,
            size=Decimal(1),
            entry_price=Decimal(100),
            stop_loss=None,
            take_profit=None,
            status=PositionStatus.CLOSED,
            closed_at=at,
            realized_pnl=Decimal(pnl),
        )

    now = 1_767_268_800.0  # 2026-01-01T12:00Z
    positions = [
        closed(500, now - 10 * 86400),
        closed(-100, now - 3 * 86400),
        closed(-50, now - 3600),
        closed(-25, now - 60),
    ]
    realized = [(p.closed_at, p.realized_pnl) for p in reversed(positions) if p.realized_pnl is not None]
    history = trading_history(realized, Decimal(10_000), now)
    assert history.daily_pnl == Decimal(-75)  # today's two
    assert history.weekly_pnl == Decimal(-175)
    assert history.consecutive_losses == 3
    assert history.last_loss_at == now - 60
    assert history.drawdown == Decimal(175) / Decimal(10_175)  # peak 500, now 325 realized


def test_a_spot_sell_is_capped_by_the_base_held() -> None:
    short = TradeProposal("BTC/USDT", Side.SELL, Decimal(100), Decimal(102), Decimal(96), 0.9)
    nothing = ENGINE.validate_trade(short, dataclasses.replace(RICH, available_base=Decimal(0)))
    assert nothing.status is VerdictStatus.REJECTED
    assert "volume: 0 after caps; nothing to trade" in nothing.reasons
    some = ENGINE.validate_trade(short, dataclasses.replace(RICH, available_base=Decimal(3)))
    assert (some.status, some.proposal.volume) == (VerdictStatus.REDUCED, Decimal(3))
    assert any(r.startswith("available_base: a spot sell can sell only the 3 held") for r in some.reasons)

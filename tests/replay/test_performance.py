"""The report's figures against values worked out here, independently, with plain
float arithmetic on small curves whose answers can be checked by eye."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from itertools import pairwise

import pytest

from core.domain.enums import Action, PositionSide, PositionStatus, Side, VerdictStatus
from core.domain.models import ModelDecision, Position, RiskVerdict, TradeProposal
from core.flows.performance import (
    EquityPoint,
    buy_and_hold,
    curve_figures,
    max_drawdown,
    performance,
    tally_rejections,
    tally_votes,
    time_in_market,
    trade_figures,
)

D = Decimal
H = 3_600.0
YEAR = 365 * 86_400


def points(equities: list[str], prices: list[str] | None = None, held: list[str] | None = None) -> list[EquityPoint]:
    prices = prices or ["100"] * len(equities)
    held = held or ["0"] * len(equities)
    rows = zip(equities, prices, held, strict=True)
    return [EquityPoint(i * H, D(e), D(p), D(h)) for i, (e, p, h) in enumerate(rows)]


def closed(pnl: str) -> Position:
    return Position(
        id=f"P-{pnl}",
        symbol="BTC/USD",
        side=PositionSide.LONG,
        size=D(1),
        entry_price=D(100),
        stop_loss=D(90),
        take_profit=D(120),
        status=PositionStatus.CLOSED,
        realized_pnl=D(pnl),
    )


def test_drawdown_is_the_largest_fall_from_a_running_peak() -> None:
    # peaks 100 then 120; the deepest fall is 120 -> 90, a quarter
    assert max_drawdown([D(100), D(95), D(120), D(110), D(90), D(130)]) == 0.25
    assert max_drawdown([D(100), D(101), D(102)]) == 0.0


def test_curve_figures_match_a_hand_computation() -> None:
    equities = ["100", "110", "99", "108.9", "117.612"]
    figures = curve_figures([i * H for i in range(5)], [D(e) for e in equities])

    values = [float(e) for e in equities]
    rets = [b / a - 1 for a, b in pairwise(values)]  # 0.10, -0.10, 0.10, 0.08
    assert rets == pytest.approx([0.10, -0.10, 0.10, 0.08])
    mean = sum(rets) / 4
    sample_sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / 3)
    downside = math.sqrt((0.10**2) / 4)  # only -0.10 falls below zero, over all four periods
    per_year = YEAR / H  # hourly points
    total = 117.612 / 100 - 1
    assert figures.total_return == pytest.approx(total, abs=1e-6)
    assert figures.annualised_return == pytest.approx((1 + total) ** (YEAR / (4 * H)) - 1, rel=1e-5)
    assert figures.max_drawdown == pytest.approx(0.1, abs=1e-6)  # 110 -> 99
    assert figures.sharpe == pytest.approx(mean / sample_sd * math.sqrt(per_year), abs=1e-5)
    assert figures.sortino == pytest.approx(mean / downside * math.sqrt(per_year), abs=1e-5)
    assert (figures.start_equity, figures.end_equity) == (D(100), D("117.612"))


def test_a_flat_curve_has_no_sharpe_or_sortino_and_no_downside_means_no_sortino() -> None:
    flat = curve_figures([0.0, H, 2 * H], [D(100), D(100), D(100)])
    assert (flat.total_return, flat.max_drawdown, flat.sharpe, flat.sortino) == (0.0, 0.0, None, None)
    rising = curve_figures([0.0, H, 2 * H], [D(100), D(101), D(103)])
    assert rising.sharpe is not None and rising.sortino is None


def test_a_single_point_has_no_span_to_annualise() -> None:
    figures = curve_figures([0.0], [D(100)])
    assert (figures.total_return, figures.annualised_return, figures.sharpe) == (0.0, None, None)


def test_buy_and_hold_puts_the_first_equity_into_the_base_at_the_first_price() -> None:
    curve = points(["1000", "990", "1200"], prices=["50", "60", "40"])
    # 1000 / 50 = 20 units, marked at 60 and 40
    assert buy_and_hold(curve) == [D(1000), D(1200), D(800)]


def test_time_in_market_counts_the_periods_that_began_holding() -> None:
    curve = points(["100"] * 5, held=["0", "0.5", "0.5", "0", "0.2"])
    # periods begin at points 0..3: held at 1 and 2 -> half; the last point begins nothing
    assert time_in_market(curve) == 0.5


def test_trade_figures_win_rate_best_worst_and_average() -> None:
    positions = [closed("120"), closed("-50"), closed("0"), closed("30.5"), closed("-80")]
    open_one = replace(closed("0"), id="P-open", status=PositionStatus.OPEN, realized_pnl=None)
    figures = trade_figures([*positions, open_one])

    assert (figures.trades, figures.wins, figures.losses) == (5, 2, 2)  # breakeven is neither
    assert figures.win_rate == 0.4
    assert (figures.best, figures.worst) == (D(120), D(-80))
    assert figures.realized_pnl == D("20.5")
    assert figures.average == D("4.1")


def test_no_trades_means_no_win_rate() -> None:
    figures = trade_figures([])
    assert (figures.trades, figures.win_rate, figures.best, figures.average) == (0, None, None, None)


def test_performance_puts_the_strategy_next_to_buy_and_hold_over_the_same_span() -> None:
    curve = points(["1000", "1010", "1005", "1030"], prices=["10", "9", "11", "12"], held=["0", "5", "5", "0"])
    report = performance(curve, [closed("30")], fees=D("2.5"))

    assert (report.start, report.end, report.periods) == (0.0, 3 * H, 3)
    assert report.strategy.total_return == pytest.approx(0.03)
    assert report.buy_and_hold.total_return == pytest.approx(0.2)  # 10 -> 12
    assert report.buy_and_hold.max_drawdown == pytest.approx(0.1)  # 10 -> 9
    assert report.time_in_market == pytest.approx(2 / 3, abs=1e-6)
    assert report.fees == D("2.5") and report.trades.trades == 1


def test_votes_are_tallied_per_model_and_failed_votes_count_as_invalid() -> None:
    votes = [
        ModelDecision("a", Action.BUY, 0.7),
        ModelDecision("a", Action.BUY, 0.6),
        ModelDecision("a", Action.HOLD, 0.5),
        ModelDecision("b", Action.SELL, 0.6),
        ModelDecision("b", Action.HOLD, 0.0, valid=False),
    ]
    assert tally_votes(votes) == {"a": {"BUY": 2, "HOLD": 1}, "b": {"SELL": 1, "invalid": 1}}


def test_rejections_are_counted_per_rule_and_sizing_notes_do_not_count() -> None:
    proposal = TradeProposal("BTC/USD", Side.BUY, D(100), D(95), D(110), 0.7)
    verdicts = [
        RiskVerdict(VerdictStatus.REJECTED, ["confidence: 0.5 is below 0.55", "drawdown: 16% from the peak"], proposal),
        RiskVerdict(VerdictStatus.REJECTED, ["drawdown: 17% from the peak"], proposal),
        RiskVerdict(
            VerdictStatus.REJECTED,
            ["size: 1% of equity", "regime: choppy preset sizes at 0.25x", "volume: 0 after caps; nothing to trade"],
            proposal,
        ),
        RiskVerdict(VerdictStatus.APPROVED, ["size: 1% of equity"], proposal),
    ]
    assert tally_rejections(verdicts) == {"drawdown": 2, "confidence": 1, "volume": 1}

"""The figures of a replay's report, as pure functions over its equity curve and its
closed positions, so each can be checked by hand.

Conventions (the usual ones, stated because every tool differs a little):
- returns are simple returns of the equity between consecutive curve points;
- total return = last equity / first - 1; annualised = (1 + total) ** (year / span) - 1,
  a year being 365 days;
- maximum drawdown = the largest fall from a running peak, as a fraction of the peak;
- Sharpe = mean return / sample standard deviation (n - 1) * sqrt(periods per year),
  risk-free rate 0; Sortino = mean return / downside deviation * sqrt(periods per
  year), the downside deviation being sqrt(mean(min(r, 0) ** 2)) over every period.
  Either is None when its deviation is zero (no risk taken, or none on the downside);
- periods per year = a year over the median spacing of the curve's points;
- time in market = the share of periods that began holding base currency;
- buy-and-hold puts the first equity into the base currency at the first price, with
  no fees, and marks it at every point's price.
Equity and P&L are Decimal (money); ratios are floats rounded to six places.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise

from core.domain.enums import PositionStatus, VerdictStatus
from core.domain.models import ModelDecision, Position, RiskVerdict

YEAR_S = 365 * 86_400
MONEY_QUANTUM = Decimal("0.00000001")
"""Computed amounts (an average, the buy-and-hold equity) are kept to 8 decimals."""
_PLACES = 6


@dataclass(frozen=True)
class EquityPoint:
    """The account at one moment, valued in the quote currency."""

    time: float
    equity: Decimal  # quote + base * price
    price: Decimal
    held: Decimal  # base currency held


@dataclass(frozen=True)
class CurveFigures:
    start_equity: Decimal
    end_equity: Decimal
    total_return: float
    annualised_return: float | None  # None over an empty span
    max_drawdown: float
    sharpe: float | None
    sortino: float | None


@dataclass(frozen=True)
class TradeFigures:
    trades: int
    wins: int
    losses: int
    win_rate: float | None  # None without trades
    realized_pnl: Decimal
    best: Decimal | None
    worst: Decimal | None
    average: Decimal | None


@dataclass(frozen=True)
class Performance:
    start: float
    end: float
    periods: int
    strategy: CurveFigures
    buy_and_hold: CurveFigures
    trades: TradeFigures
    fees: Decimal
    time_in_market: float


def _ratio(value: float) -> float:
    return round(value, _PLACES)


def returns(equities: Sequence[Decimal]) -> list[float]:
    """Simple returns between consecutive equities (a zero equity gives no return)."""
    return [float(b / a - 1) for a, b in pairwise(equities) if a]


def periods_per_year(times: Sequence[float]) -> float | None:
    spacings = [b - a for a, b in pairwise(times) if b > a]
    return YEAR_S / statistics.median(spacings) if spacings else None


def max_drawdown(equities: Sequence[Decimal]) -> float:
    peak, worst = Decimal(0), Decimal(0)
    for equity in equities:
        peak = max(peak, equity)
        if peak > 0:
            worst = max(worst, (peak - equity) / peak)
    return _ratio(float(worst))


def sharpe(period_returns: Sequence[float], per_year: float) -> float | None:
    if len(period_returns) < 2:
        return None
    deviation = statistics.stdev(period_returns)
    if deviation == 0:
        return None
    return _ratio(statistics.fmean(period_returns) / deviation * math.sqrt(per_year))


def sortino(period_returns: Sequence[float], per_year: float) -> float | None:
    if not period_returns:
        return None
    downside = math.sqrt(statistics.fmean(min(r, 0.0) ** 2 for r in period_returns))
    if downside == 0:
        return None
    return _ratio(statistics.fmean(period_returns) / downside * math.sqrt(per_year))


def curve_figures(times: Sequence[float], equities: Sequence[Decimal]) -> CurveFigures:
    """The figures of one equity curve (at least one point)."""
    if not equities or len(times) != len(equities):
        raise ValueError("an equity curve needs as many times as equities, at least one")
    start, end = equities[0], equities[-1]
    total = float(end / start - 1) if start else 0.0
    span = times[-1] - times[0]
    annualised = None
    if span > 0:
        annualised = -1.0 if total <= -1 else _ratio((1 + total) ** (YEAR_S / span) - 1)
    per_year = periods_per_year(times)
    period_returns = returns(equities)
    return CurveFigures(
        start_equity=start,
        end_equity=end,
        total_return=_ratio(total),
        annualised_return=annualised,
        max_drawdown=max_drawdown(equities),
        sharpe=sharpe(period_returns, per_year) if per_year else None,
        sortino=sortino(period_returns, per_year) if per_year else None,
    )


def buy_and_hold(points: Sequence[EquityPoint]) -> list[Decimal]:
    """The equity of putting the first point's equity into base at its price, with no fees."""
    first = points[0]
    units = first.equity / first.price
    return [(units * p.price).quantize(MONEY_QUANTUM) for p in points]


def time_in_market(points: Sequence[EquityPoint]) -> float:
    """The share of periods that began with base currency held."""
    if len(points) < 2:
        return 0.0
    held = sum(1 for p in points[:-1] if p.held > 0)
    return _ratio(held / (len(points) - 1))


def trade_figures(positions: Iterable[Position]) -> TradeFigures:
    """Win rate, best and worst of the closed positions (net of fees; breakeven is no win)."""
    pnls = [p.realized_pnl for p in positions if p.status is PositionStatus.CLOSED and p.realized_pnl is not None]
    wins = sum(1 for pnl in pnls if pnl > 0)
    total = sum(pnls, Decimal(0))
    return TradeFigures(
        trades=len(pnls),
        wins=wins,
        losses=sum(1 for pnl in pnls if pnl < 0),
        win_rate=_ratio(wins / len(pnls)) if pnls else None,
        realized_pnl=total,
        best=max(pnls) if pnls else None,
        worst=min(pnls) if pnls else None,
        average=(total / len(pnls)).quantize(MONEY_QUANTUM) if pnls else None,
    )


def performance(points: Sequence[EquityPoint], positions: Iterable[Position], fees: Decimal) -> Performance:
    if not points:
        raise ValueError("a report needs at least one point of equity")
    times = [p.time for p in points]
    return Performance(
        start=times[0],
        end=times[-1],
        periods=len(points) - 1,
        strategy=curve_figures(times, [p.equity for p in points]),
        buy_and_hold=curve_figures(times, buy_and_hold(points)),
        trades=trade_figures(positions),
        fees=fees,
        time_in_market=time_in_market(points),
    )


def tally_votes(decisions: Iterable[ModelDecision]) -> dict[str, dict[str, int]]:
    """Per model, how often it voted each action; a vote that failed counts as "invalid"."""
    tally: dict[str, Counter[str]] = {}
    for d in decisions:
        tally.setdefault(d.model, Counter())[d.action.value if d.valid else "invalid"] += 1
    return {model: dict(sorted(counts.items())) for model, counts in sorted(tally.items())}


def tally_rejections(verdicts: Iterable[RiskVerdict]) -> dict[str, int]:
    """Per risk rule (the name before the colon of each reason), how many rejected
    proposals it refused, most frequent first. A proposal refused at sizing counts
    under its last reason only: the sizing notes before it explain, they do not refuse."""
    rules: Counter[str] = Counter()
    for verdict in verdicts:
        if verdict.status is not VerdictStatus.REJECTED:
            continue
        reasons = verdict.reasons
        if reasons and reasons[0].startswith("size:"):
            reasons = reasons[-1:]
        rules.update({reason.partition(":")[0].strip() for reason in reasons})
    return dict(sorted(rules.items(), key=lambda item: (-item[1], item[0])))

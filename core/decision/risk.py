"""The risk gate every proposal passes before an order exists: pure and deterministic.

Rules, all checked so that a rejection names every problem at once:
- entry above 0; a stop above 0 on the losing side of entry; the target on the
  winning side;
- stop distance within [min_stop_distance_pct, max_stop_distance_pct] of entry;
- reward/risk >= min_reward_risk;
- confidence >= min_confidence (or the regime preset's, when higher);
- fewer than max_open_positions open; equity above 0.
Sizing: volume = equity * risk_per_trade / stop distance, times the regime preset's
size factor, capped by max_position_pct of equity and by the quote balance (times
leverage) at the entry price plus the taker fee and entry_slippage_pct: the exchange
refuses a buy it could not pay at its worst fill. A cap that binds, or an operator's volume above the
allowed one, gives REDUCED. Volumes are not rounded to lot size here: the execution
layer knows the pair's lot decimals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from core.decision.agents.regime_detection import REGIME_PRESETS
from core.domain.config import RiskSettings
from core.domain.enums import Side, VerdictStatus
from core.domain.models import RiskState, RiskVerdict, TradeProposal


def _pct(fraction: Decimal) -> str:
    return f"{fraction * 100:.2f}%"


def _num(value: Decimal) -> str:
    """`value` for reasons people read: ten significant digits at most and never more
    than 8 decimals, without trailing zeros or exponent (1030.206505, 0.97067917)."""
    whole_digits = max(value.adjusted() + 1, 0)
    places = max(0, min(_REASON_DECIMALS, _REASON_DIGITS - whole_digits))
    if value.as_tuple().exponent < -places:  # type: ignore[operator]
        value = value.quantize(Decimal(1).scaleb(-places))
    return format(value.normalize(), "f")


_REASON_DECIMALS = 8
_REASON_DIGITS = 10


class RiskManagementEngine:
    def __init__(self, settings: RiskSettings) -> None:
        self.settings = settings

    def validate_trade(self, proposal: TradeProposal, state: RiskState) -> RiskVerdict:
        """Approve (volume set), reduce, or reject `proposal`; reasons name rule and numbers."""
        problems = self._violations(proposal, state)
        if problems:
            return RiskVerdict(VerdictStatus.REJECTED, problems, proposal)
        return self._sized(proposal, state)

    def _violations(self, p: TradeProposal, state: RiskState) -> list[str]:
        s = self.settings
        problems: list[str] = []
        if p.entry_price <= 0:
            return [f"entry: price {p.entry_price} must be above 0"]
        up = 1 if p.side is Side.BUY else -1  # which way a profit moves the price
        loss_side, win_side = ("below", "above") if p.side is Side.BUY else ("above", "below")
        if p.stop_loss <= 0:
            problems.append(f"stop_loss: required, got {p.stop_loss}; every trade needs a stop above 0")
        elif (p.entry_price - p.stop_loss) * up <= 0:
            problems.append(f"stop_loss: {p.stop_loss} must be {loss_side} entry {p.entry_price} for a {p.side.value}")
        if (p.take_profit - p.entry_price) * up <= 0:
            problems.append(
                f"take_profit: {p.take_profit} must be {win_side} entry {p.entry_price} for a {p.side.value}"
            )
        if not problems:
            distance = abs(p.entry_price - p.stop_loss) / p.entry_price
            low, high = s.min_stop_distance_pct, s.max_stop_distance_pct
            if distance < low:
                problems.append(f"stop_distance: {_pct(distance)} of entry is below the minimum {_pct(low)}")
            elif distance > high:
                problems.append(f"stop_distance: {_pct(distance)} of entry is above the maximum {_pct(high)}")
            if p.reward_risk < s.min_reward_risk:
                problems.append(f"reward_risk: {p.reward_risk:.2f} is below the minimum {s.min_reward_risk}")
        min_confidence, source = s.min_confidence, "settings"
        if p.regime is not None and REGIME_PRESETS[p.regime].min_confidence > min_confidence:
            min_confidence, source = REGIME_PRESETS[p.regime].min_confidence, f"regime {p.regime.value}"
        if state.consecutive_losses >= s.losing_streak:
            min_confidence = min(1.0, min_confidence + s.losing_streak_confidence_step)
            source += f", raised after {state.consecutive_losses} losses in a row"
        if p.confidence < min_confidence:
            problems.append(f"confidence: {p.confidence} is below the minimum {min_confidence} ({source})")
        if state.open_positions >= s.max_open_positions:
            problems.append(f"max_open_positions: {state.open_positions} open, the limit is {s.max_open_positions}")
        if state.equity <= 0:
            problems.append(f"equity: {state.equity} leaves nothing to risk")
            return problems
        if p.leverage > s.max_leverage:
            problems.append(f"leverage: {_num(p.leverage)}x is above the maximum {_num(s.max_leverage)}x")
        problems += self._circuit_breakers(state)
        return problems

    def _circuit_breakers(self, state: RiskState) -> list[str]:
        """Losses that stop new entries until the period rolls over or the cooldown ends."""
        s = self.settings
        tripped = []
        for name, pnl, limit in (
            ("daily", state.daily_pnl, s.max_daily_loss_pct),
            ("weekly", state.weekly_pnl, s.max_weekly_loss_pct),
        ):
            if pnl < 0 and -pnl >= state.equity * limit:
                tripped.append(
                    f"{name}_loss: {_num(-pnl)} lost, the breaker trips at {_pct(limit)} of equity "
                    f"({_num(state.equity * limit)})"
                )
        if state.drawdown >= s.max_drawdown_pct:
            tripped.append(
                f"drawdown: {_pct(state.drawdown)} from the peak, the breaker trips at {_pct(s.max_drawdown_pct)}"
            )
        if (
            state.consecutive_losses >= s.losing_streak
            and state.last_loss_at is not None
            and state.now is not None
            and state.now - state.last_loss_at < s.cooldown_after_loss_s
        ):
            left = s.cooldown_after_loss_s - (state.now - state.last_loss_at)
            tripped.append(
                f"cooldown: {state.consecutive_losses} losses in a row; no new entry for another {left:.0f} s"
            )
        return tripped

    def _sized(self, p: TradeProposal, state: RiskState) -> RiskVerdict:
        s = self.settings
        budget = state.equity * s.risk_per_trade
        stop_distance = abs(p.entry_price - p.stop_loss)
        by_risk = budget / stop_distance
        notes = [
            f"size: {_pct(s.risk_per_trade)} of equity {_num(state.equity)} = {_num(budget)} at risk over "
            f"stop distance {_num(stop_distance)} -> {_num(by_risk)}"
        ]
        factor = REGIME_PRESETS[p.regime].position_size_factor if p.regime is not None else Decimal(1)
        if p.regime is not None and factor != 1:
            by_risk *= factor
            notes.append(f"regime: {p.regime.value} preset sizes at {_num(factor)}x -> {_num(by_risk)}")
        caps = {
            f"max_position_pct: {_pct(s.max_position_pct)} of equity {_num(state.equity)} "
            f"at {_num(p.entry_price)}": state.equity * s.max_position_pct / p.entry_price,
            f"available_quote: {_num(state.available_quote)} x leverage {_num(p.leverage)} "
            f"at {_num(p.entry_price)} plus {_pct(state.entry_fee)} fee and {_pct(s.entry_slippage_pct)} "
            "slippage": state.available_quote
            * p.leverage
            / (p.entry_price * (1 + state.entry_fee + s.entry_slippage_pct)),
            **(
                {
                    f"available_base: a spot sell can sell only the {_num(state.available_base)} held": state.available_base
                }
                if p.side is Side.SELL and p.leverage <= 1 and state.available_base is not None
                else {}
            ),
            f"max_total_exposure_pct: {_pct(s.max_total_exposure_pct)} of equity less {_num(state.total_exposure)} "
            f"already open": max(Decimal(0), state.equity * s.max_total_exposure_pct - state.total_exposure)
            / p.entry_price,
            f"max_correlated_exposure_pct: {_pct(s.max_correlated_exposure_pct)} of equity less "
            f"{_num(state.open_exposure)} open in the same asset": max(
                Decimal(0), state.equity * s.max_correlated_exposure_pct - state.open_exposure
            )
            / p.entry_price,
        }
        cap_reason, cap = min(caps.items(), key=lambda item: item[1])
        allowed, status = by_risk, VerdictStatus.APPROVED
        if cap < by_risk:
            allowed, status = cap, VerdictStatus.REDUCED
            notes.append(f"{cap_reason} caps the volume at {_num(cap)} (risk allows {_num(by_risk)})")
        volume = allowed
        if p.volume is not None:
            if p.volume <= 0:
                return RiskVerdict(VerdictStatus.REJECTED, [f"volume: requested {_num(p.volume)} must be above 0"], p)
            if p.volume > allowed:
                status = VerdictStatus.REDUCED
                notes.append(f"volume: requested {_num(p.volume)} is above the allowed {_num(allowed)}; reduced")
            else:
                volume, status = p.volume, VerdictStatus.APPROVED
                notes.append(f"volume: requested {_num(p.volume)} is within the allowed {_num(allowed)}")
        if volume <= 0:
            return RiskVerdict(
                VerdictStatus.REJECTED, [*notes, f"volume: {_num(volume)} after caps; nothing to trade"], p
            )
        return RiskVerdict(status, notes, dataclasses.replace(p, volume=volume))


def day_start(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


@dataclass(frozen=True)
class TradingHistory:
    """What closed positions say about the risk the account may take now."""

    daily_pnl: Decimal
    weekly_pnl: Decimal
    consecutive_losses: int
    last_loss_at: float | None
    drawdown: Decimal


def trading_history(closed: Iterable[tuple[float | None, Decimal]], equity: Decimal, now: float) -> TradingHistory:
    """Realized P&L today and over the last 7 days, the losing streak, and the realized
    drawdown: P&L given back since its running peak, over the equity at that peak.
    `closed`: (closed_at, realized P&L) of each closed position that has one."""
    realized = sorted(closed, key=lambda entry: entry[0] or 0.0)  # oldest first
    today, week = day_start(now), now - 7 * 86400
    daily = sum((pnl for closed_at, pnl in realized if (closed_at or 0.0) >= today), Decimal(0))
    weekly = sum((pnl for closed_at, pnl in realized if (closed_at or 0.0) >= week), Decimal(0))
    streak, last_loss = 0, None
    for closed_at, pnl in reversed(realized):
        if pnl >= 0:
            break
        streak += 1
        last_loss = last_loss or closed_at
    cumulative, peak = Decimal(0), Decimal(0)
    for _, pnl in realized:
        cumulative += pnl
        peak = max(peak, cumulative)
    given_back = peak - cumulative
    peak_equity = equity + given_back
    drawdown = given_back / peak_equity if peak_equity > 0 else Decimal(0)
    return TradingHistory(daily, weekly, streak, last_loss, drawdown)

"""How orders meet the market: a quote around the path's price, market fills that slip
further the bigger they are, when triggers fire and limits are reached on a price
range, and which fee tier applies. Pure functions over Decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from simulator.market_model import LIQUIDITY
from simulator.models import OrderType, Side
from simulator.pairs import FeeTiers, Pair

_BPS = Decimal("0.0001")
_IMPACT_BPS_PER_DEPTH = Decimal(10)
_NOISE_BPS = Decimal("0.5")


@dataclass(frozen=True)
class Quote:
    bid: Decimal
    ask: Decimal


def quote(pair: Pair, price: Decimal) -> Quote:
    """The best bid and ask around a traded price, at least a tick either side."""
    half = price * LIQUIDITY[pair.key].half_spread_bps * _BPS
    return Quote(
        bid=(price - half).quantize(pair.tick_size, ROUND_DOWN),
        ask=(price + half).quantize(pair.tick_size, ROUND_UP),
    )


def market_fill_price(pair: Pair, side: Side, volume: Decimal, price: Decimal, noise: Decimal) -> Decimal:
    """Where a market order for `volume` fills when the market trades at `price`.

    It pays the half spread, an impact proportional to its size against the book's
    depth, and up to half a basis point of seeded noise (`noise` in [0, 1)).
    """
    liquidity = LIQUIDITY[pair.key]
    impact_bps = _IMPACT_BPS_PER_DEPTH * volume * price / liquidity.depth
    slip = (liquidity.half_spread_bps + impact_bps + noise * _NOISE_BPS) * _BPS
    if side is Side.BUY:
        return (price * (1 + slip)).quantize(pair.tick_size, ROUND_UP)
    return (price * (1 - slip)).quantize(pair.tick_size, ROUND_DOWN)


def limit_crosses(side: Side, limit: Decimal, book: Quote) -> bool:
    """A limit order that would trade at once on arrival (it takes liquidity)."""
    return limit >= book.ask if side is Side.BUY else limit <= book.bid


def limit_reached(side: Side, limit: Decimal, low: Decimal, high: Decimal) -> bool:
    """A resting limit order is filled once the market trades through its price."""
    return low <= limit if side is Side.BUY else high >= limit


def _fires_on_rise(ordertype: OrderType, side: Side) -> bool:
    # a buy stop fires on a rise, a sell stop on a fall; take-profits the other way
    return ordertype.is_stop == (side is Side.BUY)


def trigger_fired(ordertype: OrderType, side: Side, trigger: Decimal, low: Decimal, high: Decimal) -> bool:
    if _fires_on_rise(ordertype, side):
        return high >= trigger
    return low <= trigger


def trigger_reference(ordertype: OrderType, side: Side, trigger: Decimal, opening: Decimal) -> Decimal:
    """The price the market stood at when a trigger fired: the trigger price, or the
    opening price when the market gapped through it."""
    if _fires_on_rise(ordertype, side):
        return max(trigger, opening)
    return min(trigger, opening)


@dataclass(frozen=True)
class FeeTier:
    """Where a 30-day volume stands on a fee schedule (fees in percent)."""

    fee: Decimal
    minfee: Decimal
    maxfee: Decimal
    tiervolume: Decimal
    """The volume from which the current tier applies."""
    nextfee: Decimal | None
    """None at the schedule's last tier."""
    nextvolume: Decimal | None


def fee_tier_index(tiers: FeeTiers, thirty_day_volume: Decimal) -> int:
    """Which tier of `tiers` the 30-day volume reaches (the first when none)."""
    return max((i for i, (threshold, _) in enumerate(tiers) if thirty_day_volume >= threshold), default=0)


def fee_tier(tiers: FeeTiers, thirty_day_volume: Decimal) -> FeeTier:
    """The highest tier the 30-day volume reaches, and the one after it."""
    reached = fee_tier_index(tiers, thirty_day_volume)
    following = tiers[reached + 1] if reached + 1 < len(tiers) else None
    percents = [percent for _, percent in tiers]
    return FeeTier(
        fee=tiers[reached][1],
        minfee=min(percents),
        maxfee=max(percents),
        tiervolume=tiers[reached][0],
        nextfee=None if following is None else following[1],
        nextvolume=None if following is None else following[0],
    )


def fee_rate(tiers: FeeTiers, thirty_day_volume: Decimal) -> Decimal:
    """The fee, as a fraction, of the highest tier the 30-day volume reaches."""
    return fee_tier(tiers, thirty_day_volume).fee / 100

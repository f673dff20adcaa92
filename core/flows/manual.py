"""Operator proposals: `tg trade SYMBOL --side buy|sell [--volume V]` skips the agents
but not the risk engine or the execution path."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from core.domain.enums import Side
from core.domain.errors import InputError
from core.domain.models import TradeProposal
from core.exchange import KrakenClient
from core.execution.placement import STOP_DISTANCE, TARGET_DISTANCE


def parse_side(text: str) -> Side:
    try:
        return Side(text.strip().lower())
    except ValueError:
        raise InputError(f"--side must be buy or sell, not {text!r}") from None


def parse_volume(text: str) -> Decimal:
    try:
        volume = Decimal(text)
    except InvalidOperation:
        raise InputError(f"--volume must be a number, not {text!r}") from None
    if not volume.is_finite() or volume <= 0:
        raise InputError(f"--volume must be a positive number, not {text!r}")
    return volume


async def manual_proposal(client: KrakenClient, symbol: str, side: str, volume: str | None) -> TradeProposal:
    """A proposal at the current price with a 2% stop and a 4% target (2R)."""
    chosen = parse_side(side)
    size = parse_volume(volume) if volume is not None else None
    pair = await client.resolve_pair(symbol)
    price = (await client.ticker(pair.symbol)).last
    direction = Decimal(1) if chosen is Side.BUY else Decimal(-1)
    return TradeProposal(
        symbol=pair.symbol,
        side=chosen,
        entry_price=price,
        stop_loss=pair.round_price(price * (1 - direction * STOP_DISTANCE)),
        take_profit=pair.round_price(price * (1 + direction * TARGET_DISTANCE)),
        confidence=1.0,
        volume=size,
    )

"""Kraken's price notation: absolute ("58000.5") or relative to the last traded price
("+100", "-2.5%", "#1%"), and a trailing stop's offset ("+500", "+3%").

"+" adds to the last price and "-" subtracts from it; "#" goes whichever way the order
naturally sits: above the market for a buy stop or a sell limit or take-profit, below
it for the others. A "%" suffix makes the amount a percentage of the last price.
Resolved prices are rounded to the pair's tick.
"""

from __future__ import annotations

from decimal import Decimal

from simulator.exceptions import InvalidArguments
from simulator.models import OrderType, Side, TrailingOffset
from simulator.pairs import Pair
from simulator.params import MAX_AMOUNT


def resolve(text: str, field: str, *, pair: Pair, side: Side, ordertype: OrderType, market: Decimal) -> Decimal:
    """The absolute price `text` names when the market last traded at `market`."""
    sign, amount, percent = _parse(text)
    if sign == "" and not percent:
        if amount <= 0:
            raise InvalidArguments(field)
        return _bounded(amount, field)
    if sign == "":
        raise InvalidArguments(field)
    offset = market * amount / 100 if percent else amount
    if sign == "#":
        sign = "+" if _sits_above(side, ordertype) else "-"
    price = _bounded(market + offset if sign == "+" else market - offset, field).quantize(pair.tick_size)
    if price <= 0:
        raise InvalidArguments(field)
    return price


def trailing_offset(text: str, field: str) -> TrailingOffset:
    """A trailing stop's offset: Kraken insists on the "+" prefix."""
    sign, amount, percent = _parse(text)
    if sign != "+" or amount <= 0 or (percent and amount >= 100):
        raise InvalidArguments(field)
    return TrailingOffset(amount=_bounded(amount, field), percent=percent)


def _bounded(price: Decimal, field: str) -> Decimal:
    """`price` unless it is past what the sandbox's arithmetic holds (params.MAX_AMOUNT),
    either way: a relative price may fall far below zero."""
    if abs(price) >= MAX_AMOUNT:
        raise InvalidArguments(field)
    return price


def _parse(text: str) -> tuple[str, Decimal, bool]:
    sign = text[0] if text[:1] in ("+", "-", "#") else ""
    percent = text.endswith("%")
    return sign, Decimal(text[len(sign) : len(text) - percent]), percent


def _sits_above(side: Side, ordertype: OrderType) -> bool:
    if ordertype.is_stop:
        return side is Side.BUY
    return side is Side.SELL

"""The matching rules as pure functions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from simulator.matching import (
    fee_rate,
    limit_crosses,
    limit_reached,
    market_fill_price,
    quote,
    trigger_fired,
    trigger_reference,
)
from simulator.models import OrderType, Side
from simulator.pairs import MAKER_FEES, PAIRS, TAKER_FEES

XBTUSD = PAIRS["XXBTZUSD"]
D = Decimal


@pytest.mark.parametrize(
    ("volume", "taker", "maker"),
    [
        (D(0), D("0.0026"), D("0.0016")),
        (D(49_999), D("0.0026"), D("0.0016")),
        (D(50_000), D("0.0024"), D("0.0014")),
        (D(20_000_000), D("0.0010"), D("0")),
    ],
)
def test_fee_tiers_follow_thirty_day_volume(volume: Decimal, taker: Decimal, maker: Decimal) -> None:
    assert fee_rate(TAKER_FEES, volume) == taker
    assert fee_rate(MAKER_FEES, volume) == maker


def test_quote_brackets_the_price_by_a_basis_point_or_two() -> None:
    book = quote(XBTUSD, D("60000.0"))
    assert book.bid < D("60000.0") < book.ask
    assert D("0.0001") <= (book.ask - book.bid) / D("60000") <= D("0.0002")


def test_tiny_prices_still_get_a_spread_of_a_tick() -> None:
    book = quote(PAIRS["XXRPXXBT"], D("0.00001000"))
    assert (book.bid, book.ask) == (D("0.00000999"), D("0.00001001"))


def test_market_fills_slip_more_with_size_and_against_the_taker() -> None:
    price = D("60000.0")
    small = market_fill_price(XBTUSD, Side.BUY, D("0.01"), price, D(0))
    large = market_fill_price(XBTUSD, Side.BUY, D("10"), price, D(0))
    assert price < small < large
    assert market_fill_price(XBTUSD, Side.SELL, D("10"), price, D(0)) < price
    # half spread 0.5 bps + 10 bps per 2M USD of depth for 600k USD
    assert large == (price * (1 + D("3.5") / 10_000)).quantize(D("0.1"), "ROUND_UP")


@pytest.mark.parametrize(
    ("ordertype", "side", "low", "high", "fired"),
    [
        (OrderType.STOP_LOSS, Side.SELL, D(99), D(120), True),
        (OrderType.STOP_LOSS, Side.SELL, D(101), D(120), False),
        (OrderType.STOP_LOSS, Side.BUY, D(80), D(100), True),
        (OrderType.STOP_LOSS, Side.BUY, D(80), D(99), False),
        (OrderType.TAKE_PROFIT, Side.SELL, D(80), D(100), True),
        (OrderType.TAKE_PROFIT, Side.SELL, D(80), D(99), False),
        (OrderType.TAKE_PROFIT_LIMIT, Side.BUY, D(100), D(120), True),
        (OrderType.STOP_LOSS_LIMIT, Side.SELL, D(100.5), D(120), False),
    ],
)
def test_triggers_fire_on_the_side_they_guard(
    ordertype: OrderType, side: Side, low: Decimal, high: Decimal, fired: bool
) -> None:
    assert trigger_fired(ordertype, side, D(100), low, high) is fired


def test_a_gap_through_the_trigger_fills_from_the_gap() -> None:
    assert trigger_reference(OrderType.STOP_LOSS, Side.SELL, D(100), opening=D(95)) == D(95)
    assert trigger_reference(OrderType.STOP_LOSS, Side.SELL, D(100), opening=D(103)) == D(100)
    assert trigger_reference(OrderType.TAKE_PROFIT, Side.SELL, D(100), opening=D(104)) == D(104)


def test_limits_cross_and_are_reached() -> None:
    book = quote(XBTUSD, D("60000.0"))
    assert limit_crosses(Side.BUY, book.ask, book) and not limit_crosses(Side.BUY, book.bid, book)
    assert limit_crosses(Side.SELL, book.bid, book) and not limit_crosses(Side.SELL, book.ask, book)
    assert limit_reached(Side.BUY, D(100), low=D(100), high=D(110))
    assert not limit_reached(Side.SELL, D(111), low=D(100), high=D(110))

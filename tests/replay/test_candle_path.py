"""The market a replay runs on: prices inside a candle, the ranges matching sees, the
candles of other intervals, and how the exchange fills stops and targets on it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.domain.clock import VirtualClock
from simulator.candle_path import CandlePath
from simulator.exchange import DEFAULT_ACCOUNT, Exchange
from simulator.matching import LIQUIDITY
from simulator.models import Order, OrderSpec, OrderStatus, OrderType, Side
from simulator.pairs import PAIRS
from simulator.price_path import Bar

D = Decimal
H = 3_600
T0 = 1_735_689_600  # 2025-01-01T00:00:00Z, a multiple of every interval up to a day
XBTUSD = PAIRS["XXBTZUSD"]
WORST_SLIP = (LIQUIDITY["XXBTZUSD"].half_spread_bps + D(1)) / 10_000  # spread, impact of a small order, noise


def bar(i: int, o: str, h: str, low: str, c: str, volume: str = "10", count: int = 100) -> Bar:
    typical = (D(o) + D(h) + D(low) + D(c)) / 4
    return Bar(T0 + i * H, D(o), D(h), D(low), D(c), typical, D(volume), count)


def path(*bars: Bar) -> CandlePath:
    return CandlePath(XBTUSD, 60, bars)


def test_price_moves_from_the_open_to_the_nearer_extreme_then_the_other_then_the_close() -> None:
    # the high is nearer the open: open 100 -> high 104 at 1/3 -> low 94 at 2/3 -> close 99
    market = path(bar(0, "100", "104", "94", "99"), bar(1, "99.5", "101", "99", "100"))

    assert market.price_at(T0) == D("100.0")
    assert market.price_at(T0 + H / 6) == D("102.0")
    assert market.price_at(T0 + H / 3) == D("104.0")
    assert market.price_at(T0 + H / 2) == D("99.0")
    assert market.price_at(T0 + 2 * H / 3) == D("94.0")
    assert market.price_at(T0 + 5 * H / 6) == D("96.5")
    assert market.price_at(T0 + H - 0.001) == D("99.0")
    assert market.price_at(T0 + H) == D("99.5")  # the next candle opens at its own open: a gap


def test_the_low_comes_first_when_it_is_nearer_the_open_or_as_near() -> None:
    nearer_low = path(bar(0, "100", "110", "98", "105"))
    tie = path(bar(0, "100", "102", "98", "101"))
    assert nearer_low.price_at(T0 + H / 3) == D("98.0")
    assert tie.price_at(T0 + H / 3) == D("98.0")
    assert tie.price_at(T0 + 2 * H / 3) == D("102.0")


def test_matching_sees_the_whole_range_of_every_candle_a_stretch_touches() -> None:
    market = path(bar(0, "100", "104", "94", "99"), bar(1, "99", "101", "90", "100"), bar(2, "100", "120", "99", "110"))

    assert market.price_range(T0, T0 + 60) == (D(94), D(104))  # one minute sees the whole candle
    assert market.price_range(T0 + 3000, T0 + 3060) == (D(94), D(104))
    assert market.price_range(T0, T0 + H) == (D(94), D(104))  # a stretch ending at a candle's open stops short of it
    assert market.price_range(T0 + 1800, T0 + H + 1) == (D(90), D(104))
    assert market.price_range(T0, T0 + 3 * H) == (D(90), D(120))


def test_after_the_last_candle_the_market_stands_at_its_close() -> None:
    market = path(bar(0, "100", "104", "94", "99"))
    assert market.end == T0 + H
    assert market.price_at(T0 + 5 * H) == D(99)
    assert market.price_range(T0 + 2 * H, T0 + 3 * H) == (D(99), D(99))
    assert market.price_range(T0 + 1800, T0 + 2 * H) == (D(94), D(104))
    with pytest.raises(ValueError, match="start at"):
        market.price_at(T0 - 1)


def test_missing_candles_are_flat_at_the_previous_close_without_volume() -> None:
    market = path(bar(0, "100", "104", "94", "99"), bar(3, "101", "102", "100", "101"))

    assert market.price_at(T0 + H + 600) == D(99)
    assert market.price_range(T0 + H, T0 + 3 * H) == (D(99), D(99))
    bars = market.candles(60, T0, T0 + 4 * H)
    assert [(b.time, b.open, b.close, b.volume, b.count) for b in bars[1:3]] == [
        (T0 + H, D(99), D(99), D(0), 0),
        (T0 + 2 * H, D(99), D(99), D(0), 0),
    ]


def test_prices_and_volumes_are_rounded_to_the_pairs_tick_and_lot() -> None:
    market = path(bar(0, "100.04", "104.06", "94.01", "99.95", volume="1.123456789"))
    candle = market.candles(60, T0, T0 + H)[0]
    assert (candle.open, candle.high, candle.low, candle.close) == (D("100.0"), D("104.1"), D("94.0"), D("100.0"))
    assert candle.volume == D("1.12345679")


def test_recorded_candles_come_back_whole_and_merge_into_longer_intervals() -> None:
    bars = [
        bar(0, "100", "104", "94", "99", "10", 100),
        bar(1, "99", "101", "90", "100", "20", 50),
        bar(2, "100", "120", "99", "110", "30", 70),
        bar(3, "110", "111", "105", "106", "40", 10),
        bar(4, "106", "107", "100", "101", "50", 5),
    ]
    market = path(*bars)

    hourly = market.candles(60, T0, T0 + 4 * H)
    assert [(b.time, b.open, b.high, b.low, b.close, b.volume, b.count) for b in hourly[:4]] == [
        (b.time, b.open, b.high, b.low, b.close, b.volume, b.count) for b in bars[:4]
    ]
    [four_hours, forming] = market.candles(240, T0, T0 + 4 * H)
    assert (four_hours.time, four_hours.open, four_hours.high, four_hours.low, four_hours.close) == (
        T0,
        D(100),
        D(120),
        D(90),
        D(106),
    )
    assert (four_hours.volume, four_hours.count) == (D(100), 230)
    assert four_hours.vwap == (sum((h.vwap * h.volume for h in hourly[:4]), D(0)) / 100).quantize(D("0.1"))
    # a candle opening exactly at `until` is there, flat and without volume
    assert (forming.time, forming.open, forming.close, forming.volume) == (T0 + 4 * H, D(106), D(106), D(0))


def test_the_forming_candle_is_cut_where_the_path_stands() -> None:
    market = path(bar(0, "100", "104", "94", "99", "60", 60))
    [forming] = market.candles(60, T0, T0 + H / 2)
    # half-way the path went 100 -> 104 (at 1/3) -> down to 99 (at 1/2)
    assert (forming.open, forming.high, forming.low, forming.close) == (D(100), D(104), D(99), D(99))
    assert (forming.volume, forming.count) == (D(30), 30)


def test_candles_finer_than_the_recording_are_read_off_the_path() -> None:
    market = path(bar(0, "100", "104", "94", "99", "60", 60))
    quarters = market.candles(15, T0, T0 + H - 1)
    # 100 -> 104 at 20 minutes -> 94 at 40 minutes -> 99 at the hour, in straight lines
    assert [(q.open, q.high, q.low, q.close) for q in quarters] == [
        (D(100), D(103), D(100), D(103)),
        (D(103), D(104), D(99), D(99)),
        (D(99), D(99), D(94), D("95.2")),  # 95.25 at 45 minutes, on the tick
        (D("95.2"), D(99), D("95.2"), D(99)),  # cut a second before the hour
    ]
    assert [q.volume for q in quarters[:3]] == [D(15), D(15), D(15)]  # the hour's volume, spread evenly
    assert quarters[3].volume == (D(60) / 4 * (899 / D(900))).quantize(D("1e-8"))


# --- fills: the exchange on a candle path -------------------------------------------


def exchange_on(*bars: Bar) -> Exchange:
    clock = VirtualClock(float(bars[0].time))
    return Exchange.create(clock, seed=7, paths={XBTUSD.key: path(*bars)})


def place(exchange: Exchange, side: Side, ordertype: OrderType, volume: str, price: str | None = None) -> Order:
    order = exchange.add_order(
        DEFAULT_ACCOUNT,
        OrderSpec(pair=XBTUSD.key, side=side, ordertype=ordertype, volume=D(volume), price=D(price) if price else None),
    )
    assert order is not None
    return order


def protected_long(exchange: Exchange, stop: str, target: str) -> tuple[Order, Order, Order]:
    entry = place(exchange, Side.BUY, OrderType.MARKET, "0.5")
    return (
        entry,
        place(exchange, Side.SELL, OrderType.STOP_LOSS, "0.5", stop),
        place(exchange, Side.SELL, OrderType.TAKE_PROFIT, "0.5", target),
    )


def fill_price(order: Order) -> Decimal:
    return order.cost / order.vol_exec


def test_a_market_entry_at_a_candles_open_fills_at_the_open_plus_spread_and_slippage() -> None:
    exchange = exchange_on(bar(0, "50000", "50100", "49900", "50000"))
    entry = place(exchange, Side.BUY, OrderType.MARKET, "0.5")
    assert D(50000) < fill_price(entry) <= D(50000) * (1 + WORST_SLIP)


def test_when_stop_and_target_both_lie_inside_one_candle_the_stop_fills() -> None:
    # the high (the target's side) is nearer the open, yet the stop is taken to come first
    exchange = exchange_on(
        bar(0, "50000", "50100", "49950", "50000"),
        bar(1, "50000", "51000", "48000", "50500"),
        bar(2, "50500", "50600", "50400", "50500"),
    )
    _, stop, target = protected_long(exchange, stop="49000", target="50900")

    exchange.advance(2 * H)

    assert stop.status is OrderStatus.CLOSED
    assert D(49000) * (1 - WORST_SLIP) <= fill_price(stop) < D(49000)
    assert stop.closetm is not None and T0 + H <= stop.closetm <= T0 + 2 * H
    assert target.status is OrderStatus.CANCELED and target.vol_exec == 0
    assert target.reason == "Insufficient funds"  # its sibling already sold the position


def test_a_target_alone_inside_a_candle_fills_at_its_trigger() -> None:
    exchange = exchange_on(bar(0, "50000", "50100", "49950", "50000"), bar(1, "50000", "51000", "49500", "50500"))
    _, stop, target = protected_long(exchange, stop="49000", target="50900")

    exchange.advance(2 * H)

    assert target.status is OrderStatus.CLOSED
    assert D(50900) * (1 - WORST_SLIP) <= fill_price(target) < D(50900)
    assert stop.status is OrderStatus.OPEN  # cancelling the sibling is tg's reconciliation, not the exchange's


def test_a_candle_that_opens_beyond_the_stop_fills_it_at_the_open() -> None:
    exchange = exchange_on(bar(0, "50000", "50100", "49950", "50000"), bar(1, "47000", "47500", "46800", "47200"))
    _, stop, _ = protected_long(exchange, stop="49000", target="52000")

    exchange.advance(2 * H)

    assert stop.status is OrderStatus.CLOSED
    assert D(47000) * (1 - WORST_SLIP) <= fill_price(stop) < D(47000)
    assert stop.closetm == T0 + H  # at the open, not a minute later


def test_orders_the_candle_does_not_reach_stay_open() -> None:
    exchange = exchange_on(bar(0, "50000", "50100", "49950", "50000"), bar(1, "50000", "50800", "49100", "50500"))
    _, stop, target = protected_long(exchange, stop="49000", target="50900")
    exchange.advance(2 * H)
    assert stop.status is OrderStatus.OPEN and target.status is OrderStatus.OPEN

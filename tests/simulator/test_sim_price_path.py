"""The seeded market: deterministic, internally consistent, believable."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

from simulator.embedded import SANDBOX_EPOCH
from simulator.pairs import PAIRS
from simulator.price_path import DAY, HISTORY_DAYS, HOUR, synthetic_paths


def test_same_seed_same_market_in_any_reading_order() -> None:
    forward = synthetic_paths(7, PAIRS.values(), SANDBOX_EPOCH)["XETHZUSD"]
    backward = synthetic_paths(7, PAIRS.values(), SANDBOX_EPOCH)["XETHZUSD"]
    times = [SANDBOX_EPOCH + k * 7_919.5 for k in range(-50, 50)]
    assert [forward.price_at(t) for t in times] == [backward.price_at(t) for t in reversed(times)][::-1]


def test_another_seed_another_market() -> None:
    one = synthetic_paths(1, PAIRS.values(), SANDBOX_EPOCH)["XXBTZUSD"]
    two = synthetic_paths(2, PAIRS.values(), SANDBOX_EPOCH)["XXBTZUSD"]
    later = SANDBOX_EPOCH + 5 * DAY
    assert one.price_at(later) != two.price_at(later)


def test_pairs_agree_with_each_other() -> None:
    paths = synthetic_paths(42, PAIRS.values(), SANDBOX_EPOCH)
    for t in (SANDBOX_EPOCH + 3 * HOUR + 20, SANDBOX_EPOCH - 100 * DAY):
        xbt, xrp, cross = (paths[k].price_at(t) for k in ("XXBTZUSD", "XRPUSDT", "XXRPXXBT"))
        assert paths["XBTUSDT"].price_at(t) == xbt
        assert abs(cross - xrp / xbt) <= Decimal("0.00000002")


def test_price_is_continuous_across_minutes_hours_and_days() -> None:
    path = synthetic_paths(42, PAIRS.values(), SANDBOX_EPOCH)["XXBTZUSD"]
    for boundary in (SANDBOX_EPOCH + 60, SANDBOX_EPOCH + HOUR, SANDBOX_EPOCH + DAY):
        before, after = path.price_at(boundary - 0.001), path.price_at(boundary)
        assert abs(after - before) / after < Decimal("0.0001")


def test_candles_at_every_resolution_agree() -> None:
    path = synthetic_paths(42, PAIRS.values(), SANDBOX_EPOCH)["XRPUSDT"]
    start = SANDBOX_EPOCH - 2 * DAY
    day = path.candles(1440, start, start + DAY)[0]
    hours = path.candles(60, start, start + DAY)[:24]
    minutes = path.candles(1, start + 5 * HOUR, start + 6 * HOUR)[:60]
    assert (day.open, day.close) == (hours[0].open, hours[-1].close)
    assert day.high == max(h.high for h in hours) and day.low == min(h.low for h in hours)
    assert day.count == sum(h.count for h in hours)
    hour = hours[5]
    assert (hour.open, hour.close) == (minutes[0].open, minutes[-1].close)
    assert hour.high == max(m.high for m in minutes) and hour.low == min(m.low for m in minutes)
    assert hour.count == sum(m.count for m in minutes)


def test_a_candle_opening_at_the_end_is_flat_and_empty() -> None:
    path = synthetic_paths(42, PAIRS.values(), SANDBOX_EPOCH)["XXBTZUSD"]
    *_, closed, opening = path.candles(60, SANDBOX_EPOCH - 3 * HOUR, SANDBOX_EPOCH)
    assert closed.time == SANDBOX_EPOCH - HOUR and closed.volume > 0
    assert opening.time == SANDBOX_EPOCH
    assert opening.open == opening.high == opening.low == opening.close == closed.close
    assert (opening.volume, opening.count) == (Decimal(0), 0)


def test_price_range_covers_the_prices_inside() -> None:
    path = synthetic_paths(42, PAIRS.values(), SANDBOX_EPOCH)["XETHZUSD"]
    start, end = SANDBOX_EPOCH + 17.5, SANDBOX_EPOCH + 2 * HOUR + 42.25
    low, high = path.price_range(start, end)
    inside = [path.price_at(start + k * (end - start) / 200) for k in range(201)]
    assert low <= min(inside) and max(inside) <= high
    # the first candle began before `start`, the last is cut at `end`
    whole_minutes = path.candles(1, start, end)[1:-1]
    edges = [path.price_at(start), path.price_at(end)]
    assert low == min([c.low for c in whole_minutes] + edges)
    assert high == max([c.high for c in whole_minutes] + edges)


def test_history_is_believable_two_years_back() -> None:
    path = synthetic_paths(42, PAIRS.values(), SANDBOX_EPOCH)["XXBTZUSD"]
    days = path.candles(1440, SANDBOX_EPOCH - HISTORY_DAYS * DAY, SANDBOX_EPOCH)[:-1]
    assert len(days) == HISTORY_DAYS
    closes = [float(d.close) for d in days]
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    daily_vol = math.sqrt(sum(r * r for r in returns) / len(returns))
    assert 0.01 < daily_vol < 0.06
    assert min(closes) > 15_000 and max(closes) < 240_000
    # volatility clusters: calm and wild months differ clearly
    monthly = [math.sqrt(sum(r * r for r in returns[i : i + 30]) / 30) for i in range(0, 720, 30)]
    assert max(monthly) > 2 * min(monthly)
    assert path.start == (math.floor(SANDBOX_EPOCH / DAY) - HISTORY_DAYS) * DAY


def test_candles_never_reach_before_the_history() -> None:
    path = synthetic_paths(42, PAIRS.values(), SANDBOX_EPOCH)["XXBTZUSD"]
    weeks = path.candles(10080, 0, SANDBOX_EPOCH)
    assert weeks[0].time >= path.start


def test_the_price_at_an_hours_first_instant_is_its_first_minutes_open() -> None:
    """Read from the hour level (no minutes built), it is exactly the price the hour's
    minutes open at, for dollar pairs and for a cross pair (a ratio of two paths)."""
    paths = synthetic_paths(42, PAIRS.values(), SANDBOX_EPOCH)
    for key in ("XXBTZUSD", "XETHZUSD", "XXRPXXBT"):
        path = paths[key]
        for hour in range(-400, 400, 7):
            t = SANDBOX_EPOCH + hour * HOUR
            minute = path.candles(1, t, t + 60)[0]
            assert path.price_at(t) == minute.open
            low, high = path.price_range(t, t + HOUR)
            bar = path.candles(60, t, t + HOUR)[0]
            assert (low, high) == (min(bar.low, path.price_at(t + HOUR)), max(bar.high, path.price_at(t + HOUR)))

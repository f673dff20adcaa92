"""Seeded markets pinned to their values: a faster path must draw the very same prices
and candles (replays, campaigns and recorded runs all depend on it)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from simulator.candle_path import CandlePath
from simulator.embedded import SANDBOX_EPOCH as EPOCH
from simulator.pairs import PAIRS
from simulator.price_path import DAY, HOUR, Bar, synthetic_paths


def _bar(time: int, *prices: str, volume: str, count: int) -> Bar:
    open_, high, low, close, vwap = (Decimal(p) for p in prices)
    return Bar(time, open_, high, low, close, vwap, Decimal(volume), count)


def test_seeded_prices_and_candles_are_pinned() -> None:
    paths = synthetic_paths(42, PAIRS.values(), EPOCH)
    btc, cross = paths["XXBTZUSD"], paths["XXRPXXBT"]
    assert btc.price_at(EPOCH + 5 * HOUR + 1234.5) == Decimal("60357.0")
    assert cross.price_at(EPOCH + 777.7) == Decimal("0.00001001")
    assert btc.price_range(EPOCH + 100, EPOCH + 2 * HOUR + 59) == (Decimal("59868.2"), Decimal("60339.0"))
    assert btc.candles(60, EPOCH, EPOCH + HOUR + 1800.5) == [
        _bar(1767225600, "60000.0", "60265.1", "59868.2", "60164.7", "60074.5", volume="129.12202714", count=2582),
        _bar(1767229200, "60164.7", "60339.0", "60093.6", "60146.6", "60210.7", volume="35.93655765", count=718),
    ]
    assert btc.candles(240, EPOCH - 8 * HOUR, EPOCH - 4 * HOUR)[0] == _bar(
        1767196800, "60645.9", "61074.9", "59518.1", "59927.0", "60376.6", volume="516.28708364", count=10326
    )
    assert btc.candles(1440, EPOCH - 30 * DAY, EPOCH)[0] == _bar(
        1764633600, "60929.8", "66540.4", "60852.2", "66084.3", "63208.3", volume="3133.94034183", count=62679
    )
    assert cross.candles(60, EPOCH - 2 * HOUR, EPOCH - HOUR)[0] == _bar(
        1767218400,
        "0.00001021",
        "0.00001032",
        "0.00001014",
        "0.00001025",
        "0.00001024",
        volume="120233.71371321",
        count=301,
    )
    # what a trade cycle reads: the last 201 four-hour candles, the forming one cut mid-minute
    drawn = repr(btc.candles(240, EPOCH - 201 * 4 * HOUR, EPOCH + 1000.5)).encode()
    assert hashlib.sha256(drawn).hexdigest() == "df30be30dc5a36b4c307da58ec495037edf53967aecdb5ff20e47fd9cf749464"


def test_candles_of_a_recording_are_pinned() -> None:
    bars = [
        _bar(
            int(EPOCH) + i * HOUR,
            *(str(p + i) for p in (100, 103, 98, 101, 100)),
            volume=str(1.5 * (i + 1)),
            count=10 + i,
        )
        for i in range(12)
    ]
    path = CandlePath(PAIRS["XXBTZUSD"], 60, bars)
    assert path.candles(240, EPOCH, EPOCH + 6 * HOUR + 1200) == [
        _bar(1767225600, "100.0", "106.0", "98.0", "104.0", "102.0", volume="15.00000000", count=46),
        _bar(1767240000, "104.0", "108.0", "102.0", "104.0", "104.6", volume="20.00000000", count=34),
    ]
    assert path.candles(15, EPOCH + HOUR, EPOCH + HOUR + 1800) == [
        _bar(1767229200, "101.0", "101.0", "99.5", "99.5", "100.2", volume="0.75000000", count=3),
        _bar(1767230100, "99.5", "101.5", "99.0", "101.5", "100.4", volume="0.75000000", count=3),
        _bar(1767231000, "101.5", "101.5", "101.5", "101.5", "101.5", volume="0", count=0),
    ]

"""PriceWindows hands out exactly what Prices.of would, whatever the windows it
remembers: a moved-on window reuses the shared candles' floats, anything else is
converted whole."""

from __future__ import annotations

from decimal import Decimal

from core.decision import indicators as ti
from core.domain.models import Candle


def _candle(time: int, close: str) -> Candle:
    price = Decimal(close)
    return Candle(time, price, price + 2, price - 1, price, Decimal(1))


def _series(count: int, step: int = 3600) -> list[Candle]:
    return [_candle(i * step, f"{100 + i}.{i % 7}") for i in range(count)]


def test_a_window_moved_on_gives_the_floats_of_its_own_candles() -> None:
    closed = _series(30)
    windows = ti.PriceWindows()
    first = [*closed[:20], _candle(20 * 3600, "999.9")]  # the last candle is still forming
    assert windows.of(first) == ti.Prices.of(first)
    moved = [*closed[4:24], _candle(24 * 3600, "1.5")]  # the forming one has closed differently
    assert windows.of(moved) == ti.Prices.of(moved)
    assert windows.of(moved).close[-5] == float(closed[20].close)


def test_windows_of_other_candles_uneven_steps_or_no_candles_are_converted_whole() -> None:
    windows = ti.PriceWindows(keep=2)
    closed = _series(30)
    windows.of(closed[:20])
    copies = [_candle(c.time, str(c.close + 1)) for c in closed[5:25]]  # same times, other objects
    assert windows.of(copies) == ti.Prices.of(copies)
    gapped = [*closed[:3], *closed[10:20]]
    assert windows.of(gapped) == ti.Prices.of(gapped)
    assert windows.of(closed[12:18]) == ti.Prices.of(closed[12:18])  # inside a gapped window
    assert windows.of([]) == ti.Prices.of([])
    assert windows.of(closed[:1]) == ti.Prices.of(closed[:1])
    assert windows.of(closed[:3]) == ti.Prices.of(closed[:3])

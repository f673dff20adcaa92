"""A market replayed from recorded candles: the PricePath `tg replay` runs the sandbox
on instead of the seeded one. Every fill of a replay depends on the rule below.

Inside one candle:
- Price. At the candle's open time the market trades at its open; it moves in
  straight lines to the extreme nearer the open (the low on a tie) a third of the way
  through the candle, to the other extreme at two thirds, and to the close at the
  end. The next candle starts at its own open: a close that differs from the next
  open is a gap, crossed at once.
- Matching. The order of the prices inside a recorded candle is unknown, so any
  stretch of matching that touches a candle sees the candle's whole range
  (`price_range`): an order the candle's range reaches acts in that candle, whichever
  way the path above runs. When a stop and a target both lie inside one candle, the
  exchange matches stops first (simulator.exchange, "Stops first"): the stop fills,
  the conservative reading, the only safe one when the data cannot tell.
- Gaps. A stop the candle opens beyond fires at the open, not at its trigger (the
  exchange fills a trigger at the stretch's opening price when that is past it).
- Fees, spread, slippage and fill sizes are the exchange's, as in live simulation.

Candles missing from the recording are flat at the previous close, without volume;
after the last candle the market stands at its close. Prices are rounded to the
pair's tick and volumes to its lot. Candles of other intervals are built from the
recorded ones: whole candles merged, and the part of a candle a bucket cuts (the
still-forming candle, or a finer interval than the recording's) read off the path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from simulator.pairs import Pair
from simulator.price_path import MINUTE, Bar

_THIRDS = (0.0, 1 / 3, 2 / 3, 1.0)


class _Piece(NamedTuple):
    """Part of a candle, or several merged, on the way to a bar."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    turnover: Decimal
    """Volume times the price it traded at, for the vwap."""
    trades: int


class CandlePath:
    """The market of one pair, from candles of `interval_minutes` (oldest first, each
    opening on a multiple of the interval; vwap and count are kept as given)."""

    def __init__(self, pair: Pair, interval_minutes: int, bars: Sequence[Bar]) -> None:
        if not bars:
            raise ValueError("a candle path needs at least one candle")
        self._pair = pair
        self._step = interval_minutes * MINUTE
        self._bars = self._filled([self._rounded(bar) for bar in bars])
        self._start = self._bars[0].time
        self._points = [_path_points(bar) for bar in self._bars]
        self._whole: dict[tuple[int, int], Bar] = {}

    @property
    def start(self) -> float:
        return float(self._start)

    @property
    def end(self) -> float:
        """When the last candle closes."""
        return float(self._start + len(self._bars) * self._step)

    def price_at(self, t: float) -> Decimal:
        index = self._index(t)
        if index >= len(self._bars):
            return self._bars[-1].close
        return self._along(index, (t - self._bars[index].time) / self._step)

    def price_range(self, start: float, end: float) -> tuple[Decimal, Decimal]:
        """The whole range of every candle [start, end) touches (the one holding
        `start` when the stretch is empty): see the module's matching rule."""
        first = self._index(start)
        last = max(first, math.ceil((end - self._start) / self._step) - 1)
        if first >= len(self._bars):
            close = self._bars[-1].close
            return close, close
        bars = self._bars[first : last + 1]
        low, high = min(b.low for b in bars), max(b.high for b in bars)
        if last >= len(self._bars):
            close = self._bars[-1].close
            low, high = min(low, close), max(high, close)
        return low, high

    def candles(self, interval_minutes: int, since: float, until: float) -> list[Bar]:
        step = interval_minutes * MINUTE
        first = math.floor(max(since, self._start) / step) * step
        if first < self._start:
            first += step
        return [
            self._bucket(interval_minutes, bucket, min(bucket + step, until))
            for bucket in range(first, math.floor(until / step) * step + 1, step)
        ]

    def _index(self, t: float) -> int:
        if t < self._start:
            raise ValueError(f"the recorded candles start at {self._start}; nothing is known of {t}")
        return int((t - self._start) // self._step)

    def _along(self, index: int, fraction: float) -> Decimal:
        """The price `fraction` of the way through candle `index`, on the path of thirds."""
        points = self._points[index]
        if fraction <= 0:
            return points[0]
        leg = min(int(fraction * 3), 2)
        share = fraction * 3 - leg
        a, b = points[leg], points[leg + 1]
        if share <= 0 or a == b:
            return a
        return (a + (b - a) * Decimal(share)).quantize(self._pair.tick_size)

    def _bucket(self, interval_minutes: int, bucket: int, end: float) -> Bar:
        whole = bucket + interval_minutes * MINUTE == end
        if whole and (interval_minutes, bucket) in self._whole:
            return self._whole[(interval_minutes, bucket)]
        if end <= bucket:
            price = self.price_at(bucket)
            return Bar(bucket, price, price, price, price, price, Decimal(0), 0)
        merged = _merge(self._pieces(bucket, end))
        vwap = (merged.turnover / merged.volume).quantize(self._pair.tick_size) if merged.volume else merged.close
        bar = Bar(
            bucket,
            merged.open,
            merged.high,
            merged.low,
            merged.close,
            vwap,
            merged.volume.quantize(self._pair.lot_size),
            merged.trades,
        )
        if whole and end <= self.end:
            self._whole[(interval_minutes, bucket)] = bar
        return bar

    def _pieces(self, start: float, end: float) -> list[_Piece]:
        pieces = []
        index = self._index(start)
        while index < len(self._bars) and self._bars[index].time < end:
            bar = self._bars[index]
            a, b = max(start, bar.time), min(end, bar.time + self._step)
            if a == bar.time and b == bar.time + self._step:
                pieces.append(
                    _Piece(bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap * bar.volume, bar.count)
                )
            else:
                pieces.append(self._part(index, a, b))
            index += 1
        if end > self.end:
            close = self._bars[-1].close
            pieces.append(_Piece(close, close, close, close, Decimal(0), Decimal(0), 0))
        return pieces

    def _part(self, index: int, start: float, end: float) -> _Piece:
        """Candle `index` between `start` and `end`, read off the path."""
        bar = self._bars[index]
        fa, fb = (start - bar.time) / self._step, (end - bar.time) / self._step
        open_, close = self._along(index, fa), self._along(index, fb)
        inside = [p for p, at in zip(self._points[index], _THIRDS, strict=True) if fa < at < fb]
        share = Decimal(fb - fa)
        volume = bar.volume * share
        typical = (open_ + close + max(open_, close, *inside) + min(open_, close, *inside)) / 4
        return _Piece(
            open_,
            max(open_, close, *inside),
            min(open_, close, *inside),
            close,
            volume,
            volume * typical,
            round(bar.count * (fb - fa)),
        )

    def _rounded(self, bar: Bar) -> Bar:
        tick, lot = self._pair.tick_size, self._pair.lot_size
        return Bar(
            bar.time,
            bar.open.quantize(tick),
            bar.high.quantize(tick),
            bar.low.quantize(tick),
            bar.close.quantize(tick),
            bar.vwap.quantize(tick),
            bar.volume.quantize(lot),
            bar.count,
        )

    def _filled(self, bars: list[Bar]) -> list[Bar]:
        """The candles on their grid, a flat one at the previous close for each missing."""
        filled: list[Bar] = []
        for bar in bars:
            if bar.time % self._step:
                raise ValueError(f"candle {bar.time} is not on the {self._step // MINUTE}-minute grid")
            if filled and bar.time <= filled[-1].time:
                raise ValueError(f"candle {bar.time} does not come after {filled[-1].time}")
            while filled and filled[-1].time + self._step < bar.time:
                close = filled[-1].close
                filled.append(Bar(filled[-1].time + self._step, close, close, close, close, close, Decimal(0), 0))
            filled.append(bar)
        return filled


def _path_points(bar: Bar) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """Open, the extreme nearer the open (the low on a tie), the other, close."""
    if bar.open - bar.low <= bar.high - bar.open:
        return bar.open, bar.low, bar.high, bar.close
    return bar.open, bar.high, bar.low, bar.close


def _merge(pieces: list[_Piece]) -> _Piece:
    return _Piece(
        open=pieces[0].open,
        high=max(p.high for p in pieces),
        low=min(p.low for p in pieces),
        close=pieces[-1].close,
        volume=sum((p.volume for p in pieces), Decimal(0)),
        turnover=sum((p.turnover for p in pieces), Decimal(0)),
        trades=sum(p.trades for p in pieces),
    )

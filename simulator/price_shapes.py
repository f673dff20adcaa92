"""Price shapes: moves a test lays over the seeded market (a jump, a trend, a flat
market, a flash crash and its recovery), as data (models.PriceShape) read by one
path layer, so that the exchange matches, quotes and draws candles through them as
through any other market.

Each shape is a layer over the path beneath it, in the order the shapes were added:

- jump: from `at` on, prices are scaled by (1 + pct/100), at once (the move a gap makes);
- trend: the scale grows linearly from 1 to (1 + pct/100) over `over` seconds, then stays;
- flash-crash: the scale goes to (1 + pct/100) over `over` seconds (pct -8: down 8%),
  then back to 1 over `recover` seconds;
- flat: for `over` seconds the price holds the level it had at `at`; afterwards the
  market moves on from that level (its path scaled so that it does not jump back).

A shape changes nothing before its `at`, so adding one never rewrites what was traded.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from decimal import Decimal

from simulator.models import PriceShape
from simulator.pairs import Pair
from simulator.price_path import MINUTE, Bar, PricePath

_ONE = Decimal(1)


def knots(shape: PriceShape) -> list[float]:
    """The instants where `shape` changes how it acts: the matching engine cuts its
    steps there, as it does at a gap."""
    if shape.kind == "jump":
        return [shape.at]
    if shape.kind == "flash-crash":
        return [shape.at, shape.at + shape.over, shape.at + shape.over + shape.recover]
    return [shape.at, shape.at + shape.over]


def shaped(path: PricePath, pair: Pair, shapes: Iterable[PriceShape]) -> PricePath:
    """`path` under every shape that concerns `pair`, the first added innermost."""
    for shape in shapes:
        if shape.pair is None or shape.pair == pair.key:
            path = ShapedPricePath(path, pair, shape)
    return path


class ShapedPricePath:
    """One shape over the path beneath it (a PricePath itself)."""

    def __init__(self, path: PricePath, pair: Pair, shape: PriceShape) -> None:
        self._path = path
        self._tick = pair.tick_size
        self._shape = shape
        self._knots = knots(shape)
        self._end = self._knots[-1]

    @property
    def start(self) -> float:
        return self._path.start

    def _scale(self, t: float, *, before: bool = False) -> Decimal:
        """The factor on the price beneath at `t` (`before`: just before `t`)."""
        shape = self._shape
        if shape.kind == "flat":
            if t < shape.at or (before and t == shape.at):
                return _ONE
            held = self._path.price_at(shape.at)
            return held / self._path.price_at(min(t, self._end))
        move = shape.pct / 100
        if shape.kind == "jump":
            return _ONE + move if t > shape.at or (t == shape.at and not before) else _ONE
        if t <= shape.at:
            return _ONE
        if shape.kind == "trend":
            done = Decimal(1) if t >= self._end else Decimal(str((t - shape.at) / shape.over))
            return _ONE + move * done
        bottom = shape.at + shape.over
        if t <= bottom:
            return _ONE + move * Decimal(str((t - shape.at) / shape.over)) if shape.over else _ONE + move
        if t >= self._end:
            return _ONE
        return _ONE + move * (1 - Decimal(str((t - bottom) / shape.recover)))

    def price_at(self, t: float) -> Decimal:
        if t < self._shape.at:
            return self._path.price_at(t)
        if self._shape.kind == "flat" and t < self._end:
            return self._path.price_at(self._shape.at)
        return self._quantize(self._path.price_at(t) * self._scale(t))

    def price_range(self, start: float, end: float) -> tuple[Decimal, Decimal]:
        """Cut at the shape's knots; within a piece the scale moves one way, so the
        extremes lie at the piece's ends. As for a gap, a jump exactly at `end` is not
        yet in the range."""
        if end <= self._shape.at:
            return self._path.price_range(start, end)
        cuts = [start, *(k for k in self._knots if start < k < end), end]
        lows, highs = [], []
        for a, b in itertools.pairwise(cuts):
            if self._shape.kind == "flat" and self._shape.at <= a and b <= self._end:
                held = self._path.price_at(self._shape.at)
                lows.append(held)
                highs.append(held)
                continue
            low, high = self._path.price_range(a, b)
            factors = (self._scale(a), self._scale(b, before=True))
            lows.append(self._quantize(low * min(factors)))
            highs.append(self._quantize(high * max(factors)))
        return min(lows), max(highs)

    def candles(self, interval_minutes: int, since: float, until: float) -> list[Bar]:
        step = interval_minutes * MINUTE
        bars = []
        for bar in self._path.candles(interval_minutes, since, until):
            close_at = min(bar.time + step, until)
            if close_at <= self._shape.at:
                bars.append(bar)
                continue
            low, high = self.price_range(bar.time, close_at) if close_at > bar.time else (bar.low, bar.high)
            open_, close = self.price_at(bar.time), self.price_at(max(bar.time, close_at - 1e-6))
            bars.append(
                Bar(
                    time=bar.time,
                    open=open_,
                    close=close,
                    high=max(high, open_, close),
                    low=min(low, open_, close),
                    vwap=self._quantize(bar.vwap * self._scale(close_at, before=True)),
                    volume=bar.volume,
                    count=bar.count,
                )
            )
        return bars

    def _quantize(self, price: Decimal) -> Decimal:
        """On the tick, and never below one: a fall of 99.999% would price the pair at
        0, and a zero price divides (a viqc order's volume, TradeBalance in that asset)."""
        return max(price.quantize(self._tick), self._tick)

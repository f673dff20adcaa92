"""Technical indicators as pure functions over float series.

Indicators are not money: they are computed in floats, whose 15-16 significant
digits outlast the SIGNIFICANT_DIGITS kept, and converted to Decimal (rounded()) only
for the few values a decision reads, so that prompts, answers and logs carry no long
binary tails. Prices, stops and targets stay Decimal (support_resistance() works on
the candles' own prices). Decimal over 200 candles on two timeframes at every
decision cost a replay a quarter of its time; floats cost it a few percent.

Every series function returns one value per complete window, aligned to the end of
the input: the last element always belongs to the last input value, and too short an
input gives an empty list. Smoothing follows Wilder where the indicator's author did
(RSI, ATR, ADX): the first value is a plain mean, later values x' = (x*(n-1) + v) / n.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from functools import cached_property, lru_cache
from itertools import pairwise

from core.domain.models import Candle

SIGNIFICANT_DIGITS = 12
_ROUNDING = Context(prec=SIGNIFICANT_DIGITS)
_ZERO = Decimal(0)


def rounded(value: Decimal | float) -> Decimal:
    """`value` as a Decimal of SIGNIFICANT_DIGITS significant digits (zero as plain 0)."""
    if not value:
        return _ZERO
    if isinstance(value, Decimal):
        return _ROUNDING.plus(value)
    return _ROUNDING.create_decimal_from_float(value)  # plus(Decimal(value)) without the exact interim


@dataclass(frozen=True)
class Prices:
    """The highs, lows and closes of a run of candles, as floats, converted once."""

    high: list[float]
    low: list[float]
    close: list[float]

    @classmethod
    def of(cls, candles: Sequence[Candle]) -> Prices:
        """Each candle's floats are its own (Candle.hlc), converted once however many
        windows the candle is measured in."""
        if not candles:
            return cls([], [], [])
        high, low, close = zip(*[c.hlc for c in candles], strict=True)
        return cls(list(high), list(low), list(close))

    def __len__(self) -> int:
        return len(self.close)

    def tail(self, count: int) -> Prices:
        return Prices(self.high[-count:], self.low[-count:], self.close[-count:])

    @cached_property
    def true_ranges(self) -> list[float]:
        """True range of each candle after the first (each needs the previous close);
        kept, as ATR and ADX both read them."""
        out: list[float] = []
        append = out.append
        for h, lo, prev in zip(self.high[1:], self.low[1:], self.close):
            # max(h - lo, |h - prev|, |lo - prev|), its comparisons written out: max() and
            # abs() calls were most of what a window's true ranges cost
            span, up, down = h - lo, h - prev, lo - prev
            up = up if up >= 0 else -up
            down = down if down >= 0 else -down
            if up > span:
                span = up
            append(down if down > span else span)
        return out


class PriceWindows:
    """The Prices of the last few windows measured, so that the next window, which
    shares all but its newest candles with one of them, reads only those new candles.

    A bot or a replay measures each timeframe every few candles over a window that has
    moved on by as many: the candles it shares with the previous window are the very
    same objects (closed candles are kept and handed out again), and reading 200 candle
    objects afresh cost a replay more than any one indicator computed over them (in a
    replay they are out of the processor's caches). Reuse goes by object identity
    only, so a window of other candles is converted whole, to the same floats."""

    def __init__(self, keep: int = 8) -> None:
        self._keep = keep
        self._recent: list[tuple[Sequence[Candle], Prices]] = []

    def of(self, candles: Sequence[Candle]) -> Prices:
        """Prices.of(candles), reusing a remembered window's floats where it can."""
        prices = self._reused(candles)
        if prices is None:
            prices = Prices.of(candles)
        self._recent = [(candles, prices), *self._recent[: self._keep - 1]]
        return prices

    def _reused(self, candles: Sequence[Candle]) -> Prices | None:
        if not candles:
            return None
        first = candles[0]
        for old, prices in self._recent:
            # where the window starts in the old one, if the old one has even steps
            step = old[1].time - old[0].time if len(old) > 1 else 0
            start = (first.time - old[0].time) // step if step > 0 else -1
            if not 0 <= start < len(old) or old[start] is not first:
                continue
            # the shared run ends where the old window's forming candle was: look from there
            shared = min(len(old) - start, len(candles))
            while shared and candles[shared - 1] is not old[start + shared - 1]:
                shared -= 1
            if not all(map(operator.is_, candles[:shared], old[start : start + shared])):
                continue
            end = start + shared
            new = Prices.of(candles[shared:])
            return Prices(
                prices.high[start:end] + new.high, prices.low[start:end] + new.low, prices.close[start:end] + new.close
            )
        return None


def _ema_raw(values: Sequence[float], period: int) -> list[float]:
    if period < 1 or len(values) < period:
        return []
    alpha = 2 / (period + 1)
    last = math.fsum(values[:period]) / period
    # a comprehension carrying the running value (:=) appends without a method call a step
    return [last, *[last := last + alpha * (value - last) for value in values[period:]]]


def _wilder(values: Sequence[float], period: int) -> list[float]:
    if period < 1 or len(values) < period:
        return []
    keep = period - 1
    last = math.fsum(values[:period]) / period
    return [last, *[last := (last * keep + value) / period for value in values[period:]]]


def sma(values: Sequence[float], period: int) -> list[float]:
    """Simple moving average; len(values) - period + 1 values. Each window is summed
    exactly (fsum): a rolling float sum would drift by its running error."""
    if period < 1 or len(values) < period:
        return []
    return [math.fsum(values[end - period : end]) / period for end in range(period, len(values) + 1)]


def ema(values: Sequence[float], period: int) -> list[float]:
    """Exponential moving average (alpha 2/(period+1)) seeded with the first window's SMA."""
    return _ema_raw(values, period)


def rsi(values: Sequence[float], period: int = 14) -> list[float]:
    """Wilder's relative strength index, 0..100; len(values) - period values.

    With no losses in the window RSI is 100; with neither gains nor losses it is 50.
    """
    if period < 1 or len(values) <= period:
        return []
    # Wilder's smoothing of the gains and of the losses, in one pass (the first window's
    # sums are exact, so leaving its zeros out changes nothing)
    first = [b - a for a, b in pairwise(values[: period + 1])]
    keep = period - 1
    gain = math.fsum([c for c in first if c > 0]) / period
    loss = math.fsum([-c for c in first if c < 0]) / period
    out = [_rsi(gain, loss)]
    append = out.append
    for a, b in pairwise(values[period:]):
        change = b - a
        if change > 0:
            gain = (gain * keep + change) / period
            loss = loss * keep / period
        elif change < 0:
            gain = gain * keep / period
            loss = (loss * keep - change) / period
        else:
            gain, loss = gain * keep / period, loss * keep / period
        append(_rsi(gain, loss))
    return out


def _rsi(gain: float, loss: float) -> float:
    if loss == 0:
        return 100.0 if gain > 0 else 50.0
    return 100 - 100 / (1 + gain / loss)


@dataclass(frozen=True)
class MACD:
    """MACD line, its signal line and their difference, all aligned to the signal line."""

    line: list[float]
    signal: list[float]
    histogram: list[float]


def macd(values: Sequence[float], fast: int = 12, slow: int = 26, signal: int = 9) -> MACD:
    """Moving average convergence/divergence: EMA(fast) - EMA(slow), and its EMA(signal)."""
    slow_ema = _ema_raw(values, slow)
    fast_ema = _ema_raw(values, fast)[slow - fast :]
    full_line = [f - s for f, s in zip(fast_ema, slow_ema)]
    signal_line = _ema_raw(full_line, signal)
    line = full_line[len(full_line) - len(signal_line) :]
    return MACD(line, signal_line, [m - s for m, s in zip(line, signal_line)])


def true_ranges(prices: Prices) -> list[float]:
    """True range of each candle after the first (each needs the previous close)."""
    return prices.true_ranges


def atr(prices: Prices, period: int = 14) -> list[float]:
    """Wilder's average true range; len(prices) - period values."""
    return _wilder(true_ranges(prices), period)


@dataclass(frozen=True)
class Bands:
    upper: list[float]
    middle: list[float]
    lower: list[float]


def bollinger(values: Sequence[float], period: int = 20, width: float = 2.0) -> Bands:
    """Bollinger bands: SMA(period) +/- width population standard deviations, each
    window's deviation taken about its own mean (two passes: no cancellation)."""
    upper: list[float] = []
    middle: list[float] = []
    lower: list[float] = []
    if period < 1:
        return Bands(upper, middle, lower)
    for end in range(period, len(values) + 1):
        mean, deviation = _band(tuple(values[end - period : end]))
        upper.append(mean + width * deviation)
        middle.append(mean)
        lower.append(mean - width * deviation)
    return Bands(upper, middle, lower)


@lru_cache(maxsize=4096)
def _band(window: tuple[float, ...]) -> tuple[float, float]:
    """The mean and population standard deviation of one window. Unlike the smoothed
    indicators, a band depends on its window's values alone, and successive analyses
    measure mostly the same windows again (a replay's next decision shares all but
    its newest few): they are kept."""
    mean = math.fsum(window) / len(window)
    return mean, math.sqrt(math.fsum([(v - mean) * (v - mean) for v in window]) / len(window))


@dataclass(frozen=True)
class DirectionalIndex:
    """ADX with the directional indicators it is built from (+DI aligned to ADX)."""

    adx: list[float]
    plus_di: list[float]
    minus_di: list[float]


def adx(prices: Prices, period: int = 14) -> DirectionalIndex:
    """Wilder's average directional index; len(prices) - 2*period + 1 values.

    The true range and the directional movements are smoothed in one pass, with the
    same arithmetic as _wilder on each, instead of three smoothed lists built and
    then zipped; the movements of the first window are summed first, the rest met as
    the pass reaches them."""
    ranges = true_ranges(prices)
    if period < 1 or len(ranges) < period:
        return DirectionalIndex([], [], [])
    high, low = prices.high, prices.low
    plus_dm: list[float] = []
    minus_dm: list[float] = []
    for i in range(1, period + 1):
        up, down = high[i] - high[i - 1], low[i - 1] - low[i]
        plus_dm.append(up if up > down and up > 0 else 0.0)
        minus_dm.append(down if down > up and down > 0 else 0.0)
    keep = period - 1
    tr = math.fsum(ranges[:period]) / period
    p = math.fsum(plus_dm) / period
    m = math.fsum(minus_dm) / period
    if tr:
        pdi, mdi = 100 * p / tr, 100 * m / tr
    else:
        pdi = mdi = 0.0
    plus_di = [pdi]
    minus_di = [mdi]
    total = pdi + mdi
    dx = [100 * abs(pdi - mdi) / total if total else 0.0]
    add_plus, add_minus, add_dx = plus_di.append, minus_di.append, dx.append
    for span, h, prev_h, lo, prev_lo in zip(
        ranges[period:], high[period + 1 :], high[period:], low[period + 1 :], low[period:]
    ):
        up, down = h - prev_h, prev_lo - lo
        tr = (tr * keep + span) / period
        p = (p * keep + (up if up > down and up > 0 else 0.0)) / period
        m = (m * keep + (down if down > up and down > 0 else 0.0)) / period
        if tr:
            pdi, mdi = 100 * p / tr, 100 * m / tr
        else:
            pdi = mdi = 0.0
        add_plus(pdi)
        add_minus(mdi)
        total = pdi + mdi
        add_dx(100 * abs(pdi - mdi) / total if total else 0.0)
    adx_line = _wilder(dx, period)
    skip = len(dx) - len(adx_line)
    return DirectionalIndex(adx_line, plus_di[skip:], minus_di[skip:])


def choppiness(prices: Prices, period: int = 14) -> list[float]:
    """Choppiness index, 0..100: near 100 the path wanders, near 0 it runs one way.

    100 * log10(sum of true ranges / (highest high - lowest low)) / log10(period).
    """
    ranges = true_ranges(prices)
    out: list[float] = []
    log_period = math.log10(period)
    for end in range(period, len(ranges) + 1):
        span = max(prices.high[end - period + 1 : end + 1]) - min(prices.low[end - period + 1 : end + 1])
        total = math.fsum(ranges[end - period : end])
        out.append(100 * math.log10(total / span) / log_period if span > 0 else 0.0)
    return out


@dataclass(frozen=True)
class Levels:
    support: Decimal | None
    resistance: Decimal | None


def swing_points(candles: Sequence[Candle], window: int = 2) -> tuple[list[Decimal], list[Decimal]]:
    """Swing lows and swing highs: a low (high) no other candle within `window` on
    either side undercuts (exceeds). Oldest first."""
    all_lows = [c.low for c in candles]
    all_highs = [c.high for c in candles]
    lows: list[Decimal] = []
    highs: list[Decimal] = []
    for i in range(window, len(candles) - window):
        # the candle's own value is in its neighbourhood, so <= its min is <= every neighbour
        low, high = all_lows[i], all_highs[i]
        if low <= min(all_lows[i - window : i + window + 1]):
            lows.append(low)
        if high >= max(all_highs[i - window : i + window + 1]):
            highs.append(high)
    return lows, highs


def support_resistance(candles: Sequence[Candle], price: Decimal, lookback: int = 60, window: int = 2) -> Levels:
    """The nearest swing low below `price` and the nearest swing high above it, among
    the last `lookback` candles; None where the price has no swing point on that side."""
    lows, highs = swing_points(candles[-lookback:], window)
    below = [low for low in lows if low < price]
    above = [high for high in highs if high > price]
    return Levels(max(below) if below else None, min(above) if above else None)

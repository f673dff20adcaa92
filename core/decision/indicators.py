"""Technical indicators as pure functions over Decimal series.

Every series function returns one value per complete window, aligned to the end of
the input: the last element always belongs to the last input value, and too short an
input gives an empty list. Arithmetic is Decimal throughout; results are rounded to
SIGNIFICANT_DIGITS so that the long tails of repeated division do not leak into
prompts, answers and logs. Smoothing follows Wilder where the indicator's author did
(RSI, ATR, ADX): the first value is a plain mean, later values x' = (x*(n-1) + v) / n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from itertools import pairwise

from core.domain.models import Candle

SIGNIFICANT_DIGITS = 12
_ROUNDING = Context(prec=SIGNIFICANT_DIGITS)
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


def rounded(value: Decimal) -> Decimal:
    """`value` to SIGNIFICANT_DIGITS significant digits (zero as plain 0, whatever its exponent)."""
    return _ROUNDING.plus(value) if value else _ZERO


def _rounded_all(values: Sequence[Decimal]) -> list[Decimal]:
    plus = _ROUNDING.plus  # rounded(), inlined: this runs for every value of every series
    return [plus(v) if v else _ZERO for v in values]


def _mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, _ZERO) / len(values)


def _ema_raw(values: Sequence[Decimal], period: int) -> list[Decimal]:
    if period < 1 or len(values) < period:
        return []
    alpha = Decimal(2) / (period + 1)
    last = _mean(values[:period])
    out = [last]
    for value in values[period:]:
        last = last + alpha * (value - last)
        out.append(last)
    return out


def _wilder_raw(values: Sequence[Decimal], period: int) -> list[Decimal]:
    if period < 1 or len(values) < period:
        return []
    keep, divisor = Decimal(period - 1), Decimal(period)
    last = _mean(values[:period])
    out = [last]
    for value in values[period:]:
        last = (last * keep + value) / divisor
        out.append(last)
    return out


def sma(values: Sequence[Decimal], period: int) -> list[Decimal]:
    """Simple moving average; len(values) - period + 1 values."""
    if period < 1 or len(values) < period:
        return []
    window_sum = sum(values[:period], _ZERO)
    out = [window_sum / period]
    for i in range(period, len(values)):
        window_sum += values[i] - values[i - period]
        out.append(window_sum / period)
    return _rounded_all(out)


def ema(values: Sequence[Decimal], period: int) -> list[Decimal]:
    """Exponential moving average (alpha 2/(period+1)) seeded with the first window's SMA."""
    return _rounded_all(_ema_raw(values, period))


def rsi(values: Sequence[Decimal], period: int = 14) -> list[Decimal]:
    """Wilder's relative strength index, 0..100; len(values) - period values.

    With no losses in the window RSI is 100; with neither gains nor losses it is 50.
    """
    changes = [b - a for a, b in pairwise(values)]
    gains = _wilder_raw([max(c, _ZERO) for c in changes], period)
    losses = _wilder_raw([max(-c, _ZERO) for c in changes], period)
    out: list[Decimal] = []
    for gain, loss in zip(gains, losses):
        if loss == 0:
            out.append(_HUNDRED if gain > 0 else Decimal(50))
        else:
            out.append(_HUNDRED - _HUNDRED / (1 + gain / loss))
    return _rounded_all(out)


@dataclass(frozen=True)
class MACD:
    """MACD line, its signal line and their difference, all aligned to the signal line."""

    line: list[Decimal]
    signal: list[Decimal]
    histogram: list[Decimal]


def macd(values: Sequence[Decimal], fast: int = 12, slow: int = 26, signal: int = 9) -> MACD:
    """Moving average convergence/divergence: EMA(fast) - EMA(slow), and its EMA(signal)."""
    slow_ema = _ema_raw(values, slow)
    fast_ema = _ema_raw(values, fast)[slow - fast :]
    full_line = [f - s for f, s in zip(fast_ema, slow_ema)]
    signal_line = _ema_raw(full_line, signal)
    line = full_line[len(full_line) - len(signal_line) :]
    histogram = [m - s for m, s in zip(line, signal_line)]
    return MACD(_rounded_all(line), _rounded_all(signal_line), _rounded_all(histogram))


def true_ranges(candles: Sequence[Candle]) -> list[Decimal]:
    """True range of each candle after the first (each needs the previous close)."""
    return [max(c.high - c.low, abs(c.high - prev.close), abs(c.low - prev.close)) for prev, c in pairwise(candles)]


def atr(candles: Sequence[Candle], period: int = 14) -> list[Decimal]:
    """Wilder's average true range; len(candles) - period values."""
    return _rounded_all(_wilder_raw(true_ranges(candles), period))


@dataclass(frozen=True)
class Bands:
    upper: list[Decimal]
    middle: list[Decimal]
    lower: list[Decimal]


def bollinger(values: Sequence[Decimal], period: int = 20, width: Decimal = Decimal(2)) -> Bands:
    """Bollinger bands: SMA(period) +/- width population standard deviations.

    The windows' sums and sums of squares roll along: prices carry few digits, so both
    stay exact in Decimal's 28, and the variance sum(x^2)/n - mean^2 is the two-pass one.
    """
    if period < 1 or len(values) < period:
        return Bands([], [], [])
    upper: list[Decimal] = []
    middle: list[Decimal] = []
    lower: list[Decimal] = []
    count = Decimal(period)
    total = sum(values[:period], _ZERO)
    squares = sum((v * v for v in values[:period]), _ZERO)
    for end in range(period, len(values) + 1):
        if end > period:
            added, dropped = values[end - 1], values[end - 1 - period]
            total += added - dropped
            squares += added * added - dropped * dropped
        mean = total / count
        deviation = max(squares / count - mean * mean, _ZERO).sqrt()
        upper.append(mean + width * deviation)
        middle.append(mean)
        lower.append(mean - width * deviation)
    return Bands(_rounded_all(upper), _rounded_all(middle), _rounded_all(lower))


@dataclass(frozen=True)
class DirectionalIndex:
    """ADX with the directional indicators it is built from (+DI aligned to ADX)."""

    adx: list[Decimal]
    plus_di: list[Decimal]
    minus_di: list[Decimal]


def adx(candles: Sequence[Candle], period: int = 14) -> DirectionalIndex:
    """Wilder's average directional index; len(candles) - 2*period + 1 values."""
    plus_dm: list[Decimal] = []
    minus_dm: list[Decimal] = []
    for prev, c in pairwise(candles):
        up, down = c.high - prev.high, prev.low - c.low
        plus_dm.append(up if up > down and up > 0 else _ZERO)
        minus_dm.append(down if down > up and down > 0 else _ZERO)
    smoothed_tr = _wilder_raw(true_ranges(candles), period)
    smoothed_plus = _wilder_raw(plus_dm, period)
    smoothed_minus = _wilder_raw(minus_dm, period)
    plus_di: list[Decimal] = []
    minus_di: list[Decimal] = []
    dx: list[Decimal] = []
    for tr, p, m in zip(smoothed_tr, smoothed_plus, smoothed_minus):
        pdi = _HUNDRED * p / tr if tr else _ZERO
        mdi = _HUNDRED * m / tr if tr else _ZERO
        plus_di.append(pdi)
        minus_di.append(mdi)
        dx.append(_HUNDRED * abs(pdi - mdi) / (pdi + mdi) if pdi + mdi else _ZERO)
    adx_line = _wilder_raw(dx, period)
    skip = len(dx) - len(adx_line)
    return DirectionalIndex(_rounded_all(adx_line), _rounded_all(plus_di[skip:]), _rounded_all(minus_di[skip:]))


def choppiness(candles: Sequence[Candle], period: int = 14) -> list[Decimal]:
    """Choppiness index, 0..100: near 100 the path wanders, near 0 it runs one way.

    100 * log10(sum of true ranges / (highest high - lowest low)) / log10(period).
    The logarithm is taken in floats: Decimal's is a hundred times slower, and a
    float's 15 significant digits outlast the SIGNIFICANT_DIGITS kept.
    """
    ranges = true_ranges(candles)
    out: list[Decimal] = []
    log_period = math.log10(period)
    for end in range(period, len(ranges) + 1):
        window = candles[end - period + 1 : end + 1]
        span = max(c.high for c in window) - min(c.low for c in window)
        total = sum(ranges[end - period : end], _ZERO)
        out.append(Decimal(100 * math.log10(total / span) / log_period) if span > 0 else _ZERO)
    return _rounded_all(out)


@dataclass(frozen=True)
class Levels:
    support: Decimal | None
    resistance: Decimal | None


def swing_points(candles: Sequence[Candle], window: int = 2) -> tuple[list[Decimal], list[Decimal]]:
    """Swing lows and swing highs: a low (high) no other candle within `window` on
    either side undercuts (exceeds). Oldest first."""
    lows: list[Decimal] = []
    highs: list[Decimal] = []
    for i in range(window, len(candles) - window):
        neighbours = [*candles[i - window : i], *candles[i + 1 : i + window + 1]]
        if all(candles[i].low <= n.low for n in neighbours):
            lows.append(candles[i].low)
        if all(candles[i].high >= n.high for n in neighbours):
            highs.append(candles[i].high)
    return lows, highs


def support_resistance(candles: Sequence[Candle], price: Decimal, lookback: int = 60, window: int = 2) -> Levels:
    """The nearest swing low below `price` and the nearest swing high above it, among
    the last `lookback` candles; None where the price has no swing point on that side."""
    lows, highs = swing_points(candles[-lookback:], window)
    below = [low for low in lows if low < price]
    above = [high for high in highs if high > price]
    return Levels(max(below) if below else None, min(above) if above else None)

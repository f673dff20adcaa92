"""Indicators against hand-checked values, a published table, and float reference
implementations written here independently of core.decision.indicators."""

from __future__ import annotations

import math
import random
import statistics
from decimal import Decimal

import pytest

from core.decision import indicators as ti
from core.domain.models import Candle

REL = 1e-8


def _series(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    price, out = 100.0, []
    for _ in range(n):
        price *= 1 + rng.uniform(-0.02, 0.021)
        out.append(round(price, 4))
    return out


def _candles(n: int, seed: int) -> list[Candle]:
    rng = random.Random(seed)
    out, prev = [], 100.0
    for i, close in enumerate(_series(n, seed)):
        high = max(prev, close) + rng.uniform(0, 1.5)
        low = min(prev, close) - rng.uniform(0, 1.5)
        out.append(
            Candle(
                i * 60,
                Decimal(f"{prev:.4f}"),
                Decimal(f"{high:.4f}"),
                Decimal(f"{low:.4f}"),
                Decimal(f"{close:.4f}"),
                Decimal(1),
            )
        )
        prev = close
    return out


def _prices(candles: list[Candle]) -> ti.Prices:
    return ti.Prices.of(candles)


def _close(actual: list[float], expected: list[float]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a == pytest.approx(e, rel=REL, abs=1e-9)


# float references ---------------------------------------------------------------


def ref_ema(xs: list[float], n: int) -> list[float]:
    k = 2 / (n + 1)
    out = [sum(xs[:n]) / n]
    for x in xs[n:]:
        out.append(x * k + out[-1] * (1 - k))
    return out


def ref_rsi(xs: list[float], n: int) -> list[float]:
    deltas = [xs[i] - xs[i - 1] for i in range(1, len(xs))]
    avg_up = sum(d for d in deltas[:n] if d > 0) / n
    avg_down = sum(-d for d in deltas[:n] if d < 0) / n
    out = [100 - 100 / (1 + avg_up / avg_down)]
    for d in deltas[n:]:
        avg_up = (avg_up * (n - 1) + max(d, 0)) / n
        avg_down = (avg_down * (n - 1) + max(-d, 0)) / n
        out.append(100 - 100 / (1 + avg_up / avg_down))
    return out


def ref_tr(cs: list[Candle]) -> list[float]:
    out = []
    for i in range(1, len(cs)):
        h, lo, pc = float(cs[i].high), float(cs[i].low), float(cs[i - 1].close)
        out.append(max(h - lo, abs(h - pc), abs(lo - pc)))
    return out


def ref_atr(cs: list[Candle], n: int) -> list[float]:
    trs = ref_tr(cs)
    out = [sum(trs[:n]) / n]
    for tr in trs[n:]:
        out.append((out[-1] * (n - 1) + tr) / n)
    return out


def ref_adx(cs: list[Candle], n: int) -> tuple[list[float], list[float], list[float]]:
    """Wilder's original bookkeeping: running sums (S - S/n + x), not means."""
    trs = ref_tr(cs)
    pdm, mdm = [], []
    for i in range(1, len(cs)):
        up = float(cs[i].high) - float(cs[i - 1].high)
        down = float(cs[i - 1].low) - float(cs[i].low)
        pdm.append(up if up > down and up > 0 else 0.0)
        mdm.append(down if down > up and down > 0 else 0.0)
    s_tr, s_p, s_m = sum(trs[:n]), sum(pdm[:n]), sum(mdm[:n])
    pdis, mdis, dxs = [], [], []
    for i in range(n - 1, len(trs)):
        if i >= n:
            s_tr, s_p, s_m = s_tr - s_tr / n + trs[i], s_p - s_p / n + pdm[i], s_m - s_m / n + mdm[i]
        pdi, mdi = 100 * s_p / s_tr, 100 * s_m / s_tr
        pdis.append(pdi)
        mdis.append(mdi)
        dxs.append(100 * abs(pdi - mdi) / (pdi + mdi))
    adx = [sum(dxs[:n]) / n]
    for dx in dxs[n:]:
        adx.append((adx[-1] * (n - 1) + dx) / n)
    return adx, pdis[n - 1 :], mdis[n - 1 :]


# hand-checked -------------------------------------------------------------------


def test_sma_and_ema_on_small_series() -> None:
    assert ti.sma([1, 2, 3, 4, 5], 3) == [2, 3, 4]
    # EMA(2): alpha 2/3, seeded with mean(2, 4) = 3; then 3 + 2/3*(6-3) = 5; 5 + 2/3*(8-5) = 7
    assert ti.ema([2, 4, 6, 8], 2) == [3, 5, 7]


def test_too_short_inputs_give_empty_series() -> None:
    assert ti.sma([1, 2], 3) == []
    assert ti.ema([1, 2], 3) == []
    assert ti.rsi([1.0] * 14, 14) == []
    assert ti.macd(_series(33, 1)).line == []
    assert len(ti.macd(_series(34, 1)).line) == 1
    assert ti.adx(_prices(_candles(27, 1))).adx == []
    assert len(ti.adx(_prices(_candles(28, 1))).adx) == 1


def test_rsi_matches_the_published_stockcharts_table() -> None:
    closes = [
        "44.3389",
        "44.0902",
        "44.1497",
        "43.6124",
        "44.3278",
        "44.8264",
        "45.0955",
        "45.4245",
        "45.8433",
        "46.0826",
        "45.8931",
        "46.0328",
        "45.6140",
        "46.2820",
        "46.2820",
        "46.0028",
        "46.0328",
        "46.4116",
        "46.2222",
        "45.6439",
        "46.2122",
        "46.2521",
        "45.7137",
        "46.4515",
    ]
    published = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38]
    assert [round(v, 2) for v in ti.rsi([float(c) for c in closes], 14)] == published


def test_rsi_edges_only_gains_is_100_no_change_is_50() -> None:
    assert ti.rsi([float(i) for i in range(20)], 14)[-1] == 100
    assert ti.rsi([5.0] * 20, 14) == [50] * 6


def test_atr_of_three_hand_built_candles() -> None:
    cs = [
        Candle(0, Decimal(10), Decimal(11), Decimal(9), Decimal(10), Decimal(1)),
        Candle(60, Decimal(10), Decimal(14), Decimal(10), Decimal(13), Decimal(1)),  # TR = 14-10 = 4
        Candle(120, Decimal(13), Decimal(13), Decimal(11), Decimal(12), Decimal(1)),  # TR = |11-13| vs 2 = 2
        Candle(180, Decimal(12), Decimal(18), Decimal(17), Decimal(17), Decimal(1)),  # TR = 18-12 = 6
    ]
    assert ti.true_ranges(_prices(cs)) == [4, 2, 6]
    assert ti.atr(_prices(cs), 2) == [3, 4.5]  # mean(4, 2); (3*1 + 6) / 2


def test_support_and_resistance_are_the_nearest_swing_points() -> None:
    lows = [10, 9, 7, 9, 10, 11, 10, 8.5, 10, 11, 12, 11, 12]
    highs = [low + 2 for low in lows]
    highs[5], highs[10] = 16, 15
    cs = [
        Candle(i, Decimal(str(lo)), Decimal(str(h)), Decimal(str(lo)), Decimal(str(lo)), Decimal(1))
        for i, (lo, h) in enumerate(zip(lows, highs))
    ]
    levels = ti.support_resistance(cs, Decimal("12.5"), window=2)
    assert levels == ti.Levels(support=Decimal("8.5"), resistance=Decimal(15))
    assert ti.support_resistance(cs, Decimal(20), window=2).resistance is None
    assert ti.support_resistance(cs, Decimal(5), window=2).support is None


def test_values_read_are_rounded_to_significant_digits() -> None:
    third = ti.rounded(ti.sma([1, 1, 2], 3)[0])
    assert third == Decimal("1.33333333333")
    assert len(third.as_tuple().digits) == ti.SIGNIFICANT_DIGITS
    assert ti.rounded(0.0) == 0
    assert ti.rounded(Decimal("1.234567890123456")) == Decimal("1.23456789012")


# against the float references ---------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_moving_averages_match_reference(seed: int) -> None:
    xs = _series(120, seed)
    _close(ti.sma(xs, 20), [statistics.fmean(xs[i - 20 : i]) for i in range(20, 121)])
    _close(ti.ema(xs, 20), ref_ema(xs, 20))


@pytest.mark.parametrize("seed", [1, 2])
def test_rsi_matches_reference(seed: int) -> None:
    xs = _series(120, seed)
    _close(ti.rsi(xs, 14), ref_rsi(xs, 14))


def test_macd_matches_reference() -> None:
    xs = _series(150, 3)
    fast, slow = ref_ema(xs, 12)[14:], ref_ema(xs, 26)
    line = [f - s for f, s in zip(fast, slow)]
    signal = ref_ema(line, 9)
    result = ti.macd(xs)
    _close(result.line, line[8:])
    _close(result.signal, signal)
    _close(result.histogram, [m - s for m, s in zip(line[8:], signal)])


def test_atr_matches_reference() -> None:
    cs = _candles(100, 4)
    _close(ti.atr(_prices(cs), 14), ref_atr(cs, 14))


def test_bollinger_matches_reference() -> None:
    xs = _series(80, 5)
    mids = [statistics.fmean(xs[i - 20 : i]) for i in range(20, 81)]
    devs = [statistics.pstdev(xs[i - 20 : i]) for i in range(20, 81)]
    bands = ti.bollinger(xs)
    _close(bands.middle, mids)
    _close(bands.upper, [m + 2 * d for m, d in zip(mids, devs)])
    _close(bands.lower, [m - 2 * d for m, d in zip(mids, devs)])


def test_adx_matches_wilders_running_sums() -> None:
    cs = _candles(120, 6)
    adx, plus_di, minus_di = ref_adx(cs, 14)
    result = ti.adx(_prices(cs), 14)
    _close(result.adx, adx)
    _close(result.plus_di, plus_di)
    _close(result.minus_di, minus_di)


def test_choppiness_matches_reference() -> None:
    cs = _candles(60, 7)
    trs = ref_tr(cs)
    expected = []
    for end in range(14, len(trs) + 1):
        window = cs[end - 13 : end + 1]
        span = max(float(c.high) for c in window) - min(float(c.low) for c in window)
        expected.append(100 * math.log10(sum(trs[end - 14 : end]) / span) / math.log10(14))
    _close(ti.choppiness(_prices(cs), 14), expected)

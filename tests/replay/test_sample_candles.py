"""The sample file shipped in examples/: a year of clean hourly candles that its
script, kept beside it, writes again byte for byte."""

from __future__ import annotations

import importlib.util
import math
import statistics
import sys
from itertools import pairwise
from pathlib import Path
from types import ModuleType

from core.flows.candles import CandleFormat, load_candles

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE = EXAMPLES / "btc_usd_1h.csv"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_candles", EXAMPLES / "generate_candles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_sample_is_a_clean_year_of_hourly_kraken_candles() -> None:
    series = load_candles(SAMPLE, interval_minutes=60)

    assert series.format is CandleFormat.KRAKEN_OHLCVT
    assert len(series.candles) >= 8_760
    assert series.problems == [] and series.gaps == [] and series.notes == []
    assert series.candles[-1].time - series.candles[0].time == (len(series.candles) - 1) * 3_600


def test_the_sample_moves_like_a_market() -> None:
    closes = [float(c.close) for c in load_candles(SAMPLE, interval_minutes=60).candles]
    returns = [math.log(b / a) for a, b in pairwise(closes)]
    yearly_vol = statistics.pstdev(returns) * math.sqrt(8_760)
    assert 0.3 < yearly_vol < 0.9  # bitcoin-like, neither flat nor wild
    magnitudes = [abs(r) for r in returns]
    mean = statistics.fmean(magnitudes)
    lag_one = sum((a - mean) * (b - mean) for a, b in pairwise(magnitudes))
    assert lag_one / sum((m - mean) ** 2 for m in magnitudes) > 0.1  # volatility clusters
    monthly = closes[:: 24 * 30]
    assert max(monthly) / min(monthly) > 1.3  # trends carry the price far from where it began


def test_the_script_writes_the_sample_again() -> None:
    rows = generator().generate(2025, 365 * 24)
    assert "\n".join(rows) + "\n" == SAMPLE.read_text(encoding="utf-8")

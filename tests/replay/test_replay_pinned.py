"""The replay's report on the first 700 candles of the shipped sample, pinned: trades,
P&L, fees, votes, rejections, invariant checks and every point of the equity curve must
stay exactly what they were when the file was written (tests/replay/data/example_700.json).
An optimisation of the replay (indicators, snapshots, storage, the sandbox's wire) must
leave them all alone; a deliberate change of behaviour rewrites the file and says why."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.flows.candles import CandleSeries, load_candles
from core.flows.performance import EquityPoint
from core.flows.replay import ReplayOptions
from tests.replay.conftest import RunReplay

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "btc_usd_1h.csv"
PINNED = Path(__file__).parent / "data" / "example_700.json"
CANDLES = 700
VOLATILE = ("run_id", "db_path", "timing", "source")  # the source: where the checkout lies


def pinned_options(series: CandleSeries) -> ReplayOptions:
    return ReplayOptions(every=4, seed=4, end=series.candles[0].time + CANDLES * series.step)


def pinned_figures(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in summary.items() if key not in VOLATILE}


def points_digest(points: Sequence[EquityPoint]) -> str:
    text = "\n".join(f"{p.time} {p.equity} {p.price} {p.held}" for p in points)
    return hashlib.sha256(text.encode()).hexdigest()


async def test_the_sample_replays_to_the_pinned_report(replay: RunReplay) -> None:
    series = load_candles(SAMPLE, interval_minutes=60)
    options = pinned_options(series)

    result = await replay(series, every=options.every, seed=options.seed, end=options.end)

    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    assert pinned_figures(result.to_dict()) == pinned["report"]
    assert points_digest(result.points) == pinned["points_sha256"]
    assert result.figures.trades.trades > 0 and result.ok  # the slice trades, and safely

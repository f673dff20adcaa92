"""Candle files written by the tests, scripted models, and a replay runner over them."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from cli.replay import replay_sandbox
from cli.wiring import fault_catalog
from core.decision.llm.factory import ModelSet
from core.decision.llm.interface import ModelContext, ModelReply
from core.domain.config import Settings, load_settings
from core.flows.candles import CandleSeries, parse_candles
from core.flows.replay import WARMUP_MINUTES, Replay, ReplayOptions, ReplayResult

H = 3_600
T0 = 1_735_689_600  # 2025-01-01T00:00:00Z
WARMUP_CANDLES = WARMUP_MINUTES // 60
FIRST_DECISION = T0 + WARMUP_CANDLES * H

Row = tuple[str, str, str, str]  # open, high, low, close


def kraken_lines(rows: list[Row], *, start: int = T0, volume: str = "10") -> list[str]:
    return [f"{start + i * H},{o},{h},{low},{c},{volume},100" for i, (o, h, low, c) in enumerate(rows)]


def flat(price: str, count: int) -> list[Row]:
    """Quiet candles around `price`: a fifty-dollar wick either side."""
    p = Decimal(price)
    return [(price, str(p + 50), str(p - 50), price)] * count


def random_walk(count: int, seed: int, start: float = 50_000.0) -> list[Row]:
    """A seeded walk with trends long enough for the offline models to act on."""
    rng = random.Random(seed)
    rows: list[Row] = []
    price, drift = start, 0.0
    for _ in range(count):
        if rng.random() < 0.03:
            drift = rng.choice((-0.004, 0.0, 0.004))
        close = price * math.exp(drift + rng.gauss(0, 0.006))
        high = max(price, close) * (1 + abs(rng.gauss(0, 0.002)))
        low = min(price, close) * (1 - abs(rng.gauss(0, 0.002)))
        rows.append((f"{price:.1f}", f"{high:.1f}", f"{low:.1f}", f"{close:.1f}"))
        price = close
    return rows


def series_of(rows: list[Row]) -> CandleSeries:
    return parse_candles(kraken_lines(rows), interval_minutes=60, source="test.csv")


class Scripted:
    """A model slot answering with a function of the context."""

    def __init__(self, name: str, answer: Callable[[ModelContext], Mapping[str, object]]) -> None:
        self.name = name
        self._answer = answer

    async def generate(self, prompt: str, *, context: ModelContext) -> ModelReply:
        return ModelReply(text=json.dumps(self._answer(context), default=str), model=self.name)


def planned_buys(plan: Mapping[int, tuple[str, str]]) -> Callable[[], ModelSet]:
    """Six traders that all buy at the planned hours (epoch -> stop, target) and hold
    otherwise; the analysts read a calm bull market, so nothing conflicts."""

    def vote(context: ModelContext) -> Mapping[str, object]:
        hour = int(context.snapshot.timestamp // H * H)
        if hour not in plan:
            return {"action": "HOLD", "confidence": 0.5, "reasoning": "not in the plan"}
        stop, target = plan[hour]
        return {
            "action": "BUY",
            "confidence": 0.8,
            "entry": str(context.snapshot.price),
            "stop_loss": stop,
            "take_profit": target,
            "reasoning": "the plan",
        }

    def models() -> ModelSet:
        return ModelSet(
            ta=Scripted("ta", lambda _: {"bias": "long", "confidence": 0.8, "trend": "up"}),
            regime=Scripted("regime", lambda _: {"regime": "trending_bull", "confidence": 0.8}),
            traders=[Scripted(f"trader_{i}", vote) for i in range(1, 7)],
            conflict=Scripted("conflict", lambda _: {"action": "proceed", "confidence": 0.8, "size_factor": 1}),
            quorum=4,
            answer_timeout_s=10.0,
        )

    return models


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(None, db=tmp_path / "tg.db")


RunReplay = Callable[..., Awaitable[ReplayResult]]


@pytest.fixture
def replay(settings: Settings, tmp_path: Path) -> RunReplay:
    """`await replay(series, models=None, **options)`: one replay in tmp_path."""

    async def run(
        series: CandleSeries, models: Callable[[], ModelSet] | None = None, **options: object
    ) -> ReplayResult:
        runner = Replay(
            settings, replay_sandbox(settings), tmp_path / "replays", catalog=fault_catalog(), models=models
        )
        return await runner.run(series, ReplayOptions(**options))  # type: ignore[arg-type]

    return run

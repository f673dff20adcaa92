"""Synthetic markets and scripted models for the decision-side tests."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from decimal import Decimal

import pytest

from core.decision.llm.interface import ModelContext, ModelReply
from core.domain.models import Candle, MarketSnapshot, Ticker

START = 1_700_000_000


def candles_from_closes(closes: Iterable[float], interval: int, *, seed: int = 1) -> list[Candle]:
    """Candles opening at the previous close, with seeded wicks of up to 0.2%."""
    rng = random.Random(seed)
    out: list[Candle] = []
    prev: float | None = None
    for i, close in enumerate(closes):
        open_ = close if prev is None else prev
        high = max(open_, close) * (1 + rng.uniform(0, 0.002))
        low = min(open_, close) * (1 - rng.uniform(0, 0.002))
        out.append(
            Candle(
                START + i * interval * 60,
                Decimal(f"{open_:.2f}"),
                Decimal(f"{high:.2f}"),
                Decimal(f"{low:.2f}"),
                Decimal(f"{close:.2f}"),
                Decimal("1.5"),
            )
        )
        prev = close
    return out


def snapshot_of(candles: dict[int, list[Candle]], symbol: str = "BTC/USDT") -> MarketSnapshot:
    last = candles[min(candles)][-1].close
    return MarketSnapshot(symbol, float(START), Ticker(last - Decimal("0.01"), last + Decimal("0.01"), last), candles)


def trend_closes(n: int, growth: float, *, seed: int) -> list[float]:
    """Compounding growth with 3% pullbacks (a wave of ~19 candles) and noise."""
    rng = random.Random(seed)
    wave = math.copysign(0.03, growth)  # a falling market mirrors the rising one
    return [100 * (1 + growth) ** i * (1 + wave * math.sin(i / 3) + rng.uniform(-0.001, 0.001)) for i in range(n)]


def flat_closes(n: int, *, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [100 + rng.uniform(-1, 1) for _ in range(n)]


class Markets:
    """The builders, for tests that shape their own market."""

    candles = staticmethod(candles_from_closes)
    snapshot = staticmethod(snapshot_of)
    flat_closes = staticmethod(flat_closes)
    trend_closes = staticmethod(trend_closes)


@pytest.fixture
def markets() -> type[Markets]:
    return Markets


@pytest.fixture
def uptrend() -> MarketSnapshot:
    """A steady climb whose last candles are a fresh up-leg of the wave."""
    return snapshot_of(
        {
            60: candles_from_closes(trend_closes(192, 0.004, seed=3), 60, seed=3),
            240: candles_from_closes(trend_closes(120, 0.012, seed=4), 240, seed=4),
        }
    )


@pytest.fixture
def downtrend() -> MarketSnapshot:
    """The mirror: a steady fall ending on a fresh down-leg."""
    return snapshot_of(
        {
            60: candles_from_closes(trend_closes(192, -0.004, seed=5), 60, seed=5),
            240: candles_from_closes(trend_closes(120, -0.012, seed=6), 240, seed=6),
        }
    )


@pytest.fixture
def flat() -> MarketSnapshot:
    return snapshot_of(
        {
            60: candles_from_closes(flat_closes(200, seed=7), 60, seed=7),
            240: candles_from_closes(flat_closes(120, seed=8), 240, seed=8),
        }
    )


class ScriptedModel:
    """Answers the given texts in turn (the last one again when they run out);
    an Exception in the script is raised instead of answered."""

    def __init__(self, name: str, *script: str | Exception) -> None:
        self.name = name
        self.script = list(script)
        self.prompts: list[str] = []

    async def generate(self, prompt: str, *, context: ModelContext) -> ModelReply:
        self.prompts.append(prompt)
        item = self.script[min(len(self.prompts), len(self.script)) - 1]
        if isinstance(item, Exception):
            raise item
        return ModelReply(text=item, model=self.name)


@pytest.fixture
def scripted() -> Callable[..., ScriptedModel]:
    return ScriptedModel

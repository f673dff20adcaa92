"""The exchange's pluggable models of how much fills, how long a request takes and
what a trade costs, each injected into `Exchange`.

The exchange hands every draw its own `random.Random`, seeded from the exchange's seed
and the draw's identity (the order and its fill attempt, the request's serial number),
so the same seed gives byte-identical outcomes whatever order things are asked in, and
no random state needs saving between processes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from simulator.matching import fee_rate
from simulator.pairs import Pair


class FillModel(Protocol):
    def fill_fraction(self, rng: random.Random, *, maker: bool, attempt: int) -> Decimal:
        """The share, in [0, 1], of an order's remaining volume that trades at its
        `attempt`-th chance to fill (0: the first; a share of 0: nothing this time)."""


class LatencyModel(Protocol):
    def delay(self, rng: random.Random, endpoint: str) -> float:
        """Seconds of simulated time between a request's arrival and its effect."""


class FeeModel(Protocol):
    def rate(self, pair: Pair, *, maker: bool, thirty_day_volume: Decimal) -> Decimal:
        """The fee as a fraction of the trade's cost."""


class FullFills:
    """Every chance to fill fills everything that is left (Kraken's usual case)."""

    def fill_fraction(self, rng: random.Random, *, maker: bool, attempt: int) -> Decimal:
        return Decimal(1)


@dataclass(frozen=True)
class PartialFills:
    """With `probability` a fill takes only a share of what is left, drawn uniformly
    between `smallest` and `largest`; otherwise it takes everything."""

    probability: Decimal = Decimal("0.5")
    smallest: Decimal = Decimal("0.1")
    largest: Decimal = Decimal("0.9")

    def __post_init__(self) -> None:
        if not (0 <= self.probability <= 1 and 0 <= self.smallest <= self.largest <= 1):
            raise ValueError("PartialFills takes 0 <= probability <= 1 and 0 <= smallest <= largest <= 1")

    def fill_fraction(self, rng: random.Random, *, maker: bool, attempt: int) -> Decimal:
        if Decimal(rng.randrange(1_000_000)) / 1_000_000 >= self.probability:
            return Decimal(1)
        share = Decimal(rng.randrange(1_000_001)) / 1_000_000
        return self.smallest + (self.largest - self.smallest) * share


@dataclass(frozen=True)
class ForcedFirstFill:
    """Another model, except that an order's first chance fills only `ratio` of it: how
    the partial-fill fault acts, for the orders of the call it hits."""

    ratio: Decimal
    then: FillModel

    def __post_init__(self) -> None:
        if not 0 < self.ratio < 1:
            raise ValueError("ForcedFirstFill takes 0 < ratio < 1")

    def fill_fraction(self, rng: random.Random, *, maker: bool, attempt: int) -> Decimal:
        if attempt == 0:
            return self.ratio
        return self.then.fill_fraction(rng, maker=maker, attempt=attempt)


class NoLatency:
    def delay(self, rng: random.Random, endpoint: str) -> float:
        return 0.0


@dataclass(frozen=True)
class UniformLatency:
    """Each request takes between `fastest` and `slowest` seconds."""

    fastest: float = 0.05
    slowest: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.fastest <= self.slowest:
            raise ValueError("UniformLatency takes 0 <= fastest <= slowest")

    def delay(self, rng: random.Random, endpoint: str) -> float:
        return rng.uniform(self.fastest, self.slowest)


class TieredFees:
    """The pair's published maker and taker schedules, by 30-day USD volume."""

    def rate(self, pair: Pair, *, maker: bool, thirty_day_volume: Decimal) -> Decimal:
        return fee_rate(pair.fees_maker if maker else pair.fees, thirty_day_volume)


@dataclass(frozen=True)
class FlatFees:
    """One maker and one taker rate (fractions) for every pair and volume."""

    maker: Decimal
    taker: Decimal

    def rate(self, pair: Pair, *, maker: bool, thirty_day_volume: Decimal) -> Decimal:
        return self.maker if maker else self.taker

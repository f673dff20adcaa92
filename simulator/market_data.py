"""The public order book (Depth) around the seeded price. It is drawn, not kept: a
pure function of the seed, the pair, the price and the time, so any moment's book can
be asked for again and look the same (the tape is simulator.tape's).

The book is shaped to agree with the slippage `matching.market_fill_price` charges:
its first levels hold about the pair's `Liquidity.depth` within ten basis points.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from simulator.matching import LIQUIDITY, quote
from simulator.pairs import Pair

MAX_BOOK_LEVELS = 500
_BPS = Decimal("0.0001")
_LEVEL_SPACING_BPS = Decimal("0.5")
_BOOK_REDRAW_SECONDS = 10
"""The book is redrawn this often: within it, Depth answers the same."""


@dataclass(frozen=True)
class BookLevel:
    price: Decimal
    volume: Decimal
    timestamp: int


@dataclass(frozen=True)
class Book:
    asks: list[BookLevel]
    """Best (lowest) first."""
    bids: list[BookLevel]
    """Best (highest) first."""


def order_book(seed: int, pair: Pair, price: Decimal, now: float, count: int) -> Book:
    """`count` levels either side of the quote around `price`."""
    rng = random.Random(f"{seed}:book:{pair.key}:{math.floor(now / _BOOK_REDRAW_SECONDS)}")
    touch = quote(pair, price)
    step = max(pair.tick_size, (price * _LEVEL_SPACING_BPS * _BPS).quantize(pair.tick_size))
    # each level's notional, so that ten basis points of book hold the pair's depth
    level_notional = LIQUIDITY[pair.key].depth * _LEVEL_SPACING_BPS / 10

    def side(best: Decimal, direction: int) -> list[BookLevel]:
        levels, at = [], best
        for _ in range(count):
            if at <= 0:
                break
            size = level_notional / at * Decimal(rng.lognormvariate(-0.125, 0.5)).quantize(_BPS)
            volume = max(pair.lot_size, size.quantize(pair.lot_size, ROUND_DOWN))
            levels.append(BookLevel(at, volume, math.floor(now) - rng.randrange(120)))
            at += direction * step * rng.choice((1, 1, 1, 2))
        return levels

    return Book(asks=side(touch.ask, 1), bids=side(touch.bid, -1))

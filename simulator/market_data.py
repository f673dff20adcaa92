"""The public market around the seeded price: an order book (Depth) and a tape of
recent trades (Trades). Both are drawn, not kept: each is a pure function of the seed,
the pair, the path and the time, so any moment's book and tape can be asked for again
and look the same.

The book is shaped to agree with the slippage `matching.market_fill_price` charges:
its first levels hold about the pair's `Liquidity.depth` within ten basis points.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from simulator.matching import LIQUIDITY, quote
from simulator.models import Side
from simulator.pairs import Pair
from simulator.price_path import MINUTE, PricePath

MAX_BOOK_LEVELS = 500
MAX_TRADES = 1_000
_BPS = Decimal("0.0001")
_LEVEL_SPACING_BPS = Decimal("0.5")
_BOOK_REDRAW_SECONDS = 10
"""The book is redrawn this often: within it, Depth answers the same."""
_TRADES_PER_MINUTE = 4
_TAPE_LOOKBACK = 3 * 3_600
"""How far back Trades without `since` looks for the latest trades."""
_TAPE_CHUNK = 6 * 3_600


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


@dataclass(frozen=True)
class PublicTrade:
    price: Decimal
    volume: Decimal
    time: float
    side: Side
    """The taker's side."""
    market: bool
    """Taken by a market order (else a limit)."""
    trade_id: int


def order_book(seed: int, pair: Pair, price: Decimal, now: float, count: int) -> Book:
    """`count` levels either side of the quote around `price`. Each side is drawn from
    its own RNG, so a shallower book is the top of a deeper one (Depth count=10 is the
    first ten levels of count=100, and of the WebSocket book at depth 1000)."""
    redraw = math.floor(now / _BOOK_REDRAW_SECONDS)
    touch = quote(pair, price)
    step = max(pair.tick_size, (price * _LEVEL_SPACING_BPS * _BPS).quantize(pair.tick_size))
    # each level's notional, so that ten basis points of book hold the pair's depth
    level_notional = LIQUIDITY[pair.key].depth * _LEVEL_SPACING_BPS / 10

    def side(best: Decimal, direction: int) -> list[BookLevel]:
        rng = random.Random(f"{seed}:book:{pair.key}:{redraw}:{direction}")
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


def recent_trades(
    seed: int, pair: Pair, path: PricePath, now: float, since: float | None, count: int
) -> list[PublicTrade]:
    """Up to `count` trades, oldest first: the first ones after `since`, or without it
    the latest ones."""
    if since is None:
        start = max(path.start, math.floor((now - _TAPE_LOOKBACK) / MINUTE) * MINUTE)
        return _tape(seed, pair, path, start, now)[-count:]
    trades: list[PublicTrade] = []
    start = max(path.start, math.floor(since / MINUTE) * MINUTE)
    while start < now and len(trades) < count:
        end = min(now, start + _TAPE_CHUNK)
        trades += [t for t in _tape(seed, pair, path, start, end) if t.time > since]
        start = end
    return trades[:count]


def _tape(seed: int, pair: Pair, path: PricePath, start: float, end: float) -> list[PublicTrade]:
    trades: list[PublicTrade] = []
    for bar in path.candles(1, start, end):
        if bar.time >= end or bar.volume <= 0:
            continue
        rng = random.Random(f"{seed}:tape:{pair.key}:{bar.time}")
        n = min(bar.count, _TRADES_PER_MINUTE)
        until = min(bar.time + MINUTE, end)
        times = sorted(rng.uniform(bar.time, bar.time + MINUTE) for _ in range(n))
        previous = bar.open
        for index, time in enumerate(times):
            if time > until:
                break
            if index == 0:
                price = bar.open
            elif index == n - 1:
                price = bar.close
            else:
                share = Decimal(rng.randrange(10_001)) / 10_000
                price = (bar.low + (bar.high - bar.low) * share).quantize(pair.tick_size)
            size = bar.volume / n * Decimal(rng.lognormvariate(-0.125, 0.5)).quantize(_BPS)
            trades.append(
                PublicTrade(
                    price=price,
                    volume=max(pair.lot_size, size.quantize(pair.lot_size, ROUND_DOWN)),
                    time=round(time, 4),
                    side=Side.BUY if price >= previous else Side.SELL,
                    market=rng.random() < 0.6,
                    trade_id=(bar.time // MINUTE) * 10 + index,
                )
            )
            previous = price
    return trades

"""The public tape (Trades) and the candle still forming, told as one story.

Each minute's trades are drawn from the WHOLE minute's bar, from an RNG seeded by
(seed, pair, minute), and published as the clock passes their times: a trade once
published never changes, because nothing it was drawn from can change. (Drawing them
from the minute cut at "now", as the sandbox once did, changed the count, volumes and
prices of a minute's trades each time it was asked again within that minute.)

A closed bar and its trades agree: the bar's count is the number of its trades, its
volume their sum (to the lot), its open the first trade's price and its close the
last's; its high and its low are traded whenever the minute has four trades or more,
and no trade leaves the range. The forming bar (OHLC's last row, the ticker's today)
is the closed minutes before now plus the trades published so far in the current
minute, so it too agrees with the tape at every moment and only ever grows.

Trade ids rise with time: the minute's number times `_IDS_PER_MINUTE`, plus the
trade's place in the minute.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal

from simulator.models import Side
from simulator.pairs import Pair
from simulator.price_path import MINUTE, Bar, PricePath

MAX_TRADES = 1_000
_CHUNK_MINUTES = 120
"""Minutes drawn per step while walking the tape."""
_IDS_PER_MINUTE = 100_000
_BPS = Decimal("0.0001")


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


def recent_trades(
    seed: int, pair: Pair, path: PricePath, now: float, since: float | None, count: int
) -> list[PublicTrade]:
    """Up to `count` trades published by `now`, oldest first: the first ones after
    `since`, or without it the latest ones."""
    if since is None:
        latest: list[PublicTrade] = []
        end: float = math.floor(now / MINUTE) * MINUTE + MINUTE
        while end > path.start and len(latest) < count:
            start: float = max(path.start, end - _CHUNK_MINUTES * MINUTE)
            latest = [t for t in minute_trades(seed, pair, path, start, end) if t.time <= now] + latest
            end = start
        return latest[-count:]
    trades: list[PublicTrade] = []
    start = max(path.start, math.floor(since / MINUTE) * MINUTE)
    while start <= now and len(trades) < count:
        end = start + _CHUNK_MINUTES * MINUTE
        trades += [t for t in minute_trades(seed, pair, path, start, end) if since < t.time <= now]
        start = end
    return trades[:count]


def minute_trades(seed: int, pair: Pair, path: PricePath, start: float, end: float) -> list[PublicTrade]:
    """Every trade of the whole minutes in [start, end) (both on minute boundaries),
    published or not."""
    trades: list[PublicTrade] = []
    for bar in path.candles(1, start, end):
        if bar.time < end:
            trades += _draw(seed, pair, bar)
    return trades


def forming_bar(seed: int, pair: Pair, path: PricePath, interval_minutes: int, now: float) -> Bar:
    """The candle of `interval_minutes` holding `now`: its closed minutes as the path
    has them, then the current minute's trades published by `now`."""
    step = interval_minutes * MINUTE
    opened = math.floor(now / step) * step
    minute = math.floor(now / MINUTE) * MINUTE
    _, _, times = _minute_tape(seed, pair, path, minute)
    return _forming(seed, pair, path, interval_minutes, opened, minute, bisect.bisect_right(times, now))


@functools.lru_cache(maxsize=64)
def _forming(
    seed: int, pair: Pair, path: PricePath, interval_minutes: int, opened: int, minute: int, published: int
) -> Bar:
    """The forming candle once `published` of the minute's trades are out: the same
    until the next one is (a poll between two trades costs a look-up)."""
    whole, drawn, _ = _minute_tape(seed, pair, path, minute)
    trades = list(drawn[:published])
    if minute > opened:
        closed = _closed_candle(path, interval_minutes, opened, minute)
        return _extend(closed, trades) if trades else closed
    if trades:
        return _extend(None, trades, opened)
    return Bar(opened, whole.open, whole.open, whole.open, whole.open, whole.open, Decimal(0), 0)


@functools.lru_cache(maxsize=64)
def _closed_candle(path: PricePath, interval_minutes: int, opened: int, minute: int) -> Bar:
    """The closed minutes of a forming candle, summed once per minute."""
    return path.candles(interval_minutes, opened, minute)[0]


@functools.lru_cache(maxsize=64)
def _minute_tape(
    seed: int, pair: Pair, path: PricePath, minute: int
) -> tuple[Bar, tuple[PublicTrade, ...], tuple[float, ...]]:
    """The whole minute's bar, all its trades and their times (in order): drawn once
    per minute, not once per ticker or OHLC poll (a path is a function of time, so
    they never change)."""
    whole = path.candles(1, minute, minute + MINUTE)[0]
    drawn = _draw(seed, pair, whole)
    return whole, drawn, tuple(trade.time for trade in drawn)


def _extend(bar: Bar | None, trades: list[PublicTrade], opened: int = 0) -> Bar:
    volume = sum((t.volume for t in trades), Decimal(0))
    turnover = sum((t.price * t.volume for t in trades), Decimal(0))
    prices = [t.price for t in trades]
    if bar is None:
        vwap = (turnover / volume).quantize(prices[0]) if volume else prices[-1]
        return Bar(opened, prices[0], max(prices), min(prices), prices[-1], vwap, volume, len(trades))
    total = bar.volume + volume
    vwap = ((bar.vwap * bar.volume + turnover) / total).quantize(bar.open) if total else prices[-1]
    return replace(
        bar,
        high=max(bar.high, *prices),
        low=min(bar.low, *prices),
        close=prices[-1],
        vwap=vwap,
        volume=total,
        count=bar.count + len(trades),
    )


def _draw(seed: int, pair: Pair, bar: Bar) -> tuple[PublicTrade, ...]:
    """The trades of one whole minute's bar (the current minute's are kept by
    `_minute_tape`, which the ticker and each interval's forming candle share)."""
    n = bar.count
    if n <= 0 or bar.volume <= 0:
        return ()
    rng = random.Random(f"{seed}:tape:{pair.key}:{bar.time}")
    last = bar.time + MINUTE - 0.0001
    times = sorted(min(last, round(rng.uniform(bar.time, bar.time + MINUTE), 4)) for _ in range(n))
    prices = [
        (bar.low + (bar.high - bar.low) * Decimal(rng.randrange(10_001)) / 10_000).quantize(pair.tick_size)
        for _ in range(n)
    ]
    if n >= 4:
        inside = rng.sample(range(1, n - 1), 2)
        prices[inside[0]], prices[inside[1]] = bar.high, bar.low
    elif n == 3:
        prices[1] = bar.high if bar.high - bar.close >= bar.close - bar.low else bar.low
    prices[0] = bar.open if n > 1 else bar.close
    prices[-1] = bar.close
    weights = [Decimal(rng.lognormvariate(-0.125, 0.5)).quantize(_BPS) + _BPS for _ in range(n)]
    total = sum(weights, Decimal(0))
    volumes = [(bar.volume * w / total).quantize(pair.lot_size, ROUND_DOWN) for w in weights]
    volumes[-1] = bar.volume - sum(volumes[:-1], Decimal(0))
    markets = [rng.random() < 0.6 for _ in range(n)]
    first_id = (bar.time // MINUTE) * _IDS_PER_MINUTE
    trades, previous = [], bar.open
    for index in range(n):
        price = prices[index]
        trades.append(
            PublicTrade(
                price=price,
                volume=volumes[index],
                time=times[index],
                side=Side.BUY if price >= previous else Side.SELL,
                market=markets[index],
                trade_id=first_id + index,
            )
        )
        previous = price
    return tuple(trades)

"""The market as clients see it: prices, tickers, candles, the book and the tape."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal

from simulator.accounts import Accounts
from simulator.exceptions import (
    InvalidArguments,
)
from simulator.exchange_base import OHLC_ENTRIES, OHLC_INTERVALS
from simulator.market_data import Book, order_book
from simulator.matching import (
    quote,
)
from simulator.pairs import Pair
from simulator.price_path import (
    DAY,
    HOUR,
    MINUTE,
    Bar,
    PricePath,
)
from simulator.tape import PublicTrade, forming_bar, recent_trades

SPREAD_ENTRIES = 200
SPREAD_STEP = 5
"""Seconds between two rows of Spread."""


@dataclass(frozen=True)
class Spread:
    time: float
    bid: Decimal
    ask: Decimal


@dataclass(frozen=True)
class Ticker:
    ask: Decimal
    bid: Decimal
    last: Decimal
    today: Bar
    """Since midnight UTC."""
    last_24h: Bar


class MarketData(Accounts):
    def ticker(self, pair: Pair) -> Ticker:
        now = self.now()
        path = self._paths[pair.key]
        last = path.price_at(now)
        book = quote(pair, last)
        return Ticker(
            ask=book.ask,
            bid=book.bid,
            last=last,
            today=self._forming(pair, DAY // MINUTE),
            last_24h=_summarize([*_closed_hours(path, math.floor(now / HOUR)), self._forming(pair, 60)]),
        )

    def ohlc(self, pair: Pair, interval: int, since: int | None) -> tuple[list[Bar], int]:
        """Up to 720 candles, oldest first, newer than `since`; and the time of the last
        committed (closed) candle, for the next poll's `since`."""
        if interval not in OHLC_INTERVALS:
            raise InvalidArguments("interval")
        now = self.now()
        step = interval * MINUTE
        current = math.floor(now / step) * step
        first = current - (OHLC_ENTRIES - 1) * step
        if since is not None:
            first = max(first, (math.floor(since / step) + 1) * step)
        bars = self._paths[pair.key].candles(interval, first, now)
        return bars[:-1] + [self._forming(pair, interval)], current - step

    def depth(self, pair: Pair, count: int) -> Book:
        return order_book(self._state.seed, pair, self.price(pair), self.now(), count)

    def spread(self, pair: Pair, since: float | None) -> list[Spread]:
        """The best bid and ask every few seconds over the last while, oldest first,
        newer than `since`; the newest is now's, as the ticker quotes it."""
        now = self.now()
        path = self._paths[pair.key]
        times = [now - SPREAD_STEP * back for back in reversed(range(SPREAD_ENTRIES))]
        rows = []
        for at in times:
            if at >= path.start and (since is None or at > since):
                book = quote(pair, path.price_at(at))
                rows.append(Spread(at, book.bid, book.ask))
        return rows

    def public_trades(self, pair: Pair, since: float | None, count: int) -> list[PublicTrade]:
        return recent_trades(self._state.seed, pair, self._paths[pair.key], self.now(), since, count)

    def _forming(self, pair: Pair, interval: int) -> Bar:
        """The candle holding now, as far as the tape has published it."""
        return forming_bar(self._state.seed, pair, self._paths[pair.key], interval, self.now())


@functools.lru_cache(maxsize=64)
def _closed_hours(path: PricePath, hour: int) -> tuple[Bar, ...]:
    """The closed hourly candles of the last day before `hour`: built once an hour, not
    on every ticker (a path is a function of time; a gap or a shape makes a new one)."""
    now = hour * HOUR
    return tuple(path.candles(60, now - DAY, now)[:-1])


def _summarize(bars: list[Bar]) -> Bar:
    volume = sum((b.volume for b in bars), Decimal(0))
    turnover = sum((b.vwap * b.volume for b in bars), Decimal(0))
    return Bar(
        time=bars[0].time,
        open=bars[0].open,
        high=max(b.high for b in bars),
        low=min(b.low for b in bars),
        close=bars[-1].close,
        vwap=(turnover / volume).quantize(bars[0].open) if volume else bars[-1].close,
        volume=volume,
        count=sum(b.count for b in bars),
    )

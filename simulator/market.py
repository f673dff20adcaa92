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
            last_24h=_last_day(path, math.floor(now / HOUR), self._forming(pair, 60)),
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


@dataclass(frozen=True)
class _Totals:
    """Consecutive bars summed into one, kept open for more."""

    first: Bar
    last: Bar
    high: Decimal
    low: Decimal
    volume: Decimal
    turnover: Decimal
    count: int

    @classmethod
    def of(cls, bar: Bar) -> _Totals:
        return cls(bar, bar, bar.high, bar.low, Decimal(0) + bar.volume, Decimal(0) + bar.vwap * bar.volume, bar.count)

    def plus(self, bar: Bar) -> _Totals:
        return _Totals(
            first=self.first,
            last=bar,
            high=max(self.high, bar.high),
            low=min(self.low, bar.low),
            volume=self.volume + bar.volume,
            turnover=self.turnover + bar.vwap * bar.volume,
            count=self.count + bar.count,
        )

    def bar(self) -> Bar:
        volume = self.volume
        return Bar(
            time=self.first.time,
            open=self.first.open,
            high=self.high,
            low=self.low,
            close=self.last.close,
            vwap=(self.turnover / volume).quantize(self.first.open) if volume else self.last.close,
            volume=volume,
            count=self.count,
        )


@functools.lru_cache(maxsize=64)
def _closed_day(path: PricePath, hour: int) -> _Totals | None:
    """The closed hourly candles of the last day before `hour`, summed: once an hour,
    not on every ticker (a path is a function of time; a gap or a shape makes a new one)."""
    now = hour * HOUR
    closed = path.candles(60, now - DAY, now)[:-1]
    if not closed:
        return None
    totals = _Totals.of(closed[0])
    for bar in closed[1:]:
        totals = totals.plus(bar)
    return totals


def _last_day(path: PricePath, hour: int, forming: Bar) -> Bar:
    """The last 24 hours as one bar: the closed hours of the day, then the forming one."""
    closed = _closed_day(path, hour)
    return (_Totals.of(forming) if closed is None else closed.plus(forming)).bar()

"""The seeded market: a believable, deterministic price path for every pair.

tg's agents read candles and the exchange fires stops on them, so the path has to look
like a market (trends and ranges that switch, volatility that clusters, coins that move
together) and has to be cheap to read at any minute of a four-year window, in any order,
always identically for the same seed. A three-level construction gives both:

- days: a log-price random walk per asset, driven by a market factor whose regime
  (bull, bear, range, turbulent) switches now and then and whose volatility clusters;
  generated once, outward from the origin in both directions;
- hours inside a day and minutes inside an hour: Brownian bridges between the level
  above's points, each drawn from an RNG seeded by (seed, asset, day or hour), so any
  hour can be produced on its own without producing what lies before it.

A pair's price is its base asset's USD price over its quote asset's (USD, USDT and
USDC quote at one dollar), so XBT/USD, XBT/USDT, XBT/EUR, EUR/USD and XRP/XBT agree
with each other. Every asset, fiat currencies and stablecoins included, has a path of
its own; the parameters are data (simulator/market_model.py).

The model runs in float log-prices: it is a random process, not money. Every price
leaves this module as a Decimal rounded to the pair's tick.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import NamedTuple, Protocol

from simulator.market_model import ASSET_DYNAMICS, PAIR_ACTIVITY, AssetDynamics
from simulator.pairs import USD_QUOTES, Pair

MINUTE = 60
HOUR = 3_600
DAY = 86_400
HISTORY_DAYS = 730
"""Days of history a path has before its origin."""


@dataclass(frozen=True)
class Bar:
    """One candle, as Kraken's OHLC rows carry it."""

    time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    vwap: Decimal
    volume: Decimal
    count: int


class PricePath(Protocol):
    """A pair's market over time, as the exchange reads it; prices on the pair's tick.

    The synthetic path below is one; a path replayed from recorded candles is another.
    A path is a function of time and hashed by identity: what is derived from it may be
    cached by it.
    """

    def __hash__(self) -> int: ...

    @property
    def start(self) -> float:
        """The earliest time the path has data for."""

    def price_at(self, t: float) -> Decimal:
        """The traded price at time `t`."""

    def price_range(self, start: float, end: float) -> tuple[Decimal, Decimal]:
        """The lowest and highest prices traded in [start, end]."""

    def candles(self, interval_minutes: int, since: float, until: float) -> list[Bar]:
        """Candles from the one holding `since` to the one holding `until`, oldest
        first, aligned on multiples of the interval; the last is cut at `until` (a
        candle that opens exactly at `until` is there, flat and without volume)."""


@dataclass(frozen=True)
class _Regime:
    drift: float
    """Daily log drift of the market factor."""
    vol_scale: float
    reversion: float
    """Daily pull back toward the price at which the regime began."""


_REGIMES = (
    _Regime(drift=0.004, vol_scale=1.0, reversion=0.0),  # bull trend
    _Regime(drift=-0.004, vol_scale=1.25, reversion=0.0),  # bear trend
    _Regime(drift=0.0, vol_scale=0.7, reversion=0.12),  # range
    _Regime(drift=0.0, vol_scale=1.6, reversion=0.0),  # turbulence
)
_REGIME_SWITCH_PROBABILITY = 1 / 21
_MARKET_VOL = 0.022
_HOME_PULL = 0.003
"""Daily pull of every asset toward its start price, so that four years stay believable."""
_VOL_PERSISTENCE = 0.92
_VOL_OF_VOL = 0.18
_HOUR_VOL_DISPERSION = 0.6
_MINUTE_VOL_DISPERSION = 0.4
_WICK_SCALE = 0.5
_VOLUME_DISPERSION = 0.5
_VOLUME_PER_HOUR_RANGE = 40.0
_VOLUME_PER_MINUTE_MOVE = 400.0
"""How much volume grows with how far the price travels."""


class _MarketDay(NamedTuple):
    regime: _Regime
    regime_began: bool
    vol: float
    """Volatility multiplier of the day: clustered level times the regime's scale."""
    shock: float


class _Market:
    """The factor every asset follows in part, walked day by day outward from the origin
    day (forward for later days, backward for earlier ones)."""

    def __init__(self, seed: int, origin_day: int) -> None:
        self._origin_day = origin_day
        self._days: dict[int, _MarketDay] = {}
        self._seed = seed
        self._walks: dict[int, _MarketWalk] = {}
        """Made on first use (an RNG costs its seeding): each has an RNG of its own."""
        self._frontier = {1: origin_day, -1: origin_day - 1}

    def day(self, day: int) -> _MarketDay:
        direction = 1 if day >= self._origin_day else -1
        while day not in self._days:
            frontier = self._frontier[direction]
            if direction not in self._walks:
                self._walks[direction] = _MarketWalk(random.Random(f"{self._seed}:market:{direction}"))
            self._days[frontier] = self._walks[direction].next_day()
            self._frontier[direction] = frontier + direction
        return self._days[day]


class _MarketWalk:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._regime = rng.choice(_REGIMES)
        self._log_vol = 0.0
        self._began = True

    def next_day(self) -> _MarketDay:
        rng = self._rng
        day = _MarketDay(
            regime=self._regime,
            regime_began=self._began,
            vol=math.exp(self._log_vol) * self._regime.vol_scale,
            shock=rng.gauss(0.0, 1.0),
        )
        self._log_vol = _VOL_PERSISTENCE * self._log_vol + rng.gauss(0.0, _VOL_OF_VOL)
        self._began = rng.random() < _REGIME_SWITCH_PROBABILITY
        if self._began:
            self._regime = rng.choice([r for r in _REGIMES if r is not self._regime])
        return day


class _Hours(NamedTuple):
    """One day of an asset at hour resolution, in log-price."""

    points: tuple[float, ...]
    """25 points: midnight, then each hour's close."""
    variances: tuple[float, ...]
    highs: tuple[float, ...]
    lows: tuple[float, ...]


class _Minutes(NamedTuple):
    """One hour of an asset at minute resolution, in log-price."""

    points: tuple[float, ...]
    """61 points: the hour's open, then each minute's close."""
    highs: tuple[float, ...]
    lows: tuple[float, ...]


def _bridge(rng: random.Random, start: float, end: float, variances: list[float]) -> list[float]:
    """Points from `start` to `end` whose steps have the given variances: a random walk
    pinned at both ends (a Brownian bridge)."""
    gauss, sqrt = rng.gauss, math.sqrt
    position, elapsed = 0.0, 0.0
    walk, cumulative = [position], [elapsed]
    for variance in variances:
        position += gauss(0.0, sqrt(variance))
        elapsed += variance
        walk.append(position)
        cumulative.append(elapsed)
    gap = end - start - position
    return [start + w + gap * c / elapsed for w, c in zip(walk, cumulative)]


def _bridge_extremes(rng: random.Random, points: list[float], variances: list[float], sign: int) -> tuple[float, ...]:
    """A draw of the maximum (sign 1) or minimum (sign -1) of each step of a bridge,
    from `points[i]` to `points[i + 1]`, from its exact distribution
    P(max > m) = exp(-2(m-a)(m-b)/v); one list at a time, as a day's hours need them."""
    sqrt, log, draw = math.sqrt, math.log, rng.random
    return tuple(
        [
            (a + b + sign * sqrt((b - a) ** 2 - 2.0 * v * log(1.0 - draw()))) / 2.0
            for a, b, v in zip(points, points[1:], variances)
        ]
    )


def _stretch(values: Iterable[float], edge: float, reached: float, target: float) -> list[float]:
    """Scale how far each value goes past `edge` so that `reached` lands on `target`;
    the values on the other side stay. A whole hour's minutes at once: one call, not
    one per value."""
    if reached == edge:
        return list(values)
    side, pull = reached - edge, target - edge
    return [edge + (value - edge) * pull / side if (value - edge) * side > 0.0 else value for value in values]


class _AssetPath:
    """One asset's USD log-price: daily anchors, then hours and minutes as bridges.

    Each hour's high and low are drawn at the hour level, and the hour's minutes are
    stretched to reach exactly them: candles of an hour or more never need minutes.
    """

    def __init__(self, seed: int, asset: str, dynamics: AssetDynamics, market: _Market, origin_day: int) -> None:
        self._seed = seed
        self._asset = asset
        self._dynamics = dynamics
        self._market = market
        self._origin_day = origin_day
        self._home = math.log(dynamics.start_price)
        self._anchors: dict[int, float] = {origin_day: self._home}
        self._rngs: dict[int, random.Random] = {}
        """Each direction's walk, made on first use like the caches below."""
        self._levels = {1: self._home, -1: self._home}
        self._frontier = {1: origin_day, -1: origin_day}

    # The caches are made on first use: an exchange builds a path for every pair and
    # asset, and most are never read in a run (a cache cost microseconds to make).
    @cached_property
    def hours(self) -> Callable[[int], _Hours]:
        return lru_cache(maxsize=8_192)(self._hours)

    @cached_property
    def minutes(self) -> Callable[[int], _Minutes]:
        return lru_cache(maxsize=2_048)(self._minutes)

    def anchor(self, day: int) -> float:
        """Log-price at midnight UTC starting `day`."""
        direction = 1 if day >= self._origin_day else -1
        while day not in self._anchors:
            self._extend(direction)
        return self._anchors[day]

    def opening(self, hour: int) -> float:
        """Log-price at the start of `hour`. Midnight's is the day's anchor, where the
        day's bridge starts exactly: a fresh sandbox's state prices every pair at its
        opening midnight, and most assets' hours are never read after."""
        day, index = divmod(hour, 24)
        return self.anchor(day) if index == 0 else self.hours(day).points[index]

    def _extend(self, direction: int) -> None:
        here = self._frontier[direction]
        market = self._market.day(here if direction == 1 else here - 1)
        x = self._anchors[here]
        if market.regime_began:
            self._levels[direction] = x
        dynamics = self._dynamics
        if direction not in self._rngs:
            self._rngs[direction] = random.Random(f"{self._seed}:{self._asset}:walk:{direction}")
        rng = self._rngs[direction]
        noise = (dynamics.beta * _MARKET_VOL * market.shock + rng.gauss(0.0, dynamics.idio_vol)) * market.vol
        pull = market.regime.reversion * (x - self._levels[direction]) + _HOME_PULL * (x - self._home)
        there = here + direction
        self._anchors[there] = x + direction * dynamics.beta * market.regime.drift + noise - pull
        self._frontier[direction] = there

    def _day_variance(self, day: int) -> float:
        spread = math.hypot(self._dynamics.beta * _MARKET_VOL, self._dynamics.idio_vol)
        return (self._market.day(day).vol * spread) ** 2

    def _hours(self, day: int) -> _Hours:
        rng = random.Random(f"{self._seed}:{self._asset}:day:{day}")
        exp, gauss = math.exp, rng.gauss
        weights = [exp(gauss(0.0, _HOUR_VOL_DISPERSION)) for _ in range(24)]
        day_variance = self._day_variance(day)
        total = sum(weights)
        variances = [day_variance * w / total for w in weights]
        points = _bridge(rng, self.anchor(day), self.anchor(day + 1), variances)
        return _Hours(
            points=tuple(points),
            variances=tuple(variances),
            highs=_bridge_extremes(rng, points, variances, 1),
            lows=_bridge_extremes(rng, points, variances, -1),
        )

    def _minutes(self, hour: int) -> _Minutes:
        day, index = divmod(hour, 24)
        hours = self.hours(day)
        start, end = hours.points[index], hours.points[index + 1]
        rng = random.Random(f"{self._seed}:{self._asset}:hour:{hour}")
        uniform = rng.random
        weights = [0.25 + 1.5 * uniform() for _ in range(60)]
        total = sum(weights)
        variance = hours.variances[index]
        variances = [variance * w / total for w in weights]
        points = _bridge(rng, start, end, variances)
        sqrt = math.sqrt
        wicks = [_WICK_SCALE * sqrt(v) for v in variances]
        draw = rng.expovariate
        highs = [max(a, b) + wick * draw(1.0) for a, b, wick in zip(points, points[1:], wicks)]
        lows = [min(a, b) - wick * draw(1.0) for a, b, wick in zip(points, points[1:], wicks)]
        top, high = max(start, end), hours.highs[index]
        bottom, low = min(start, end), hours.lows[index]
        reached_high, reached_low = max(highs), min(lows)

        def fit(values: list[float]) -> tuple[float, ...]:
            return tuple(_stretch(_stretch(values, top, reached_high, high), bottom, reached_low, low))

        return _Minutes(points=fit(points), highs=fit(highs), lows=fit(lows))


class _Stats(NamedTuple):
    """A bar under construction: prices in floats, volume in whole lots, so that the
    volumes of minutes add up exactly to their hour's (the tape splits them further)."""

    open: float
    high: float
    low: float
    close: float
    volume: int
    """In lots of the pair."""
    turnover: float
    """Price times volume (in lots), for the vwap."""
    trades: int


def _merge(parts: Sequence[_Stats]) -> _Stats:
    if len(parts) == 1:  # an hourly candle is its hour's summary
        return parts[0]
    opens, highs, lows, closes, volumes, turnovers, trades = zip(*parts, strict=True)
    return _Stats(opens[0], max(highs), min(lows), closes[-1], sum(volumes), sum(turnovers), sum(trades))


def _split(total: int, weights: list[float]) -> list[int]:
    """`total` shared in whole units in proportion to `weights`, adding up exactly
    (the largest remainders get the units rounding left over)."""
    whole = sum(weights)
    shares = [total * w / whole for w in weights]
    parts = [math.floor(share) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: parts[i] - shares[i])
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _typical(open_: float, high: float, low: float, close: float) -> float:
    """The price a bar's volume is taken to trade at: its vwap is an estimate, not a
    sum over trades the sandbox never made."""
    return (open_ + high + low + close) / 4.0


class SyntheticPricePath:
    """A pair's seeded market: its base asset's path over its quote asset's, with a
    volume stream of its own.

    A dollar-quoted pair's hours come straight from its asset's hour level; a cross
    pair (XRP/XBT) is the ratio of two paths, so its hours are built from minutes.
    """

    def __init__(self, seed: int, pair: Pair, base: _AssetPath, quote: _AssetPath | None, origin: float) -> None:
        self._seed = seed
        self._pair = pair
        self._base = base
        self._quote = quote
        self._activity = PAIR_ACTIVITY[pair.key]
        self._on_tick = f".{pair.pair_decimals}f"
        """The format that rounds a float to the pair's tick (see `_price`)."""
        self._lot_scale = 10**pair.lot_decimals
        self._start = (math.floor(origin / DAY) - HISTORY_DAYS) * DAY

    # made on first use, as the asset path's
    @cached_property
    def _hour_volumes(self) -> Callable[[int], tuple[float, ...]]:
        return lru_cache(maxsize=8_192)(self._day_volumes)

    @cached_property
    def _minute_stats(self) -> Callable[[int], tuple[_Stats, ...]]:
        return lru_cache(maxsize=2_048)(self._hour_of_minutes)

    @cached_property
    def _day_stats(self) -> Callable[[int], tuple[_Stats, ...]]:
        return lru_cache(maxsize=8_192)(self._day_summaries)

    @cached_property
    def _cross_hour_stats(self) -> Callable[[int], _Stats]:
        return lru_cache(maxsize=100_000)(self._cross_hour_summary)

    @cached_property
    def _closed_bar(self) -> Callable[[int, int], Bar]:
        return lru_cache(maxsize=16_384)(self._whole_bar)

    @property
    def start(self) -> float:
        return float(self._start)

    def price_at(self, t: float) -> Decimal:
        return self._price(self._minute_until(t).close)

    def price_range(self, start: float, end: float) -> tuple[Decimal, Decimal]:
        whole_start = math.ceil(start / MINUTE) * MINUTE
        whole_end = math.floor(end / MINUTE) * MINUTE
        prices = [self._minute_until(start).close, self._minute_until(end).close]
        parts = self._whole_minutes(whole_start, whole_end)
        low = min(prices + [p.low for p in parts])
        high = max(prices + [p.high for p in parts])
        return self._price(low), self._price(high)

    def candles(self, interval_minutes: int, since: float, until: float) -> list[Bar]:
        step = interval_minutes * MINUTE
        first = math.floor(max(since, self._start) / step) * step
        if first < self._start:
            first += step
        bars = []
        for bucket in range(first, math.floor(until / step) * step + 1, step):
            if bucket + step <= until:
                bars.append(self._closed_bar(interval_minutes, bucket))
                continue
            whole_end = math.floor(until / MINUTE) * MINUTE
            parts = self._whole_minutes(bucket, whole_end)
            if until > whole_end or not parts:
                parts.append(self._minute_until(until))
            bars.append(self._bar(bucket, _merge(parts)))
        return bars

    def _whole_bar(self, interval_minutes: int, bucket: int) -> Bar:
        """A candle the path has closed: a function of the path, made once (the ticker's
        last day and the hourly OHLC share their hours, and every poll asks them again)."""
        return self._bar(bucket, _merge(self._whole_minutes(bucket, bucket + interval_minutes * MINUTE)))

    def _price(self, value: float) -> Decimal:
        """`value` on the pair's tick: the Decimal that Decimal(value).quantize(tick)
        gives, at half its cost (an OHLC answer rounds some 2,000 prices). Both round
        the float's exact binary value half to even, float formatting by Python's
        correctly rounded conversion, quantize by the default context."""
        return Decimal(format(value, self._on_tick))

    def _minute_until(self, t: float) -> _Stats:
        """The minute holding `t`, cut at `t`; its price moves linearly inside."""
        if t % HOUR == 0:
            return self._hour_opening(int(t // HOUR))
        minute_start = math.floor(t / MINUTE) * MINUTE
        whole = self._minute_stats(minute_start // HOUR)[(minute_start % HOUR) // MINUTE]
        fraction = (t - minute_start) / MINUTE
        close = whole.open + (whole.close - whole.open) * fraction
        return _Stats(
            open=whole.open,
            high=max(whole.open, close),
            low=min(whole.open, close),
            close=close,
            volume=round(whole.volume * fraction),
            turnover=whole.turnover * fraction,
            trades=round(whole.trades * fraction),
        )

    def _hour_opening(self, hour: int) -> _Stats:
        """The hour's first instant, cut from its first minute as `_minute_until` cuts
        any, but from the hour level: the minutes' walk starts exactly at the hour's
        point, so this is the same float without building the hour's 60 minutes (the
        matching engine asks it at both ends of every quiet hour it skips)."""
        point = self._base.opening(hour)
        if self._quote is not None:
            point -= self._quote.opening(hour)
        price = math.exp(point)
        return _Stats(price, price, price, price, 0, 0.0, 0)

    def _whole_minutes(self, start: int, end: int) -> list[_Stats]:
        """The minutes in [start, end) (both on minute boundaries): whole hours taken
        at once, the minutes of a part of an hour as one slice of it."""
        parts = []
        t = start
        while t < end:
            hour, offset = divmod(t, HOUR)
            if offset == 0 and t + HOUR <= end:
                hours = (end - t) // HOUR
                parts += self._hour_run(hour, hours)
                t += hours * HOUR
            else:
                until = min(end, (hour + 1) * HOUR)
                parts += self._minute_stats(hour)[offset // MINUTE : (until - hour * HOUR) // MINUTE]
                t = until
        return parts

    def _day_volumes(self, day: int) -> tuple[float, ...]:
        """The base volume of each hour of `day`, busier when the hour moves more."""
        rng = random.Random(f"{self._seed}:{self._pair.key}:volume:{day}")
        hours = self._base.hours(day)
        volumes = []
        for high, low in zip(hours.highs, hours.lows):
            noise = math.exp(rng.gauss(-(_VOLUME_DISPERSION**2) / 2, _VOLUME_DISPERSION))
            volumes.append(60 * self._activity.minute_volume * noise * (1.0 + _VOLUME_PER_HOUR_RANGE * (high - low)))
        return tuple(volumes)

    def _hour_volume(self, hour: int) -> float:
        day, index = divmod(hour, 24)
        return self._hour_volumes(day)[index]

    def _hour_run(self, hour: int, count: int) -> list[_Stats]:
        """The `count` hours from `hour` on; a dollar-quoted pair's a day's slice at a
        time (a 4h candle is four hours of one day)."""
        if self._quote is not None:
            return [self._cross_hour_stats(h) for h in range(hour, hour + count)]
        run: list[_Stats] = []
        end = hour + count
        while hour < end:
            day, index = divmod(hour, 24)
            taken = min(24 - index, end - hour)
            run += self._day_stats(day)[index : index + taken]
            hour += taken
        return run

    def _cross_hour_summary(self, hour: int) -> _Stats:
        return _merge(self._minute_stats(hour))

    def _day_summaries(self, day: int) -> tuple[_Stats, ...]:
        """The 24 hours of `day` of a dollar-quoted pair, straight from its asset's hour
        level, all at once: a day's hours are read together (candles of an hour or more)."""
        hours = self._base.hours(day)
        exp, lots_of, trades_of = math.exp, self._lots, self._trade_count
        prices = [exp(point) for point in hours.points]  # each hour's close is the next one's open
        summaries = []
        for open_, close, high_point, low_point, volume in zip(
            prices[:-1], prices[1:], hours.highs, hours.lows, self._hour_volumes(day), strict=True
        ):
            high, low, lots = exp(high_point), exp(low_point), lots_of(volume)
            summaries.append(
                _Stats(open_, high, low, close, lots, lots * _typical(open_, high, low, close), trades_of(volume))
            )
        return tuple(summaries)

    def _hour_of_minutes(self, hour: int) -> tuple[_Stats, ...]:
        base = self._base.minutes(hour)
        points, highs, lows = base.points, base.highs, base.lows
        if self._quote is not None:
            quote = self._quote.minutes(hour)
            points = tuple(b - q for b, q in zip(points, quote.points))
            # the ratio is highest when the base is high and the quote low
            highs = tuple(h - q for h, q in zip(highs, quote.lows))
            lows = tuple(low - q for low, q in zip(lows, quote.highs))
        rng = random.Random(f"{self._seed}:{self._pair.key}:minutes:{hour}")
        moves = [abs(b - a) for a, b in itertools.pairwise(points)]
        weights = [(0.5 + rng.random()) * (1.0 + _VOLUME_PER_MINUTE_MOVE * m) for m in moves]
        hour_volume, total_weight = self._hour_volume(hour), sum(weights)
        hour_count = self._trade_count(hour_volume)
        counts, counted, share = [], 0, 0.0
        for weight in weights:
            share += weight / total_weight
            counts.append(round(hour_count * share) - counted)
            counted += counts[-1]
        # a minute without trades has no volume: the hour's lots go to the minutes that trade
        volumes = _split(self._lots(hour_volume), [w if c > 0 else 0.0 for w, c in zip(weights, counts)])
        exp = math.exp
        prices = [exp(point) for point in points]  # each minute's close is the next one's open
        minutes = []
        for i, (volume, count) in enumerate(zip(volumes, counts)):
            open_, close = prices[i], prices[i + 1]
            high = max(open_, close, exp(highs[i]))
            low = min(open_, close, exp(lows[i]))
            minutes.append(_Stats(open_, high, low, close, volume, volume * _typical(open_, high, low, close), count))
        return tuple(minutes)

    def _lots(self, volume: float) -> int:
        return round(volume * self._lot_scale)

    def _trade_count(self, volume: float) -> int:
        return max(1, round(volume / self._activity.trade_size))

    def _bar(self, time: int, stats: _Stats) -> Bar:
        vwap = stats.turnover / stats.volume if stats.volume > 0 else stats.close
        price = self._price
        return Bar(
            time,
            price(stats.open),
            price(stats.high),
            price(stats.low),
            price(stats.close),
            price(vwap),
            Decimal(stats.volume).scaleb(-self._pair.lot_decimals),
            stats.trades,
        )


def synthetic_paths(seed: int, pairs: Iterable[Pair], origin: float) -> dict[str, PricePath]:
    """Seeded paths for `pairs`, sharing one market and one path per asset so that the
    pairs agree with each other."""
    origin_day = math.floor(origin / DAY)
    market = _Market(seed, origin_day)
    assets: dict[str, _AssetPath] = {}

    def asset_path(asset: str) -> _AssetPath:
        if asset not in assets:
            assets[asset] = _AssetPath(seed, asset, ASSET_DYNAMICS[asset], market, origin_day)
        return assets[asset]

    paths: dict[str, PricePath] = {}
    for pair in pairs:
        quote = None if pair.quote in USD_QUOTES else asset_path(pair.quote)
        paths[pair.key] = SyntheticPricePath(seed, pair, asset_path(pair.base), quote, origin)
    return paths


class GappedPricePath:
    """A path with sudden jumps: from each gap's time on, its prices are scaled by
    (1 + pct/100). A candle holding a gap opens at the old level and closes at the new.
    """

    def __init__(self, path: PricePath, pair: Pair, gaps: Iterable[tuple[float, Decimal]]) -> None:
        self._path = path
        self._tick = pair.tick_size
        self._gaps = sorted(gaps)

    @property
    def start(self) -> float:
        return self._path.start

    def factor(self, t: float) -> Decimal:
        """The product of the gaps at or before `t`."""
        factor = Decimal(1)
        for at, pct in self._gaps:
            if at <= t:
                factor *= 1 + pct / 100
        return factor

    def price_at(self, t: float) -> Decimal:
        return self._scale(self._path.price_at(t), self.factor(t))

    def price_range(self, start: float, end: float) -> tuple[Decimal, Decimal]:
        """As the path's, except that a gap exactly at `end` is not yet in the range:
        the exchange cuts its matching steps at gaps, and a step that ends at one sees
        the market as it was just before it."""
        cuts = [start, *(at for at, _ in self._gaps if start < at < end), end]
        lows, highs = [], []
        for a, b in itertools.pairwise(cuts):
            low, high = self._path.price_range(a, b)
            factor = self.factor(a)
            lows.append(self._scale(low, factor))
            highs.append(self._scale(high, factor))
        return min(lows), max(highs)

    def candles(self, interval_minutes: int, since: float, until: float) -> list[Bar]:
        step = interval_minutes * MINUTE
        bars = []
        for bar in self._path.candles(interval_minutes, since, until):
            first, last = self.factor(bar.time), self.factor(min(bar.time + step - 1e-6, until))
            open_, close = self._scale(bar.open, first), self._scale(bar.close, last)
            bars.append(
                Bar(
                    time=bar.time,
                    open=open_,
                    close=close,
                    high=max(self._scale(bar.high, first), close),
                    low=min(self._scale(bar.low, first), close),
                    vwap=self._scale(bar.vwap, last),
                    volume=bar.volume,
                    count=bar.count,
                )
            )
        return bars

    def _scale(self, price: Decimal, factor: Decimal) -> Decimal:
        """On the tick, and never below one, as a shaped price (price_shapes)."""
        return price if factor == 1 else max((price * factor).quantize(self._tick), self._tick)

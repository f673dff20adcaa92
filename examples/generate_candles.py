"""Writes examples/btc_usd_1h.csv: a year of hourly BTC/USD candles in Kraken's OHLCVT
export format (timestamp, open, high, low, close, volume, trades; no header), for
`tg replay`. Seeded: the same seed writes the same file.

The market is made to look like one, not like noise:
- regimes (bull trend, bear trend, range, turbulence) switch at random, a few weeks
  each on average; a range pulls the price back toward where it began;
- volatility clusters (GARCH(1,1) on the hourly returns, with fat-tailed shocks), and
  follows the day: the hours when Europe and the US trade move more;
- each candle opens at the previous close, its wicks are drawn from the candle's own
  volatility, and volume and trade counts grow with how far the price travelled.

The process runs in float log-prices: it is a random walk, not money. Prices leave it
rounded to Kraken's tick for XBT/USD (0.1), volumes to 8 decimals.

    python examples/generate_candles.py                      # examples/btc_usd_1h.csv
    python examples/generate_candles.py --seed 3 --days 30 --out /tmp/month.csv
"""

from __future__ import annotations

import argparse
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

HOUR = 3_600
START = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
START_PRICE = 94_000.0
TICK = Decimal("0.1")
LOT = Decimal("0.00000001")


@dataclass(frozen=True)
class Regime:
    name: str
    drift: float  # hourly log drift
    vol_scale: float
    reversion: float  # hourly pull back toward the level where the regime began
    mean_hours: float  # how long the regime lasts on average


REGIMES = (
    Regime("bull", drift=0.00022, vol_scale=1.0, reversion=0.0, mean_hours=24 * 24),
    Regime("bear", drift=-0.00024, vol_scale=1.2, reversion=0.0, mean_hours=18 * 24),
    Regime("range", drift=0.0, vol_scale=0.7, reversion=0.004, mean_hours=21 * 24),
    Regime("turbulence", drift=0.0, vol_scale=1.8, reversion=0.0, mean_hours=6 * 24),
)

BASE_HOURLY_VOL = 0.0055
GARCH_ALPHA = 0.08
GARCH_BETA = 0.90
T_DEGREES = 5  # fat tails of the shocks
HOME_PULL = 0.00002  # a faint pull toward the start, so a year stays believable
BASE_VOLUME = 55.0  # BTC per hour on a quiet hour
TRADE_SIZE = 0.09  # mean BTC per trade


def _session_factor(hour: int) -> float:
    """Hours of the day (UTC) when Europe and the US overlap move and trade more."""
    return 0.75 + 0.55 * math.exp(-((hour - 15) ** 2) / 18)


def _shock(rng: random.Random) -> float:
    """A Student-t draw scaled to unit variance."""
    chi2 = sum(rng.gauss(0.0, 1.0) ** 2 for _ in range(T_DEGREES))
    return rng.gauss(0.0, 1.0) / math.sqrt(chi2 / T_DEGREES) * math.sqrt((T_DEGREES - 2) / T_DEGREES)


def _price(value: float) -> Decimal:
    return Decimal(value).quantize(TICK)


def generate(seed: int, hours: int) -> list[str]:
    rng = random.Random(seed)
    regime = REGIMES[2]
    anchor = log_price = math.log(START_PRICE)
    home = log_price
    variance = BASE_HOURLY_VOL**2
    omega = BASE_HOURLY_VOL**2 * (1 - GARCH_ALPHA - GARCH_BETA)
    rows = []
    for index in range(hours):
        if rng.random() < 1 / regime.mean_hours:
            regime = rng.choice([r for r in REGIMES if r is not regime])
            anchor = log_price
        time = START + index * HOUR
        session = _session_factor(datetime.fromtimestamp(time, UTC).hour)
        innovation = math.sqrt(variance) * _shock(rng)
        variance = omega + GARCH_ALPHA * innovation**2 + GARCH_BETA * variance
        sigma = math.sqrt(variance) * regime.vol_scale * session
        pull = regime.reversion * (log_price - anchor) + HOME_PULL * (log_price - home)
        step = regime.drift - pull + innovation * regime.vol_scale * session
        open_, close = log_price, log_price + step
        high = max(open_, close) + abs(rng.gauss(0.0, 0.6 * sigma))
        low = min(open_, close) - abs(rng.gauss(0.0, 0.6 * sigma))
        travelled = (high - low) / max(sigma, 1e-9)
        volume = BASE_VOLUME * session * math.exp(rng.gauss(-0.08, 0.4)) * (0.6 + 0.25 * travelled)
        trades = max(1, round(volume / TRADE_SIZE * math.exp(rng.gauss(0.0, 0.15))))
        prices = [_price(math.exp(x)) for x in (open_, high, low, close)]
        prices[1] = max(prices)  # rounding must not put open or close beyond a wick
        prices[2] = min(prices)
        rows.append(",".join([str(time), *map(str, prices), str(Decimal(volume).quantize(LOT)), str(trades)]))
        log_price = close
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("btc_usd_1h.csv"))
    args = parser.parse_args()
    rows = generate(args.seed, args.days * 24)
    args.out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} hourly candles to {args.out}")


if __name__ == "__main__":
    main()

"""The listing's markets move as one market: crosses agree with their dollar legs, and
coins rise and fall together while fiat and stablecoins keep to themselves."""

from __future__ import annotations

import math
import statistics
from decimal import Decimal

import pytest

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from simulator.exchange import Exchange
from simulator.pairs import PAIRS

DAY = 86_400


@pytest.mark.parametrize("days", [0, 3, 30])
def test_crosses_agree_with_their_dollar_legs(days: int) -> None:
    clock = VirtualClock(SANDBOX_EPOCH)
    exchange = Exchange.create(clock, seed=42)
    clock.advance(days * DAY)

    def price(key: str) -> Decimal:
        return exchange.price(PAIRS[key])

    for cross, dollar, quote in (
        ("XXBTZEUR", "XXBTZUSD", "ZEURZUSD"),
        ("XETHZGBP", "XETHZUSD", "ZGBPZUSD"),
        ("XETHXXBT", "XETHZUSD", "XXBTZUSD"),
        ("ETHUSDT", "XETHZUSD", "USDTZUSD"),
    ):
        implied = price(dollar) / price(quote)
        assert abs(price(cross) / implied - 1) < Decimal("0.0005"), cross  # within its rounding


def test_coins_move_together_and_currencies_apart() -> None:
    clock = VirtualClock(SANDBOX_EPOCH)
    exchange = Exchange.create(clock, seed=42)
    clock.advance(60 * DAY)

    def daily_returns(key: str) -> list[float]:
        closes = [float(bar.close) for bar in exchange.ohlc(PAIRS[key], 1440, int(SANDBOX_EPOCH) - DAY)[0]]
        return [math.log(b / a) for a, b in zip(closes, closes[1:])]

    bitcoin = daily_returns("XXBTZUSD")
    for coin in ("XETHZUSD", "SOLUSD", "XDGUSD", "ADAUSD"):
        assert statistics.correlation(bitcoin, daily_returns(coin)) > 0.5, coin
    for currency in ("ZEURZUSD", "USDTZUSD"):
        assert abs(statistics.correlation(bitcoin, daily_returns(currency))) < 0.3, currency

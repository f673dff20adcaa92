"""ccxt's Kraken client, unmodified, reading the public tape: its trades and its
one-minute candles tell the same story."""

from __future__ import annotations

from collections.abc import Iterator

import ccxt
import pytest

from tests.thirdparty.conftest import Served

pytestmark = pytest.mark.integration


@pytest.fixture
def kraken(sandbox: Served) -> Iterator[ccxt.kraken]:
    exchange = ccxt.kraken({"enableRateLimit": False, "timeout": 5_000})
    exchange.urls["api"] = {"public": sandbox.url, "private": sandbox.url}
    yield exchange
    exchange.session.close()


def test_fetch_trades_and_fetch_ohlcv_agree(kraken: ccxt.kraken) -> None:
    trades = kraken.fetch_trades("ETH/EUR")
    candles = kraken.fetch_ohlcv("ETH/EUR", "1m")
    first = trades[0]["timestamp"]
    closed = [bar for bar in candles[:-1] if bar[0] >= first - first % 60_000 + 60_000]
    assert len(closed) >= 5
    for time, open_, high, low, close, volume in closed:
        inside = [t for t in trades if time <= t["timestamp"] < time + 60_000]
        assert sum(t["amount"] for t in inside) == pytest.approx(volume, abs=1e-8)
        if inside:
            assert (inside[0]["price"], inside[-1]["price"]) == (open_, close) or len(inside) == 1
            assert all(low <= t["price"] <= high for t in inside)
    assert kraken.fetch_trades("ETH/EUR")[-len(trades) :] == trades  # asked again: the same trades

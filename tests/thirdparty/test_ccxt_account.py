"""ccxt's Kraken client, unmodified, reading the account's ledger, fee tier, positions
and the exchange's status from the served sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pytest

from simulator.models import SystemStatus
from tests.thirdparty.conftest import Served

pytestmark = pytest.mark.integration


@pytest.fixture
def kraken(sandbox: Served) -> Iterator[ccxt.kraken]:
    exchange = ccxt.kraken(
        {"apiKey": sandbox.key, "secret": sandbox.secret, "enableRateLimit": False, "timeout": 5_000}
    )
    exchange.urls["api"] = {"public": sandbox.url, "private": sandbox.url}
    yield exchange
    exchange.session.close()


def test_fetch_ledger_shows_the_deposits_and_both_legs_of_a_trade(kraken: ccxt.kraken) -> None:
    placed = kraken.create_order("BTC/USD", "market", "buy", 0.01)
    [trade] = kraken.fetch_my_trades("BTC/USD")
    ledger = kraken.fetch_ledger()

    assert sorted((e["type"], e["currency"]) for e in ledger) == [
        ("trade", "BTC"),
        ("trade", "USD"),
        ("transaction", "USD"),
        ("transaction", "USDT"),
    ]
    usd = next(e for e in ledger if e["type"] == "trade" and e["currency"] == "USD")
    assert usd["referenceId"] == trade["id"] and trade["order"] == placed["id"]
    assert usd["direction"] == "out" and usd["amount"] == pytest.approx(trade["cost"])
    assert usd["fee"]["cost"] == pytest.approx(trade["fee"]["cost"])
    balance = kraken.fetch_balance()
    assert usd["after"] == pytest.approx(balance["total"]["USD"])
    assert [e["currency"] for e in kraken.fetch_ledger("BTC")] == ["BTC"]
    assert kraken.fetch_ledger_entry(usd["id"])["amount"] == usd["amount"]


def test_fetch_trading_fee_follows_the_thirty_day_volume(kraken: ccxt.kraken) -> None:
    before = kraken.fetch_trading_fee("BTC/USD")
    kraken.create_order("BTC/USD", "market", "buy", 1)
    after = kraken.fetch_trading_fee("BTC/USD")

    assert (before["taker"], before["maker"]) == (0.0026, 0.0016)
    assert (after["taker"], after["maker"]) == (0.0024, 0.0014)
    assert Decimal(after["info"]["volume"]) > 50_000


def test_fetch_positions_is_empty_on_spot(kraken: ccxt.kraken) -> None:
    kraken.create_order("BTC/USD", "market", "buy", 0.01)
    assert kraken.fetch_positions() == []


def test_status_and_trading_modes_reach_the_client(kraken: ccxt.kraken, sandbox: Served) -> None:
    assert kraken.fetch_status()["status"] == "ok"
    control = sandbox.server.sandbox
    assert control is not None
    resting = kraken.create_order("BTC/USD", "limit", "buy", 0.01, 30_000)
    control.exchange.set_system_status(SystemStatus.CANCEL_ONLY)

    assert kraken.fetch_status()["status"] == "maintenance"
    with pytest.raises(ccxt.OnMaintenance):
        kraken.create_order("BTC/USD", "limit", "buy", 0.01, 30_000)
    kraken.cancel_order(resting["id"])
    control.exchange.set_system_status(SystemStatus.MAINTENANCE)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        kraken.cancel_all_orders()

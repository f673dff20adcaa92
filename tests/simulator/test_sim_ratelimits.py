"""Kraken's rate-limit counters, counted exactly on the exchange's virtual clock."""

from __future__ import annotations

import httpx
import pytest

from core.domain.clock import VirtualClock
from simulator.app import SandboxApp, create_app
from simulator.exceptions import ApiRateLimitExceeded, OrderRateLimitExceeded
from simulator.exchange import Exchange
from simulator.models import ApiKey
from simulator.ratelimits import RateLimits, Tier, transaction_cost
from tests.simulator.sandbox_client import KrakenClient, resting_buy

REST_REFUSED = {"error": ["EAPI:Rate limit exceeded"]}
ORDER_REFUSED = {"error": ["EOrder:Rate limit exceeded"]}


async def test_starter_rest_counter_allows_15_then_decays_a_call_in_3_03_s(
    kraken: KrakenClient, clock: VirtualClock
) -> None:
    for _ in range(15):
        assert (await kraken.private("Balance"))["error"] == []
    assert await kraken.private("Balance") == REST_REFUSED
    clock.advance(3.0)  # 0.99 decayed: not yet room for one call
    assert await kraken.private("Balance") == REST_REFUSED
    clock.advance(0.04)  # 1.0032 decayed
    assert (await kraken.private("Balance"))["error"] == []
    assert await kraken.private("Balance") == REST_REFUSED


async def test_history_calls_cost_two(kraken: KrakenClient) -> None:
    for _ in range(7):
        assert (await kraken.private("ClosedOrders"))["error"] == []
    assert await kraken.private("ClosedOrders") == REST_REFUSED  # 14 + 2 > 15
    assert (await kraken.private("Balance"))["error"] == []  # 14 + 1 = 15
    assert await kraken.private("Balance") == REST_REFUSED


async def test_trading_calls_are_not_on_the_rest_counter(kraken: KrakenClient) -> None:
    for _ in range(20):
        assert (await kraken.private("AddOrder", **resting_buy("XBTUSDT", validate="true")))["error"] == []
    for _ in range(15):
        assert (await kraken.private("Balance"))["error"] == []


async def test_each_api_key_has_its_own_rest_counter(
    kraken: KrakenClient, http: httpx.AsyncClient, exchange: Exchange
) -> None:
    for _ in range(15):
        await kraken.private("Balance")
    assert await kraken.private("Balance") == REST_REFUSED
    other = KrakenClient(http, exchange.create_api_key("default"))
    assert (await other.private("Balance"))["error"] == []


def test_tiers_have_kraken_maximums_and_decay() -> None:
    limits = RateLimits(Tier.PRO)
    for _ in range(20):
        limits.charge_rest("key", "Balance", 0.0)
    with pytest.raises(ApiRateLimitExceeded):
        limits.charge_rest("key", "Balance", 0.0)
    limits.charge_rest("key", "Balance", 1.0)  # pro decays 1 per second
    intermediate = RateLimits(Tier.INTERMEDIATE)
    intermediate.charge_trading("default", {"XXBTZUSD": 125}, 0.0)
    with pytest.raises(OrderRateLimitExceeded):
        intermediate.charge_trading("default", {"XXBTZUSD": 1}, 0.4)  # 0.936 decayed
    intermediate.charge_trading("default", {"XXBTZUSD": 1}, 0.5)  # 1.17 decayed


@pytest.mark.parametrize(
    ("action", "age", "cost"),
    [
        ("add", 0, 1),
        ("add", 400, 1),
        ("cancel", 0, 8),
        ("cancel", 4.99, 8),
        ("cancel", 5, 6),
        ("cancel", 14.9, 5),
        ("cancel", 44, 4),
        ("cancel", 89, 2),
        ("cancel", 299, 1),
        ("cancel", 300, 0),
        ("amend", 0, 4),
        ("amend", 12, 2),
        ("amend", 15, 1),
        ("edit", 0, 7),
        ("edit", 80, 2),
        ("edit", 90, 1),
    ],
)
def test_penalties_by_order_age_follow_krakens_table(action: str, age: float, cost: int) -> None:
    assert transaction_cost(action, age) == cost


async def test_starter_trading_counter_is_per_pair(kraken: KrakenClient) -> None:
    for _ in range(60):
        assert (await kraken.private("AddOrder", **resting_buy("XBTUSDT", validate="true")))["error"] == []
    assert await kraken.private("AddOrder", **resting_buy("XBTUSDT", validate="true")) == ORDER_REFUSED
    assert (await kraken.private("AddOrder", **resting_buy(validate="true")))["error"] == []


async def test_refused_orders_still_pay_the_fixed_count(
    kraken: KrakenClient, app: SandboxApp, exchange: Exchange
) -> None:
    answer = await kraken.private("AddOrder", **resting_buy("XBTUSDT", volume="5000"))
    assert answer == {"error": ["EOrder:Insufficient funds"]}
    assert app.sandbox.limits is not None
    snapshot = app.sandbox.limits.snapshot(exchange.clock.monotonic())
    assert snapshot["trading"] == {"default:XBTUSDT": 1.0}


async def test_cancel_penalty_depends_on_the_orders_age(
    kraken: KrakenClient, app: SandboxApp, clock: VirtualClock
) -> None:
    limits = app.sandbox.limits
    assert limits is not None
    young = await kraken.place(**resting_buy("XBTUSDT"))
    await kraken.result("CancelOrder", txid=young)
    assert limits.trading[("default", "XBTUSDT")].level(clock.monotonic()) == 1 + 8
    old = await kraken.place(**resting_buy("XBTUSDT"))
    clock.advance(20)  # 9 + 1 - 20 decayed: the counter is back at 0
    await kraken.result("CancelOrder", txid=old)
    assert limits.trading[("default", "XBTUSDT")].level(clock.monotonic()) == 4


async def test_open_orders_cap_per_pair(kraken: KrakenClient, clock: VirtualClock) -> None:
    for _ in range(60):
        assert (await kraken.private("AddOrder", **resting_buy("XBTUSDT")))["error"] == []
        clock.advance(1)
    assert await kraken.private("AddOrder", **resting_buy("XBTUSDT")) == {"error": ["EOrder:Orders limit exceeded"]}
    assert (await kraken.private("AddOrder", **resting_buy()))["error"] == []


async def test_public_calls_burst_20_then_one_a_second(kraken: KrakenClient, clock: VirtualClock) -> None:
    for _ in range(20):
        assert (await kraken.public("Time"))["error"] == []
    assert await kraken.public("Time") == {"error": ["EGeneral:Too many requests"]}
    clock.advance(1)
    assert (await kraken.public("Time"))["error"] == []


async def test_no_limits_when_the_app_has_no_tier(exchange: Exchange, api_key: ApiKey) -> None:
    transport = httpx.ASGITransport(app=create_app(exchange, tier=None))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.kraken") as http:
        kraken = KrakenClient(http, api_key)
        for _ in range(30):
            assert (await kraken.private("Balance"))["error"] == []

"""KrakenRateLimiter against reference models of Kraken's counters (written here from
docs.kraken.com, "Spot REST Rate Limits" and "Spot Trading Limits"), in virtual time."""

from __future__ import annotations

import asyncio
import random
from typing import get_args

import pytest

from core.domain.config import RateLimitSettings, Tier
from core.exchange.ratelimit import KrakenRateLimiter, order_action_cost, rest_call_cost
from core.exchange.ratelimit.kraken import OrderAction
from tests.ratelimit.ratelimit_reference import KRAKEN_REST, KRAKEN_TRADING, counter_peaks, fastest_finish
from tests.virtual_time import elapse

virtual_time = pytest.mark.looptime(idle_timeout=0.1)
TIERS: tuple[Tier, ...] = get_args(Tier)
PAIR = "XXBTZUSD"

# What each call adds to the key's REST counter, per the docs.
REFERENCE_REST_COST = {
    "Balance": 1,
    "TradeBalance": 1,
    "OpenOrders": 1,
    "QueryOrders": 1,
    "AmendOrder": 1,
    "CancelAll": 1,
    "ClosedOrders": 2,
    "QueryTrades": 2,
    "TradesHistory": 2,
    "Ledgers": 2,
    "QueryLedgers": 2,
    "AddOrder": 0,
    "CancelOrder": 0,
    "Ticker": 0,
    "OHLC": 0,
    "Time": 0,
}
# Kraken's trading counter table: fixed count, then (age below, penalty) brackets.
REFERENCE_ORDER_COST: dict[str, tuple[int, list[tuple[float, int]]]] = {
    "add": (1, []),
    "amend": (1, [(5, 3), (10, 2), (15, 1)]),
    "edit": (1, [(5, 6), (10, 5), (15, 4), (45, 2), (90, 1)]),
    "cancel": (0, [(5, 8), (10, 6), (15, 5), (45, 4), (90, 2), (300, 1)]),
}


def reference_order_cost(action: str, age: float) -> int:
    fixed, brackets = REFERENCE_ORDER_COST[action]
    return fixed + next((penalty for below, penalty in brackets if age < below), 0)


def now() -> float:
    return asyncio.get_running_loop().time()


class TestRestCallCost:
    @pytest.mark.parametrize(("method", "cost"), sorted(REFERENCE_REST_COST.items()))
    def test_cost_on_the_key_counter(self, method: str, cost: int) -> None:
        assert rest_call_cost(method) == cost

    def test_an_unlisted_private_method_counts_one(self) -> None:
        assert rest_call_cost("DepositMethods") == 1


class TestOrderActionCost:
    @pytest.mark.parametrize(
        ("action", "age", "cost"),
        [
            ("add", None, 1),
            ("add", 0.0, 1),
            ("cancel", 0.0, 8),
            ("cancel", 4.999, 8),
            ("cancel", 5.0, 6),
            ("cancel", 9.999, 6),
            ("cancel", 10.0, 5),
            ("cancel", 14.999, 5),
            ("cancel", 15.0, 4),
            ("cancel", 44.999, 4),
            ("cancel", 45.0, 2),
            ("cancel", 89.999, 2),
            ("cancel", 90.0, 1),
            ("cancel", 299.999, 1),
            ("cancel", 300.0, 0),
            ("amend", 0.0, 4),
            ("amend", 5.0, 3),
            ("amend", 10.0, 2),
            ("amend", 15.0, 1),
            ("edit", 0.0, 7),
            ("edit", 5.0, 6),
            ("edit", 10.0, 5),
            ("edit", 15.0, 3),
            ("edit", 45.0, 2),
            ("edit", 90.0, 1),
        ],
    )
    def test_fixed_count_plus_age_penalty(self, action: OrderAction, age: float | None, cost: int) -> None:
        assert order_action_cost(action, age) == cost

    @pytest.mark.parametrize(("action", "cost"), [("cancel", 8), ("amend", 4), ("edit", 7)])
    def test_unknown_age_costs_as_much_as_the_youngest(self, action: OrderAction, cost: int) -> None:
        assert order_action_cost(action, None) == cost

    def test_kraken_documented_example(self) -> None:
        # Add an order, amend its price after 7 s, cancel it 36 s after the amend: total 8.
        total = order_action_cost("add") + order_action_cost("amend", 7) + order_action_cost("cancel", 36)
        assert total == 8

    def test_unknown_action_and_negative_age_are_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown order action"):
            order_action_cost("replace")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="negative"):
            order_action_cost("cancel", -1)


@virtual_time
class TestRestCounterShaping:
    @pytest.mark.parametrize("tier", TIERS)
    async def test_thousand_concurrent_calls_never_overfill_the_key_counter(self, tier: Tier) -> None:
        maximum, decay = KRAKEN_REST[tier]
        limiter = KrakenRateLimiter(tier)
        rng = random.Random(f"rest-{tier}")
        methods = rng.choices(sorted(REFERENCE_REST_COST), k=1000)
        grants: list[tuple[float, float]] = []

        async def call(method: str) -> None:
            await limiter.acquire_call(method)
            grants.append((now(), REFERENCE_REST_COST[method]))

        await asyncio.gather(*(call(method) for method in methods))

        assert len(grants) == 1000
        assert max(counter_peaks(grants, decay)) <= maximum
        fastest = fastest_finish([cost for _, cost in grants if cost], maximum, decay)
        assert fastest / now() >= 0.95

    @pytest.mark.parametrize("tier", TIERS)
    async def test_sustained_query_rate_is_near_what_the_tier_allows(self, tier: Tier) -> None:
        maximum, _ = KRAKEN_REST[tier]
        limiter = KrakenRateLimiter(tier)

        await asyncio.gather(*(limiter.acquire_call("Balance") for _ in range(1000)))

        sustained = (1000 - maximum) / now()
        assert sustained / limiter.allowed_rate("query") >= 0.95
        assert sustained <= limiter.allowed_rate("query")

    async def test_burst_then_exact_pacing_on_a_starter_key(self) -> None:
        limiter = KrakenRateLimiter("starter")

        waits = [await limiter.acquire_call("Balance") for _ in range(16)]

        assert waits[:14] == [0.0] * 14
        assert waits[14:] == pytest.approx([1 / (0.33 * 0.98)] * 2, abs=1e-6)

    async def test_public_and_trading_engine_calls_do_not_wait_on_the_key_counter(self) -> None:
        limiter = KrakenRateLimiter("starter")
        for _ in range(7):
            await limiter.acquire_call("Ledgers")

        assert [await limiter.acquire_call(m) for m in ("Ticker", "AddOrder", "CancelOrder")] == [0.0] * 3
        assert now() == 0.0


@virtual_time
class TestTradingCounterShaping:
    @pytest.mark.parametrize("tier", TIERS)
    async def test_thousand_order_transactions_stay_below_the_pair_threshold(self, tier: Tier) -> None:
        threshold, decay = KRAKEN_TRADING[tier]
        limiter = KrakenRateLimiter(tier)
        rng = random.Random(f"orders-{tier}")
        grants: list[tuple[float, float]] = []

        for _ in range(500):
            await limiter.acquire_order(PAIR, "add")
            grants.append((now(), reference_order_cost("add", 0)))
            action: OrderAction = rng.choice(["cancel", "cancel", "amend", "edit"])
            age = rng.choice([0.0, 3.0, 7.0, 12.0, 30.0, 60.0, 120.0, 400.0])
            await limiter.acquire_order(PAIR, action, age)
            grants.append((now(), reference_order_cost(action, age)))

        assert max(counter_peaks(grants, decay)) < threshold
        fastest = fastest_finish([cost for _, cost in grants if cost], threshold, decay)
        assert fastest / now() >= 0.95

    @pytest.mark.parametrize("tier", TIERS)
    async def test_add_cancel_pairs_run_near_the_allowed_rate(self, tier: Tier) -> None:
        threshold, decay = KRAKEN_TRADING[tier]
        limiter = KrakenRateLimiter(tier)
        grants: list[tuple[float, float]] = []

        for _ in range(500):
            await limiter.acquire_order(PAIR, "add")
            grants.append((now(), 1))
            await limiter.acquire_order(PAIR, "cancel", 0.0)
            grants.append((now(), 8))

        assert max(counter_peaks(grants, decay)) < threshold
        burst_calls = 2 * threshold / 9
        assert (1000 - burst_calls) / now() >= 0.95 * limiter.allowed_rate("orders")

    async def test_cancel_penalty_is_paid_in_time(self) -> None:
        limiter = KrakenRateLimiter("starter")
        for _ in range(59):
            assert await limiter.acquire_order(PAIR, "add") == 0.0

        waited = await limiter.acquire_order(PAIR, "cancel", order_age_s=2.0)

        assert waited == pytest.approx(8 / 0.98, abs=1e-6)

    async def test_old_order_cancel_costs_nothing_and_never_waits(self) -> None:
        limiter = KrakenRateLimiter("starter")
        for _ in range(59):
            await limiter.acquire_order(PAIR, "add")

        assert await limiter.acquire_order(PAIR, "cancel", order_age_s=300.0) == 0.0

    async def test_pairs_have_independent_counters(self) -> None:
        limiter = KrakenRateLimiter("starter")
        for _ in range(59):
            await limiter.acquire_order(PAIR, "add")

        assert await limiter.acquire_order("XETHZUSD", "cancel", order_age_s=0.0) == 0.0
        assert await limiter.acquire_order(PAIR, "add") == pytest.approx(1 / 0.98, abs=1e-6)

    @pytest.mark.parametrize("tier", TIERS)
    async def test_mixed_cycles_respect_both_counters(self, tier: Tier) -> None:
        rest_max, rest_decay = KRAKEN_REST[tier]
        threshold, trading_decay = KRAKEN_TRADING[tier]
        limiter = KrakenRateLimiter(tier)
        rest: list[tuple[float, float]] = []
        trading: list[tuple[float, float]] = []

        for _ in range(334):
            await limiter.acquire_order(PAIR, "add")
            trading.append((now(), 1))
            await limiter.acquire_call("QueryOrders")
            rest.append((now(), 1))
            await limiter.acquire_order(PAIR, "cancel", 0.0)
            trading.append((now(), 8))

        assert max(counter_peaks(rest, rest_decay)) <= rest_max
        assert max(counter_peaks(trading, trading_decay)) < threshold
        assert 1002 / now() >= 0.95 * limiter.allowed_rate("mixed")


@virtual_time
class TestRateLimitErrors:
    async def test_rest_error_assumes_a_full_counter_and_waits_it_down(self) -> None:
        limiter = KrakenRateLimiter("starter")

        imposed = limiter.on_rate_limit_error("rest")

        # Kraken's counter is at 15; our ceiling is 14, so a call may go once 2 units decayed.
        assert imposed == pytest.approx(2 / (0.33 * 0.98))
        assert await limiter.acquire_call("Balance") == pytest.approx(imposed, abs=1e-6)

    async def test_rest_error_delays_a_call_already_waiting(self) -> None:
        limiter = KrakenRateLimiter("pro")
        for _ in range(19):
            await limiter.acquire_call("Balance")
        waiting = asyncio.create_task(limiter.acquire_call("Balance"))
        await elapse(0.5)

        limiter.on_rate_limit_error("rest")

        assert await waiting == pytest.approx(0.5 + 2 / 0.98, abs=1e-6)

    async def test_order_error_backs_off_only_that_pair(self) -> None:
        limiter = KrakenRateLimiter("intermediate")

        imposed = limiter.on_rate_limit_error("order", PAIR)

        assert imposed == pytest.approx(2 / (2.34 * 0.98))
        assert await limiter.acquire_order("XETHZUSD", "add") == 0.0
        assert await limiter.acquire_order(PAIR, "add") == pytest.approx(imposed, abs=1e-6)

    async def test_repeated_errors_do_not_stack_beyond_a_full_counter(self) -> None:
        limiter = KrakenRateLimiter("pro")

        first = limiter.on_rate_limit_error("rest")
        second = limiter.on_rate_limit_error("rest")

        assert second == pytest.approx(first)

    def test_order_error_needs_its_pair(self) -> None:
        limiter = KrakenRateLimiter("pro")
        with pytest.raises(ValueError, match="pair"):
            limiter.on_rate_limit_error("order")
        with pytest.raises(ValueError, match="unknown counter kind"):
            limiter.on_rate_limit_error("ws")  # type: ignore[arg-type]


@virtual_time
class TestConfiguredCaps:
    async def test_calls_per_minute_caps_the_sustained_rate_below_the_tier(self) -> None:
        limiter = KrakenRateLimiter("pro", calls_per_minute=30)

        await asyncio.gather(*(limiter.acquire_call("Balance") for _ in range(200)))

        assert limiter.allowed_rate("query") == 0.5
        assert now() == pytest.approx((200 - 19) / 0.5, abs=1e-6)

    async def test_a_cap_above_the_tier_changes_nothing(self) -> None:
        capped = KrakenRateLimiter("starter", calls_per_minute=60)

        await asyncio.gather(*(capped.acquire_call("Balance") for _ in range(100)))

        assert capped.allowed_rate("query") == 0.33
        assert now() == pytest.approx((100 - 14) / (0.33 * 0.98), abs=1e-6)

    async def test_order_calls_per_minute_caps_order_transactions(self) -> None:
        limiter = KrakenRateLimiter("pro", order_calls_per_minute=30)

        for _ in range(300):
            await limiter.acquire_order(PAIR, "cancel", order_age_s=400.0)

        # Cancels of old orders cost the pair counter nothing; the cap lets one trade's
        # three orders go at once, then paces the rest evenly, one every 2 s.
        assert now() == pytest.approx(297 / 0.5, abs=1e-6)
        assert limiter.allowed_rate("orders", cancel_age_s=400.0) == pytest.approx(0.5)

    def test_from_settings(self) -> None:
        settings = RateLimitSettings(tier="intermediate", calls_per_minute=12, order_calls_per_minute=60)

        limiter = KrakenRateLimiter.from_settings(settings)

        assert limiter.tier == "intermediate"
        assert limiter.allowed_rate("query") == pytest.approx(0.2)

    def test_bad_configuration_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown Kraken tier"):
            KrakenRateLimiter("gold")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="calls_per_minute must be positive"):
            KrakenRateLimiter("pro", calls_per_minute=0)


class TestAllowedRate:
    @pytest.mark.parametrize(
        ("tier", "query", "orders", "mixed"),
        [
            ("starter", 0.33, 2 / 9, 3 / 9),
            ("intermediate", 0.5, 2 * 2.34 / 9, 3 * 2.34 / 9),
            ("pro", 1.0, 2 * 3.75 / 9, 3 * 3.75 / 9),
        ],
    )
    def test_tier_allowances_for_each_mix(self, tier: Tier, query: float, orders: float, mixed: float) -> None:
        limiter = KrakenRateLimiter(tier)

        assert limiter.allowed_rate("query") == pytest.approx(query)
        assert limiter.allowed_rate("orders") == pytest.approx(orders)
        assert limiter.allowed_rate("mixed") == pytest.approx(mixed)

    def test_older_cancels_allow_more_orders(self) -> None:
        limiter = KrakenRateLimiter("intermediate")

        assert limiter.allowed_rate("orders", cancel_age_s=60) == pytest.approx(2 * 2.34 / 3)
        assert limiter.allowed_rate("mixed", cancel_age_s=400) == pytest.approx(3 * 0.5)

    def test_unknown_mix_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown call mix"):
            KrakenRateLimiter("pro").allowed_rate("bulk")  # type: ignore[arg-type]

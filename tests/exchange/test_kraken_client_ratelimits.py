"""The client paced by KrakenRateLimiter, against a respx-mocked Kraken on a virtual
clock: the waits it applies, what a refusal teaches it, the age it gives a cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import respx

from core.domain.clock import SystemClock, VirtualClock
from core.domain.enums import OrderType, Side
from core.domain.errors import OrderRateLimitExceededError, UnknownOrderError
from core.exchange import Credentials, KrakenClient, NonceSource
from core.exchange.ratelimit import KrakenRateLimiter
from core.exchange.ratelimit.kraken import OrderAction
from tests.exchange.kraken_fakes import BASE_URL, form, ok, order_wire, refused

STARTER_REST_RATE = 0.33 * 0.98  # the limiter's refill: 2% under Kraken's decay
STARTER_TRADING_RATE = 1.0 * 0.98
ACK: dict[str, Any] = {"descr": {"order": "buy 0.01000000 XBTUSD @ limit 30000.0"}, "txid": ["OAAAAA-BBBBB-CCCCCC"]}


class RecordingLimiter(KrakenRateLimiter):
    """The real limiter, noting what it is asked to charge."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.orders: list[tuple[str, OrderAction, float | None]] = []

    async def acquire_order(self, pair: str, action: OrderAction, order_age_s: float | None = None) -> float:
        self.orders.append((pair, action, order_age_s))
        return await super().acquire_order(pair, action, order_age_s)


@pytest.fixture
def limiter(clock: VirtualClock) -> RecordingLimiter:
    return RecordingLimiter("starter", clock=clock)


@pytest.fixture
async def paced(
    kraken: respx.MockRouter, credentials: Credentials, clock: VirtualClock, limiter: RecordingLimiter
) -> AsyncIterator[KrakenClient]:
    async with KrakenClient(
        BASE_URL, credentials, clock=clock, nonce_source=NonceSource(clock), rate_limiter=limiter
    ) as client:
        yield client


async def limit_buy(client: KrakenClient, symbol: str = "BTC/USD", cl_ord_id: str | None = None) -> str:
    ack = await client.add_order(
        symbol, Side.BUY, OrderType.LIMIT, Decimal("0.01"), Decimal("30000"), cl_ord_id=cl_ord_id
    )
    return ack.txid


class TestWaits:
    async def test_the_starter_burst_goes_at_once_then_calls_are_paced(
        self, paced: KrakenClient, kraken: respx.MockRouter, clock: VirtualClock
    ) -> None:
        route = kraken.post("/0/private/Balance").mock(return_value=ok({}))
        sent_at = []
        for _ in range(16):
            await paced.balance()
            sent_at.append(clock.monotonic())

        assert route.call_count == 16
        assert sent_at[:14] == [0.0] * 14  # 15 allowed, one unit of headroom kept
        assert sent_at[14:] == pytest.approx([1 / STARTER_REST_RATE, 2 / STARTER_REST_RATE], abs=1e-9)
        assert paced.rate_limit_wait_s == pytest.approx(2 / STARTER_REST_RATE, abs=1e-9)

    async def test_public_calls_and_order_calls_never_wait_on_the_key_counter(
        self, paced: KrakenClient, kraken: respx.MockRouter, clock: VirtualClock
    ) -> None:
        kraken.post("/0/private/Balance").mock(return_value=ok({}))
        kraken.post("/0/private/AddOrder").mock(return_value=ok(ACK))
        for _ in range(14):
            await paced.balance()

        await paced.resolve_pair("BTC/USD")
        await limit_buy(paced)

        assert clock.monotonic() == 0.0

    async def test_measure_counts_the_waits_of_its_own_task_only(
        self, paced: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        kraken.post("/0/private/Balance").mock(return_value=ok({}))
        for _ in range(14):
            await paced.balance()

        async def one_call() -> float:
            with paced.measure() as costs:
                await paced.balance()
            assert costs.rate_limit_waits == 1
            return costs.rate_limit_wait_s

        first = await asyncio.create_task(one_call())
        second = await asyncio.create_task(one_call())

        assert first == pytest.approx(1 / STARTER_REST_RATE, abs=1e-9)
        assert second == pytest.approx(1 / STARTER_REST_RATE, abs=1e-9)
        assert paced.rate_limit_wait_s == pytest.approx(first + second, abs=1e-9)

    @pytest.mark.looptime(idle_timeout=0.1)
    async def test_concurrent_callers_are_paced_first_come_first_served(
        self, kraken: respx.MockRouter, credentials: Credentials
    ) -> None:
        route = kraken.post("/0/private/Balance").mock(return_value=ok({}))
        loop = asyncio.get_running_loop()
        async with KrakenClient(
            BASE_URL, credentials, rate_limiter=KrakenRateLimiter("pro", clock=SystemClock())
        ) as client:
            started = loop.time()
            await asyncio.gather(*(client.balance() for _ in range(40)))

            assert route.call_count == 40
            assert loop.time() - started == pytest.approx((40 - 19) / 0.98, abs=1e-5)
            assert client.rate_limit_wait_s == pytest.approx(sum(k / 0.98 for k in range(1, 22)), abs=1e-4)


class TestLearning:
    async def test_a_rest_refusal_makes_the_next_call_wait_for_the_counter_to_decay(
        self, paced: KrakenClient, kraken: respx.MockRouter, clock: VirtualClock
    ) -> None:
        route = kraken.post("/0/private/Balance").mock(side_effect=[refused("EAPI:Rate limit exceeded"), ok({})])

        with paced.measure() as costs:
            await paced.balance()

        assert route.call_count == 2
        assert costs.rate_limit_errors == 1 and costs.retries == 1
        # Another client filled the counter: it is taken as full (15), so one call needs
        # two units decayed (14 allowed), however short the retry's own backoff was.
        assert clock.monotonic() >= 2 / STARTER_REST_RATE - 1e-9

    async def test_an_order_refusal_backs_off_that_pair_only(
        self, paced: KrakenClient, kraken: respx.MockRouter, clock: VirtualClock
    ) -> None:
        kraken.post("/0/private/AddOrder").mock(side_effect=[refused("EOrder:Rate limit exceeded"), ok(ACK), ok(ACK)])
        with pytest.raises(OrderRateLimitExceededError):
            await limit_buy(paced, "BTC/USD")

        await limit_buy(paced, "ETH/USD")
        assert clock.monotonic() == 0.0
        await limit_buy(paced, "BTC/USD")
        assert clock.monotonic() == pytest.approx(2 / STARTER_TRADING_RATE, abs=1e-9)


class TestCancelCharges:
    async def test_a_cancel_is_charged_at_the_age_of_the_order_on_its_pair(
        self, paced: KrakenClient, kraken: respx.MockRouter, clock: VirtualClock, limiter: RecordingLimiter
    ) -> None:
        kraken.post("/0/private/AddOrder").mock(return_value=ok(ACK))
        kraken.post("/0/private/CancelOrder").mock(return_value=ok({"count": 1}))
        txid = await limit_buy(paced)
        clock.advance(7.0)

        await paced.cancel_order(txid)

        assert limiter.orders == [("XXBTZUSD", "add", None), ("XXBTZUSD", "cancel", 7.0)]

    async def test_a_cancel_by_client_order_id_finds_the_order_it_placed(
        self, paced: KrakenClient, kraken: respx.MockRouter, clock: VirtualClock, limiter: RecordingLimiter
    ) -> None:
        kraken.post("/0/private/AddOrder").mock(return_value=ok(ACK))
        kraken.post("/0/private/CancelOrder").mock(return_value=ok({"count": 1}))
        await limit_buy(paced, cl_ord_id="tg-1")
        clock.advance(100.0)

        await paced.cancel_order("tg-1")

        assert limiter.orders[-1] == ("XXBTZUSD", "cancel", 100.0)

    async def test_young_cancels_pay_the_penalty_old_ones_do_not(
        self, paced: KrakenClient, kraken: respx.MockRouter, clock: VirtualClock
    ) -> None:
        kraken.post("/0/private/AddOrder").mock(
            side_effect=[ok({**ACK, "txid": [f"O{n:05d}-AAAAA-BBBBBB"]}) for n in range(14)]
        )
        kraken.post("/0/private/CancelOrder").mock(return_value=ok({"count": 1}))
        old = [await limit_buy(paced) for _ in range(7)]
        clock.advance(300.0)  # the counter is empty again; these orders are past every penalty
        for txid in old:
            await paced.cancel_order(txid)
        assert clock.monotonic() == 300.0  # 7 adds + 7 cancels at age 300: 7 units

        for _ in range(7):
            await paced.cancel_order(await limit_buy(paced))

        # 7 x (1 + 8) = 63 units for the young ones, against a burst of 59.
        assert clock.monotonic() - 300.0 == pytest.approx((63 - 59) / STARTER_TRADING_RATE, abs=1e-9)

    async def test_an_order_placed_elsewhere_is_found_among_the_open_ones_and_charged_as_youngest(
        self, paced: KrakenClient, kraken: respx.MockRouter, limiter: RecordingLimiter
    ) -> None:
        listing = kraken.post("/0/private/OpenOrders").mock(
            return_value=ok({"open": {"OTHERS-ORDER-000001": order_wire("open", cl_ord_id="theirs")}})
        )
        kraken.post("/0/private/CancelOrder").mock(return_value=ok({"count": 1}))

        await paced.cancel_order("theirs")

        assert limiter.orders == [("XXBTZUSD", "cancel", None)]
        assert listing.call_count == 1

    async def test_a_cancel_of_no_open_order_charges_nothing(
        self, paced: KrakenClient, kraken: respx.MockRouter, limiter: RecordingLimiter
    ) -> None:
        kraken.post("/0/private/OpenOrders").mock(return_value=ok({"open": {}}))
        kraken.post("/0/private/CancelOrder").mock(return_value=refused("EOrder:Unknown order"))

        with pytest.raises(UnknownOrderError):
            await paced.cancel_order("ONEVER-PLACE-D00000")

        assert limiter.orders == []

    async def test_orders_seen_closed_are_forgotten(
        self, paced: KrakenClient, kraken: respx.MockRouter, limiter: RecordingLimiter
    ) -> None:
        kraken.post("/0/private/AddOrder").mock(return_value=ok(ACK))
        kraken.post("/0/private/QueryOrders").mock(return_value=ok({ACK["txid"][0]: order_wire("closed")}))
        open_orders = kraken.post("/0/private/OpenOrders").mock(return_value=ok({"open": {}}))
        kraken.post("/0/private/CancelOrder").mock(return_value=refused("EOrder:Unknown order"))
        txid = await limit_buy(paced)

        await paced.query_orders([txid])
        with pytest.raises(UnknownOrderError):
            await paced.cancel_order(txid)

        assert open_orders.call_count == 1  # not remembered: looked up, not found
        assert [action for _, action, _ in limiter.orders] == ["add"]

    async def test_without_a_limiter_a_cancel_sends_nothing_else(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        listing = kraken.post("/0/private/OpenOrders").mock(return_value=ok({"open": {}}))
        route = kraken.post("/0/private/CancelOrder").mock(return_value=ok({"count": 1}))

        await client.cancel_order("tg-entry-1")

        assert listing.call_count == 0
        assert form(route.calls.last.request)[1:] == [("txid", "tg-entry-1")]

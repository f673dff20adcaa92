"""The seed's order-rate scenario: executions paced by kraken.rate_limit through the
client's limiter, against the in-process sandbox on its virtual clock (exact, instant)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from core.domain.clock import Clock
from core.domain.config import RateLimitSettings
from core.domain.enums import ExecutionStatus
from core.domain.models import ExecutionResult
from core.execution.manager import OrderExecutionManager
from core.flows.manual import manual_proposal
from simulator.exchange import DEFAULT_ACCOUNT
from tests.tg_client import Rig, open_rig


@dataclass
class Desk:
    rig: Rig
    manager: OrderExecutionManager

    @property
    def clock(self) -> Clock:
        return self.rig.clock

    async def execute(self, times: int) -> list[ExecutionResult]:
        proposal = await manual_proposal(self.rig.client, "BTC/USDT", "buy", "0.001")
        return [await self.manager.execute_trade(proposal) for _ in range(times)]

    def order_times(self) -> list[float]:
        return sorted(o.opentm for o in self.rig.sandbox.exchange.query_orders(DEFAULT_ACCOUNT, None))


async def open_desk(tmp_path: Path, limits: RateLimitSettings) -> AsyncIterator[Desk]:
    async with open_rig(tmp_path, limits=limits) as rig:
        yield Desk(rig, OrderExecutionManager(rig.client, rig.store, clock=rig.clock))


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async for opened in open_desk(tmp_path, RateLimitSettings(order_calls_per_minute=15)):
        yield opened


async def test_15_order_calls_per_minute_make_5_executions_take_at_least_16_s(desk: Desk) -> None:
    started = desk.clock.monotonic()

    results = await desk.execute(5)

    assert all(r.status is ExecutionStatus.FILLED for r in results)
    assert desk.clock.monotonic() - started >= 16.0
    placed = desk.order_times()
    assert len(placed) == 15  # entry, stop-loss and take-profit of each
    gaps = [later - earlier for earlier, later in zip(placed, placed[1:], strict=False)]
    # The first trade's three orders go at once (the cap's burst), then one every 4 s.
    assert gaps == pytest.approx([0.0] * 2 + [4.0] * 12, abs=1e-6)


async def test_the_wait_is_in_latency_and_named_in_the_warnings(desk: Desk) -> None:
    first, second = await desk.execute(2)

    assert first.latency_ms == 0.0
    assert not first.warnings_contains("rate limit")
    assert second.latency_ms == pytest.approx(12000, abs=1e-3)
    assert "Kraken's rate limit held 3 exchange call(s) back, 12.0 s in total" in second.warnings
    assert first.retry_count == second.retry_count == 0


async def test_default_limits_let_one_trade_through_at_once_and_pace_the_next(tmp_path: Path) -> None:
    async for desk in open_desk(tmp_path, RateLimitSettings()):
        first, second = await desk.execute(2)

        assert first.latency_ms == 0.0
        assert second.latency_ms == pytest.approx(3000, abs=1e-3)
        assert second.warnings_contains("rate limit held 3 exchange call(s) back")
        assert second.order is not None and second.order.volume == Decimal("0.001")

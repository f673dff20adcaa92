"""Kraken's conditional close as the protection mode: the exchange opens the stop as
the entry fills, and tg records it as the position's stop-loss."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.domain.config import ExecutionSettings
from core.domain.enums import OrderRole, OrderStatus, Side
from core.domain.models import TradeProposal
from core.exchange.sandbox_control import SandboxControl
from core.execution.invariants import check_invariants
from core.execution.manager import OrderExecutionManager
from tests.tg_client import Rig

pytestmark = pytest.mark.integration


async def test_the_stop_rides_on_the_entry(rig: Rig) -> None:
    price = (await rig.client.ticker("BTC/USDT")).last
    proposal = TradeProposal(
        symbol="BTC/USDT",
        side=Side.BUY,
        entry_price=price,
        stop_loss=price * Decimal("0.98"),
        take_profit=price * Decimal("1.04"),
        confidence=0.9,
        volume=Decimal("0.1"),
    )
    manager = OrderExecutionManager(
        rig.client, rig.store, clock=rig.clock, settings=ExecutionSettings(protection="conditional_close")
    )

    result = await manager.execute_trade(proposal)

    assert result.success and result.warnings == []
    stop = result.order_for(OrderRole.STOP_LOSS)
    assert stop is not None and stop.external_id is not None
    assert result.order is not None and result.position is not None
    exchange_stop = (await rig.client.query_orders([stop.external_id]))[stop.external_id]
    assert exchange_stop.refid == result.order.external_id  # opened by Kraken, not sent by tg
    assert exchange_stop.ordertype == "stop-loss" and exchange_stop.volume == result.position.size
    assert stop.status is OrderStatus.OPEN
    control = SandboxControl(rig.sandbox.base_url, transport=rig.sandbox.transport)
    pairs = {p.altname: p for p in (await rig.client.asset_pairs()).values() if p.symbol == "BTC/USDT"}
    assert check_invariants(rig.store, await control.truth(), pairs).ok
    await control.aclose()

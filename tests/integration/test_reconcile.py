"""Reconciliation against the sandbox over its wire: the exchange is the truth."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from core.domain.config import ExecutionSettings
from core.domain.enums import OrderRole, OrderStatus, OrderType, PositionStatus, Side
from core.domain.models import ExecutionResult, Order, Position, TradeProposal
from core.execution.manager import OrderExecutionManager
from core.execution.reconcile import Reconciler, ReconcileReport
from core.execution.spool import PendingWrites
from simulator.faults import FaultRule
from tests.tg_client import Rig

pytestmark = pytest.mark.integration


def long_proposal(price: Decimal, stop_pct: str = "0.02", target_pct: str = "0.04", *, id: str = "P1") -> TradeProposal:
    """A buy of 0.1 BTC/USDT at `price`, its stop and target that far from it."""
    return TradeProposal(
        symbol="BTC/USDT",
        side=Side.BUY,
        entry_price=price,
        stop_loss=price * (1 - Decimal(stop_pct)),
        take_profit=price * (1 + Decimal(target_pct)),
        confidence=0.9,
        volume=Decimal("0.1"),
        id=id,
    )


async def open_long(rig: Rig, stop_pct: str = "0.02", target_pct: str = "0.04") -> ExecutionResult:
    price = (await rig.client.ticker("BTC/USDT")).last
    proposal = long_proposal(price, stop_pct, target_pct)
    manager = OrderExecutionManager(
        rig.client, rig.store, clock=rig.clock, settings=ExecutionSettings(), run_id="R-test"
    )
    rig.store.add_agent_output(
        "R-test",
        agent="risk",
        symbol="BTC/USDT",
        created_at=0.0,
        payload={"proposal": {"stop_loss": str(proposal.stop_loss), "take_profit": str(proposal.take_profit)}},
    )
    result = await manager.execute_trade(proposal)
    assert result.success, result.error_message
    return result


async def reconcile_until_closed(rig: Rig) -> tuple[ReconcileReport, Position]:
    """Move the market an hour at a time, reconciling, until the one position closes (or
    60 hours passed): the last pass's report and the position."""
    for _ in range(60):
        rig.sandbox.advance(3600)
        report = await Reconciler(rig.client, rig.store, rig.clock).reconcile()
        [position] = rig.store.positions()
        if position.status is PositionStatus.CLOSED:
            break
    return report, position


async def test_a_clean_book_changes_nothing(rig: Rig) -> None:
    await open_long(rig)
    report = await Reconciler(rig.client, rig.store, rig.clock).reconcile()
    assert report.changes == []


async def test_stop_cancelled_behind_our_back_is_placed_again(rig: Rig) -> None:
    result = await open_long(rig)
    stop = result.order_for(OrderRole.STOP_LOSS)
    assert stop is not None and stop.external_id is not None and result.position is not None
    await rig.client.cancel_order(stop.external_id)

    report = await Reconciler(rig.client, rig.store, rig.clock).reconcile()

    open_orders = await rig.client.open_orders()
    stops = [o for o in open_orders.values() if o.ordertype == "stop-loss"]
    assert len(stops) == 1 and stops[0].volume == result.position.size
    assert stops[0].txid != stop.external_id
    assert any("placed stop_loss" in change for change in report.changes)


async def test_a_target_never_sent_is_placed_and_one_cancelled_is_left_cancelled(rig: Rig) -> None:
    result = await open_long(rig)
    target = result.order_for(OrderRole.TAKE_PROFIT)
    assert target is not None and target.external_id is not None and result.position is not None
    # as if the process was killed after its stop was confirmed, before the target's intent
    await rig.client.cancel_order(target.external_id)
    with sqlite3.connect(rig.store.location) as db:
        db.execute("DELETE FROM orders WHERE role = 'take_profit'")
    db.close()

    report = await Reconciler(rig.client, rig.store, rig.clock).reconcile()

    targets = [o for o in (await rig.client.open_orders()).values() if o.ordertype == "take-profit"]
    assert len(targets) == 1 and targets[0].volume == result.position.size
    assert targets[0].price == result.position.take_profit
    assert any("placed take_profit" in change for change in report.changes)

    await rig.client.cancel_order(targets[0].txid)  # someone's choice: tg does not undo it
    again = await Reconciler(rig.client, rig.store, rig.clock).reconcile()
    assert not any(o.ordertype == "take-profit" for o in (await rig.client.open_orders()).values())
    assert not any("placed take_profit" in change for change in again.changes)


async def test_filled_target_closes_the_position_and_cancels_the_stop(rig: Rig) -> None:
    result = await open_long(rig, stop_pct="0.5", target_pct="0.003")
    report, position = await reconcile_until_closed(rig)
    assert position.status is PositionStatus.CLOSED
    placed_target, placed_stop = result.order_for(OrderRole.TAKE_PROFIT), result.order_for(OrderRole.STOP_LOSS)
    assert placed_target is not None and placed_stop is not None and result.order is not None
    target = rig.store.get_order(placed_target.client_order_id)
    stop = rig.store.get_order(placed_stop.client_order_id)
    assert target is not None and stop is not None
    assert target.status is OrderStatus.CLOSED
    assert stop.status is OrderStatus.CANCELED
    entry = rig.store.get_order(result.order.client_order_id)
    assert entry is not None and target.avg_fill_price is not None
    fees = entry.fee + target.fee
    assert position.realized_pnl == (target.avg_fill_price - position.entry_price) * position.size - fees
    assert any("closed by its take_profit" in c for c in report.changes)
    assert (await rig.client.open_orders()) == {}
    # the USDT the target sold for is tg's proceeds, not a foreign holding (USDT/USD being a market too)
    assert (await Reconciler(rig.client, rig.store, rig.clock).reconcile()).foreign == []


async def test_an_order_of_tgs_the_database_lacks_is_adopted(rig: Rig) -> None:
    mine = rig.store.namespace().new_client_order_id(OrderRole.ENTRY)
    ack = await rig.client.add_order(
        "BTC/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.01"), Decimal("30000.0"), cl_ord_id=mine
    )
    report = await Reconciler(rig.client, rig.store, rig.clock).reconcile()
    adopted = rig.store.get_order_by_external_id(ack.txid)
    assert adopted is not None and adopted.status is OrderStatus.OPEN
    assert adopted.client_order_id == mine and adopted.role is OrderRole.ENTRY
    assert any("adopted" in c for c in report.changes)


async def test_intent_that_reached_the_exchange_is_matched_by_client_order_id(rig: Rig) -> None:
    intent = Order(
        client_order_id=rig.store.namespace().new_client_order_id(OrderRole.ENTRY),
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        volume=Decimal("0.01"),
        role=OrderRole.ENTRY,
        price=Decimal("30000.0"),
    )
    rig.store.upsert_order(intent)
    ack = await rig.client.add_order(
        "BTC/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.01"), Decimal("30000.0"), cl_ord_id=intent.client_order_id
    )
    await Reconciler(rig.client, rig.store, rig.clock).reconcile()
    stored = rig.store.get_order(intent.client_order_id)
    assert stored is not None
    assert stored.external_id == ack.txid and stored.status is OrderStatus.OPEN


async def test_intent_that_never_left_is_marked_rejected(rig: Rig) -> None:
    rig.store.upsert_order(
        Order(
            client_order_id="3f1c9a6e-0000-4000-8000-000000000003",
            symbol="BTC/USDT",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            volume=Decimal("0.01"),
            role=OrderRole.ENTRY,
        )
    )
    await Reconciler(rig.client, rig.store, rig.clock).reconcile()
    stored = rig.store.get_order("3f1c9a6e-0000-4000-8000-000000000003")
    assert stored is not None and stored.status is OrderStatus.REJECTED


async def test_filled_entry_without_a_position_gets_one_and_a_stop(rig: Rig) -> None:
    result = await open_long(rig)
    assert result.position is not None
    # as if the process died after the entry filled and before anything else was stored
    for order in result.orders[1:]:
        assert order.external_id is not None
        await rig.client.cancel_order(order.external_id)
    with sqlite3.connect(rig.store.location) as db:
        db.execute("DELETE FROM orders WHERE role != 'entry'")
        db.execute("UPDATE orders SET position_id = NULL")
        db.execute("DELETE FROM positions")
    db.close()

    report = await Reconciler(rig.client, rig.store, rig.clock).reconcile()

    [repaired] = rig.store.positions(status=PositionStatus.OPEN)
    assert repaired.size == result.position.size
    assert repaired.stop_loss == result.position.stop_loss
    stops = [o for o in (await rig.client.open_orders()).values() if o.ordertype == "stop-loss"]
    assert len(stops) == 1 and stops[0].volume == repaired.size
    assert any("opened position" in c for c in report.changes)


async def test_spooled_records_are_written_on_the_next_run(rig: Rig, tmp_path: Path) -> None:
    spool = PendingWrites(tmp_path / "tg.pending.jsonl")
    order = Order(
        client_order_id="c-1",
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        volume=Decimal("0.01"),
        role=OrderRole.ENTRY,
        external_id="OAAAAA-BBBBB-CCCCCC",
        status=OrderStatus.CLOSED,
    )
    spool.append([order])
    report = await Reconciler(rig.client, rig.store, rig.clock, spool=spool).reconcile()
    assert rig.store.get_order("c-1") is not None
    assert not spool.path.exists()
    assert "spooled" in report.changes[0]


async def test_settled_orders_are_not_asked_about_again(rig: Rig) -> None:
    """The open position's filled entry has fallen off the closed-orders page (55
    foreign orders settled after it): it is final, so the pass asks nothing about it."""
    from tests.integration.trade_history import counting_requests

    await open_long(rig)
    price = (await rig.client.ticker("BTC/USDT")).last
    for _ in range(55):
        ack = await rig.client.add_order(
            "BTC/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.001"), (price / 2).quantize(Decimal("0.1"))
        )
        await rig.client.cancel_order(ack.txid)
        rig.sandbox.exchange.advance(60)  # within the starter tier's order rate
    assert len(await rig.client.closed_orders()) == 50
    with counting_requests() as requests:
        report = await Reconciler(rig.client, rig.store, rig.clock).reconcile()
    assert requests["/0/private/QueryOrders"] == 0
    assert report.changes == [] and report.errors == []
    [position] = rig.store.positions(status=PositionStatus.OPEN)
    live = {o.role for o in rig.store.orders(position_id=position.id) if o.status.is_live}
    assert live == {OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT}


async def test_a_busy_exchange_cannot_keep_a_closed_positions_stop_live(rig: Rig) -> None:
    """A target filled, and the exchange answers the stop's cancel EService:Busy and then
    EService:Unavailable: the cancel is resent (a cancel sent twice cancels once), the
    position closes at its fill, and no stop is left to sell coins tg no longer holds."""
    result = await open_long(rig, stop_pct="0.5", target_pct="0.003")
    rig.sandbox.faults.add(
        FaultRule(fault="busy", endpoint="CancelOrder", times=1),
        FaultRule(fault="unavailable", endpoint="CancelOrder", nth=2, times=1),
    )
    report, position = await reconcile_until_closed(rig)
    assert position.status is PositionStatus.CLOSED and report.errors == []
    placed_stop = result.order_for(OrderRole.STOP_LOSS)
    assert placed_stop is not None
    stop = rig.store.get_order(placed_stop.client_order_id)
    assert stop is not None and stop.status is OrderStatus.CANCELED
    assert (await rig.client.open_orders()) == {}


async def test_a_position_the_exchange_closed_is_recorded_closed_even_when_its_stop_cannot_be_cancelled(
    rig: Rig,
) -> None:
    """The cancel keeps failing: the position is still recorded closed at its fill (the
    truth), the failure is reported, and the next pass cancels the stop as an orphan."""
    await open_long(rig, stop_pct="0.5", target_pct="0.003")
    rig.sandbox.faults.add(FaultRule(fault="busy", endpoint="CancelOrder", times=50))
    report, position = await reconcile_until_closed(rig)
    assert position.status is PositionStatus.CLOSED
    assert any("EService:Busy" in error for error in report.errors)
    assert position.closed_at is not None and position.closed_at < rig.clock.time()
    rig.sandbox.faults.clear()
    report = await Reconciler(rig.client, rig.store, rig.clock).reconcile()
    assert any("cancelled orphan stop_loss" in change for change in report.changes)
    assert (await rig.client.open_orders()) == {}

"""Reconciliation against the sandbox when tg is not alone on the account, when the
exchange hides what it did, and when tg died mid-way: tg acts only on what it owns,
never doubles protection, never leaves any, and reads the balances.

Each test named `test_reproduction_*` is one of the reproductions of issue 10."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import pytest

from core.domain.config import ExecutionSettings
from core.domain.enums import OrderRole, OrderStatus, OrderType, PositionStatus, Side
from core.domain.models import TradeProposal
from core.exchange import ExchangeOrder, KrakenClient
from core.exchange.sandbox_control import SandboxControl
from core.execution.invariants import check_invariants
from core.execution.manager import OrderExecutionManager
from core.execution.reconcile import Reconciler, ReconcileReport
from core.flows.simulation import CrashingTransport, SimulatedCrash
from core.storage.store import Store
from simulator.embedded import EmbeddedExchange
from simulator.faults import parse_spec
from tests.tg_client import tg_client

pytestmark = pytest.mark.integration

SYMBOL = "BTC/USDT"


@dataclass
class Desk:
    """One sandbox account and two tg databases on it."""

    sandbox: EmbeddedExchange
    folder: Path

    def client(self, crash_after: int | None = None) -> KrakenClient:
        crashing = None if crash_after is None else CrashingTransport(self.sandbox.transport, crash_after)
        return tg_client(self.sandbox, transport=crashing)

    def store(self, name: str = "tg") -> Store:
        return Store.open(self.folder / f"{name}.db")

    def fault(self, spec: str) -> None:
        self.sandbox.faults.add(parse_spec(spec))

    def orders(self, status: str | None = None) -> dict[str, ExchangeOrder]:
        """The exchange's own, unfaulted view of every order."""
        exchange = self.sandbox.exchange
        found = {}
        for order in exchange.query_orders("default", None):
            view = ExchangeOrder.from_wire(order.txid, _wire(order))
            if status is None or view.status == status:
                found[order.txid] = view
        return found

    def live_stops(self) -> list[ExchangeOrder]:
        return [o for o in self.orders("open").values() if o.ordertype == "stop-loss"]

    async def cancel_the_stop(self) -> None:
        """The one live stop cancelled behind tg's back."""
        [stop] = self.live_stops()
        async with self.client() as client:
            await client.cancel_order(stop.txid)

    def btc(self) -> Decimal:
        return self.sandbox.exchange.balance("default").get("XXBT", Decimal(0))

    async def reconcile(self, store: Store, **options: object) -> ReconcileReport:
        async with self.client() as client:
            return await Reconciler(client, store, self.sandbox.clock, **options).reconcile()  # type: ignore[arg-type]

    async def open_long(self, store: Store, volume: str = "0.1", crash_after: int | None = None) -> None:
        async with self.client(crash_after) as client:
            price = (await client.ticker(SYMBOL)).last
            proposal = TradeProposal(
                symbol=SYMBOL,
                side=Side.BUY,
                entry_price=price,
                stop_loss=(price * Decimal("0.98")).quantize(Decimal("0.1")),
                take_profit=(price * Decimal("1.04")).quantize(Decimal("0.1")),
                confidence=0.9,
                volume=Decimal(volume),
            )
            store.add_agent_output(
                "R-long",
                agent="risk",
                symbol=SYMBOL,
                created_at=0.0,
                payload={
                    "proposal": {
                        "stop_loss": str(proposal.stop_loss),
                        "take_profit": str(proposal.take_profit),
                        "entry_price": str(price),
                    }
                },
            )
            manager = OrderExecutionManager(
                client, store, clock=self.sandbox.clock, settings=ExecutionSettings(), run_id="R-long"
            )
            await manager.execute_trade(proposal)

    async def check(self, store: Store) -> dict[str, list[str]]:
        control = SandboxControl(self.sandbox.base_url, transport=self.sandbox.transport)
        async with self.client() as client:
            pairs = {p.altname: p for p in (await client.asset_pairs()).values()}
        truth = await control.truth()
        await control.aclose()
        report = check_invariants(store, truth, pairs)
        return {k: v for k, v in report.violations.items() if v}


def _wire(order: object) -> dict[str, object]:
    from simulator.wire import order as wire_order

    return wire_order(order, with_trades=False)  # type: ignore[arg-type]


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    yield Desk(EmbeddedExchange.open(tmp_path / "sandbox.db"), tmp_path)


async def test_reproduction_1_a_manual_buy_and_sell_on_the_account_are_left_alone(desk: Desk) -> None:
    async with desk.client() as other:  # a person with ccxt, say: no tg client order ids
        await other.add_order(SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.05"))
        await other.add_order(SYMBOL, Side.SELL, OrderType.MARKET, Decimal("0.02"))
        resting = await other.add_order(SYMBOL, Side.BUY, OrderType.LIMIT, Decimal("0.01"), Decimal("30000.0"))
    held, orders_before = desk.btc(), desk.orders()

    with desk.store("fresh") as store:
        report = await desk.reconcile(store)
        assert store.positions() == [] and store.orders() == []

    assert desk.btc() == held == Decimal("0.03")
    assert desk.orders() == orders_before  # nothing sold, bought back, cancelled or protected
    assert any(resting.txid in line and "left alone" in line for line in report.foreign)
    assert report.changes == [] and report.errors == []


async def test_two_databases_on_one_account_never_act_on_each_others_orders(desk: Desk) -> None:
    with desk.store("a") as a, desk.store("b") as b:
        await desk.open_long(a)
        before = desk.orders()
        report_b = await desk.reconcile(b)
        assert b.positions() == [] and b.orders() == []
        assert desk.orders() == before
        assert report_b.changes == [] and report_b.errors == []
        assert any("left alone" in line for line in report_b.foreign)  # a's stop and target, seen from b
        assert (await desk.reconcile(a)).changes == []
        assert await desk.check(a) == {}


async def test_a_lost_database_is_taken_over_with_adopt(desk: Desk) -> None:
    with desk.store("lost") as lost:
        await desk.open_long(lost)
        install_id = lost.install_id
    with desk.store("new") as new:
        report = await desk.reconcile(new, adopt=[install_id])
        [position] = new.positions(status=PositionStatus.OPEN)
        assert position.size == Decimal("0.1")
        assert any("adopted namespace" in c for c in report.changes)
        assert len(desk.live_stops()) == 1  # the lost database's stop, linked, not doubled
        assert (await desk.reconcile(new)).changes == []
        assert await desk.check(new) == {}


async def test_a_read_only_pass_sends_nothing_and_writes_nothing(desk: Desk) -> None:
    with desk.store() as store:
        await desk.open_long(store)
        await desk.cancel_the_stop()
        stored_before = store.orders()
        report = await desk.reconcile(store, repair=False)
        assert report.dry_run
        assert any("placed stop_loss" in c for c in report.changes)
        assert desk.live_stops() == []
        assert store.orders() == stored_before


async def test_a_position_that_closed_keeps_no_live_protection(desk: Desk) -> None:
    with desk.store() as store:
        await desk.open_long(store)
        [position] = store.positions()
        position.status = PositionStatus.CLOSED  # as if closed by hand, its orders left behind
        store.upsert_position(position)
        report = await desk.reconcile(store)
        assert desk.live_stops() == []
        assert [o for o in desk.orders("open").values() if o.ordertype == "take-profit"] == []
        assert any("cancelled orphan stop_loss" in c for c in report.changes)


async def test_an_unlinked_stop_of_tgs_is_cancelled_as_an_orphan(desk: Desk) -> None:
    with desk.store() as store:
        await desk.open_long(store)
        stop = next(o for o in store.orders() if o.role is OrderRole.STOP_LOSS)
        async with desk.client() as client:
            ack = await client.add_order(
                SYMBOL,
                Side.SELL,
                OrderType.STOP_LOSS,
                stop.volume,
                stop.price,
                cl_ord_id=store.namespace().new_client_order_id(OrderRole.STOP_LOSS),
            )
        report = await desk.reconcile(store)
        assert [s.txid for s in desk.live_stops()] == [stop.external_id]
        assert any(f"cancelled orphan stop_loss {ack.txid}" in c for c in report.changes)


async def test_surplus_stops_are_cancelled_down_to_one(desk: Desk) -> None:
    with desk.store() as store:
        await desk.open_long(store)
        [position] = store.positions()
        stop = next(o for o in store.orders() if o.role is OrderRole.STOP_LOSS)
        extra = store.namespace().new_client_order_id(OrderRole.STOP_LOSS)
        async with desk.client() as client:
            ack = await client.add_order(
                SYMBOL, Side.SELL, OrderType.STOP_LOSS, stop.volume, stop.price, cl_ord_id=extra
            )
        store.upsert_order(replace(stop, client_order_id=extra, external_id=ack.txid, position_id=position.id))
        report = await desk.reconcile(store)
        assert len(desk.live_stops()) == 1
        assert any("surplus" in c for c in report.changes), report.changes
        assert ack.txid in " ".join(report.changes)
        assert await desk.check(store) == {}


async def test_reproduction_5_killed_before_the_stop_showed_no_second_stop(desk: Desk) -> None:
    desk.fault("stale-visibility:match=stop_loss,seconds=30")
    with desk.store() as store:
        with pytest.raises(SimulatedCrash):
            # AddOrder entry, QueryOrders entry, AddOrder stop: dead before reading the stop's answer
            await desk.open_long(store, crash_after=2)
        assert len(desk.live_stops()) == 1
        report = await desk.reconcile(store)
        assert len(desk.live_stops()) == 1, report.changes
        assert any("live on the exchange, not shown yet" in p for p in report.pending)
        desk.sandbox.advance(120)
        await desk.reconcile(store)
        assert len(desk.live_stops()) == 1
        assert await desk.check(store) == {}


async def test_reproduction_6_killed_after_an_unseen_entry_the_holding_is_protected(desk: Desk) -> None:
    desk.fault("stale-visibility:match=entry,seconds=30")
    with desk.store() as store:
        await desk.reconcile(store)  # as every tg command does first
        with pytest.raises(SimulatedCrash):
            await desk.open_long(store, crash_after=0)  # dead right after the entry's AddOrder
        assert desk.btc() == Decimal("0.1") and desk.live_stops() == []
        report = await desk.reconcile(store)
        assert report.changes, "never 'nothing to change' with an unprotected holding"
        [stop] = desk.live_stops()
        assert stop.volume == Decimal("0.1")
        desk.sandbox.advance(120)
        await desk.reconcile(store)
        assert await desk.check(store) == {}


async def test_reproduction_4_stale_then_ghost_on_the_stop_leaves_no_orphan(desk: Desk) -> None:
    desk.fault("stale-visibility")
    desk.fault("ghost:match=stop_loss,variant=internal-error")
    with desk.store() as store:
        await desk.open_long(store)
        live = desk.live_stops()
        held = desk.btc()
        # either the stop was found live and kept, or the position was flattened and the stop cancelled
        assert sum((s.volume for s in live), Decimal(0)) == held
        desk.sandbox.advance(120)
        await desk.reconcile(store)
        assert await desk.check(store) == {}


async def test_reproduction_7_a_lost_answer_to_reconciles_stop_is_resolved_by_client_order_id(desk: Desk) -> None:
    with desk.store() as store:
        await desk.open_long(store)
        await desk.cancel_the_stop()
        desk.fault("ghost:match=stop_loss,variant=html-5xx")
        report = await desk.reconcile(store)
        [replaced] = desk.live_stops()
        recorded = store.get_order_by_external_id(replaced.txid)
        assert recorded is not None and recorded.status is OrderStatus.OPEN, report.changes
        assert await desk.check(store) == {}


async def test_a_holding_short_of_what_tg_bought_is_an_error(desk: Desk) -> None:
    with desk.store() as store:
        await desk.open_long(store)
        desk.sandbox.exchange.state.accounts["default"].balances["XXBT"] = Decimal("0.04")  # gone, by no order
        report = await desk.reconcile(store)
        assert any("short" in e for e in report.errors)

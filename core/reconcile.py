"""Reconciliation: the exchange is the truth about orders, the database the record.

One pass flushes the pending-writes spool, brings every stored order to the
exchange's status, adopts orders the exchange holds under tg's client order ids
that the database lacks, marks vanished ones, closes positions whose stop-loss or
take-profit filled (cancelling the other: one-cancels-the-other) and repairs open
positions that lost their protection (re-place the stop, or flatten when the
market is already through it). Every change is reported in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from core.clock import Clock
from core.errors import ExchangeError, InvalidOrderError, PermanentExchangeError, UnknownOrderError
from core.exchange import ExchangeOrder, KrakenClient
from core.execution import new_client_order_id
from core.models import (
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    PositionStatus,
    Side,
)
from core.positions import PositionTracker
from core.spool import PendingWrites
from core.storage import Store

_ROLE_BY_TYPE = {
    "stop-loss": OrderRole.STOP_LOSS,
    "stop-loss-limit": OrderRole.STOP_LOSS,
    "take-profit": OrderRole.TAKE_PROFIT,
    "take-profit-limit": OrderRole.TAKE_PROFIT,
}


INTENT_GRACE_S = 60.0
"""An order tg meant to send but cannot find is taken as never sent only after this
long: an exchange slow to show a new order must not get it written off."""


@dataclass
class ReconcileReport:
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


class Reconciler:
    def __init__(
        self,
        client: KrakenClient,
        store: Store,
        clock: Clock,
        *,
        spool: PendingWrites | None = None,
        run_id: str | None = None,
        keep_entry_remainder: bool = False,
    ) -> None:
        self._client = client
        self._store = store
        self._clock = clock
        self._spool = spool
        self._run_id = run_id
        self._keep_entry_remainder = keep_entry_remainder
        self._tracker = PositionTracker(store, clock)

    async def reconcile(self) -> ReconcileReport:
        report = ReconcileReport()
        if self._spool is not None:
            written = self._spool.flush(self._store)
            if written:
                report.changes.append(f"wrote {written} spooled record(s) the database had refused")
        exchange = await self._exchange_orders()
        self._sync_stored_orders(exchange, report)
        await self._adopt_unknown(exchange, report)
        await self._open_positions_for_orphan_entries(report)
        for position in self._store.positions(status=PositionStatus.OPEN):
            try:
                await self._repair(position, report)
            except ExchangeError as exc:
                report.errors.append(f"position {position.id}: {exc}")
        return report

    async def _exchange_orders(self) -> dict[str, ExchangeOrder]:
        orders = {**await self._client.open_orders(), **await self._client.closed_orders()}
        stored = [o.external_id for o in self._store.orders() if o.external_id and o.external_id not in orders]
        if stored:
            orders.update(await self._client.query_orders(stored))
        return orders

    def _sync_stored_orders(self, exchange: dict[str, ExchangeOrder], report: ReconcileReport) -> None:
        by_client_id = {o.cl_ord_id: o for o in exchange.values() if o.cl_ord_id}
        now = self._clock.time()
        stored = self._store.orders()
        stored_by_txid = {o.external_id: o for o in stored if o.external_id}
        stored_by_client_id = {o.client_order_id: o for o in stored}
        for order in stored:
            found = exchange.get(order.external_id) if order.external_id else by_client_id.get(order.client_order_id)
            if found is None:
                unsent = order.external_id is None and order.status is OrderStatus.INTENT
                if unsent and now - order.updated_at > INTENT_GRACE_S:
                    order.status = OrderStatus.REJECTED
                    report.changes.append(f"{order.role.value} {order.client_order_id}: never reached the exchange")
                elif order.external_id is not None and order.status.is_live:
                    order.status = OrderStatus.UNKNOWN
                    report.changes.append(f"{order.role.value} {order.external_id}: vanished from the exchange")
                else:
                    continue
                order.updated_at = now
                self._store.upsert_order(order)
                continue
            before = (order.external_id, order.status, order.filled_volume)
            if order.external_id is None:
                order.external_id = found.txid
                report.changes.append(f"{order.role.value} {order.client_order_id}: adopted as {found.txid}")
            apply_exchange_state(order, found, now)
            parent = _parent(found, exchange, stored_by_txid, stored_by_client_id) if order.run_id is None else None
            if parent is not None:  # a conditional close adopted before its entry was known
                order.run_id, order.position_id = parent.run_id, parent.position_id
                self._store.upsert_order(order)
            if (order.external_id, order.status, order.filled_volume) != before:
                if before[0] is not None:
                    report.changes.append(
                        f"{order.role.value} {order.external_id}: {before[1].value} -> {order.status.value}"
                        + (f", filled {order.filled_volume}" if order.filled_volume != before[2] else "")
                    )
                self._store.upsert_order(order)

    async def _adopt_unknown(self, exchange: dict[str, ExchangeOrder], report: ReconcileReport) -> None:
        stored_by_txid = {o.external_id: o for o in self._store.orders() if o.external_id}
        stored = set(stored_by_txid)
        stored_by_client_id = {o.client_order_id: o for o in self._store.orders()}
        stored_client_ids = set(stored_by_client_id)
        pairs = None
        for txid, found in exchange.items():
            if txid in stored or (found.cl_ord_id and found.cl_ord_id in stored_client_ids):
                continue
            if pairs is None:
                pairs = {p.altname: p for p in (await self._client.asset_pairs()).values()}
            pair = pairs.get(found.pair)
            parent = _parent(found, exchange, stored_by_txid, stored_by_client_id)
            order = Order(
                client_order_id=found.cl_ord_id or f"adopted-{txid}",
                symbol=pair.symbol if pair else found.pair,
                side=Side(found.side),
                order_type=OrderType(found.ordertype),
                volume=found.volume,
                role=_ROLE_BY_TYPE.get(found.ordertype, OrderRole.ENTRY),
                price=found.price,
                external_id=txid,
                run_id=parent.run_id if parent else self._run_id,
                position_id=parent.position_id if parent else None,
                created_at=found.opentm,
            )
            apply_exchange_state(order, found, self._clock.time())
            self._store.upsert_order(order)
            report.changes.append(f"adopted {order.role.value} {txid} the database lacked ({found.description})")

    async def _open_positions_for_orphan_entries(self, report: ReconcileReport) -> None:
        """An entry that filled but never got its position (the process died in between):
        the position is opened with whatever protection the same run already placed."""
        for entry in self._store.orders():
            if entry.role is not OrderRole.ENTRY or entry.position_id or entry.filled_volume <= 0:
                continue
            protection = [
                o for o in self._store.orders(run_id=entry.run_id)
                if o.role is not OrderRole.ENTRY and o.position_id is None
                and o.symbol == entry.symbol
            ] if entry.run_id is not None else []
            position = self._tracker.open_position(entry, protection)
            levels = self._protection_levels(entry)
            if levels is not None:
                position.stop_loss = position.stop_loss or levels[0]
                position.take_profit = position.take_profit or levels[1]
            self._store.record_protected_position(position, [entry, *protection])
            report.changes.append(f"opened position {position.id} for entry {entry.external_id} that had none")

    def _protection_levels(self, entry: Order) -> tuple[Decimal, Decimal] | None:
        """The stop and target the run's risk engine approved for this entry."""
        if entry.run_id is None:
            return None
        for output in self._store.agent_outputs(entry.run_id):
            if output["agent"] == "risk":
                proposal = output["payload"].get("proposal") or {}
                if proposal.get("stop_loss") and proposal.get("take_profit"):
                    return Decimal(proposal["stop_loss"]), Decimal(proposal["take_profit"])
        return None

    async def _repair(self, position: Position, report: ReconcileReport) -> None:
        """Hold the position to what its orders actually filled: bought by the entry,
        less what stops, targets and closes sold, and protect exactly the rest."""
        orders = self._store.orders(position_id=position.id)
        entry = _latest(orders, OrderRole.ENTRY)
        stop = _latest(orders, OrderRole.STOP_LOSS)
        target = _latest(orders, OrderRole.TAKE_PROFIT)
        if entry is not None and entry.status.is_live and entry.filled_volume > 0 and not self._keep_entry_remainder:
            await self._cancel(entry)  # an unfilled rest filling later would grow the position unprotected
        bought = entry.filled_volume if entry is not None else position.size
        exits = [o for o in orders if o.role is not OrderRole.ENTRY and o.filled_volume > 0]
        remaining = bought - sum((o.filled_volume for o in exits), Decimal("0"))
        if exits and remaining <= 0:
            for live in orders:
                if live.status.is_live and live.role is not OrderRole.ENTRY and live.external_id:
                    await self._cancel(live)
            position.size = bought
            await self._close(position, exits, orders, report)
            return
        if remaining != position.size:
            report.changes.append(
                f"position {position.id}: open size {position.size} -> {remaining} "
                f"(entry filled {bought}, exits filled {bought - remaining})"
            )
            position.size = remaining
            self._store.upsert_position(position)
        closing = sum((o.volume - o.filled_volume for o in orders if o.role is OrderRole.CLOSE and o.status.is_live), Decimal("0"))
        if closing >= position.size:
            return  # a market close is working off the rest
        covered = stop is not None and stop.status.is_live and stop.volume - stop.filled_volume >= position.size
        if covered:
            if target is not None and target.status.is_live and target.volume < position.size:
                await self._replace(position, target, OrderRole.TAKE_PROFIT, report)
            return
        if position.stop_loss is None:
            await self._flatten(position, orders, report, "it has no stop-loss level to protect it with")
            return
        price = (await self._client.ticker(position.symbol)).last
        through = price <= position.stop_loss if position.side is PositionSide.LONG else price >= position.stop_loss
        if through:
            await self._flatten(position, orders, report, f"the market {price} is already through its stop {position.stop_loss}")
            return
        try:
            await self._replace(position, stop, OrderRole.STOP_LOSS, report)
        except PermanentExchangeError as exc:
            await self._flatten(position, orders, report, f"a new stop-loss was refused ({exc})")
            return
        if target is not None and target.status.is_live and target.volume < position.size:
            await self._replace(position, target, OrderRole.TAKE_PROFIT, report)

    async def _replace(self, position: Position, old: Order | None, role: OrderRole, report: ReconcileReport) -> None:
        """Place protection covering the position's full size, then retire the old order."""
        price = position.stop_loss if role is OrderRole.STOP_LOSS else position.take_profit
        assert price is not None
        order = self._order_for(position, role, OrderType.STOP_LOSS if role is OrderRole.STOP_LOSS else OrderType.TAKE_PROFIT, price)
        await self._send(order)
        if old is not None and old.status.is_live and old.external_id:
            await self._cancel(old)
        report.changes.append(
            f"position {position.id}: placed {role.value} {order.external_id} for {order.volume} @ {price}"
            + (f", replacing {old.external_id} ({old.status.value})" if old is not None else "")
        )

    async def _close(self, position: Position, exits: list[Order], orders: list[Order], report: ReconcileReport) -> None:
        sold = sum((o.filled_volume for o in exits), Decimal("0"))
        exit_price = sum(((o.avg_fill_price or o.price or position.entry_price) * o.filled_volume for o in exits), Decimal("0")) / sold
        self._tracker.close(position, exit_price, orders)
        self._store.upsert_position(position)
        how = " and ".join(sorted({o.role.value for o in exits}))
        cancelled = [o for o in orders if o.status is OrderStatus.CANCELED and o.role in (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT)]
        report.changes.append(
            f"position {position.id} closed by its {how} at {exit_price:.2f}: P&L {position.realized_pnl:.2f} net of fees"
            + "".join(f"; cancelled {o.role.value} {o.external_id}" for o in cancelled if o.updated_at >= self._clock.time())
        )

    async def _flatten(self, position: Position, orders: list[Order], report: ReconcileReport, why: str) -> None:
        for live in orders:
            if live.status.is_live and live.role is not OrderRole.ENTRY and live.external_id:
                await self._cancel(live)
        close = self._order_for(position, OrderRole.CLOSE, OrderType.MARKET, None)
        await self._send(close)
        if close.filled_volume < position.size:
            report.changes.append(
                f"position {position.id} closing at market ({why}): {close.filled_volume} of {position.size} "
                "filled so far, the rest is working"
            )
            return
        report.changes.append(f"position {position.id} flattened at market ({why})")
        await self._close(position, [close], [*orders, close], report)

    def _order_for(self, position: Position, role: OrderRole, order_type: OrderType, price: Decimal | None) -> Order:
        now = self._clock.time()
        return Order(
            client_order_id=new_client_order_id(),
            symbol=position.symbol,
            side=Side.SELL if position.side is PositionSide.LONG else Side.BUY,
            order_type=order_type,
            volume=position.size,
            role=role,
            price=price,
            position_id=position.id,
            run_id=self._run_id or position.run_id,
            created_at=now,
            updated_at=now,
        )

    async def _send(self, order: Order) -> None:
        self._store.upsert_order(order)
        try:
            ack = await self._client.add_order(
                order.symbol, order.side, order.order_type, order.volume, order.price, cl_ord_id=order.client_order_id
            )
        except PermanentExchangeError:
            order.status = OrderStatus.REJECTED
            self._store.upsert_order(order)
            raise
        order.external_id = ack.txid
        order.status = OrderStatus.PENDING
        found = (await self._client.query_orders([ack.txid])).get(ack.txid)
        if found is not None:
            apply_exchange_state(order, found, self._clock.time())
        self._store.upsert_order(order)

    async def _cancel(self, order: Order) -> None:
        assert order.external_id is not None
        try:
            await self._client.cancel_order(order.external_id)
        except (UnknownOrderError, InvalidOrderError):
            pass  # it finished first; what it became is read back below
        found = (await self._client.query_orders([order.external_id])).get(order.external_id)
        if found is not None:
            apply_exchange_state(order, found, self._clock.time())
        else:
            order.status = OrderStatus.CANCELED
        self._store.upsert_order(order)


def apply_exchange_state(order: Order, found: ExchangeOrder, now: float) -> None:
    """Copy what the exchange says of an order onto tg's record of it."""
    order.status = OrderStatus(found.status)
    order.filled_volume = found.volume_executed
    order.avg_fill_price = found.avg_price if found.volume_executed > 0 else None
    order.fee = found.fee
    order.updated_at = now


def _parent(
    found: ExchangeOrder, exchange: dict[str, ExchangeOrder],
    by_txid: dict[str, Order], by_client_id: dict[str, Order],
) -> Order | None:
    """The stored order that opened `found` (a conditional close's entry), known by its
    txid or, when tg never learnt the txid, by its client order id."""
    if not found.refid:
        return None
    opener = exchange.get(found.refid)
    return by_txid.get(found.refid) or (by_client_id.get(opener.cl_ord_id) if opener and opener.cl_ord_id else None)


def _latest(orders: list[Order], role: OrderRole) -> Order | None:
    chosen = [o for o in orders if o.role is role]
    return max(chosen, key=lambda o: o.created_at) if chosen else None

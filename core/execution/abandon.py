"""What becomes of tg's records when the exchange they describe is wiped (`tg sim reset`).

A reset sandbox forgets every order and holding, so tg's open positions and live orders
would describe nothing: reconciling would report their holdings gone and their orders
vanished forever. Wiping an exchange under open positions is therefore refused unless
forced, and when forced the records are closed here, on the record: live orders become
canceled, open positions closed at their entry price with no P&L, each with an alert,
and the holding baselines start over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.domain.enums import AlertLevel, OrderStatus, PositionStatus
from core.domain.errors import UnsafeActionError
from core.domain.models import Order, Position
from core.storage.store import Store

_UNSETTLED = (OrderStatus.INTENT, OrderStatus.PENDING, OrderStatus.OPEN, OrderStatus.UNKNOWN)


@dataclass
class Abandoned:
    positions: list[Position] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.positions or self.orders)

    def describe(self) -> str:
        parts = [f"position {p.id} ({p.side.value} {p.size} {p.symbol})" for p in self.positions]
        parts += [f"{o.role.value} {o.external_id or o.client_order_id} ({o.status.value})" for o in self.orders]
        return ", ".join(parts)


def in_play(store: Store) -> Abandoned:
    """tg's open positions and its orders whose fate is not settled."""
    return Abandoned(store.positions(status=PositionStatus.OPEN), store.orders(status=_UNSETTLED))


def refuse_to_wipe(store: Store, what: str) -> None:
    """Raise unless the exchange can be wiped without stranding tg's records."""
    found = in_play(store)
    if found:
        raise UnsafeActionError(
            f"{what} would strand tg's records in {store.location}: {found.describe()}. "
            "Close them first (tg reconcile), or add --force: they are then closed on the record "
            "(orders canceled, positions closed at their entry price with no P&L) and an alert says why"
        )


def abandon(store: Store, *, reason: str, now: float) -> Abandoned:
    """Close tg's unsettled records on the record, in one transaction."""
    found = in_play(store)
    with store.transaction():
        for order in found.orders:
            order.status = OrderStatus.CANCELED
            order.updated_at = now
            store.upsert_order(order)
        for position in found.positions:
            position.status = PositionStatus.CLOSED
            position.closed_at = now
            position.exit_price = position.entry_price
            position.realized_pnl = 0 * position.size
            store.upsert_position(position)
            store.add_alert(
                position.run_id,
                level=AlertLevel.HIGH,
                message=f"position {position.id} abandoned: {reason}; its P&L is unknown",
                created_at=now,
            )
        store.clear_holding_baselines()
    return found

"""PositionTracker: turns a filled entry and its protection into a stored position."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

from core.domain.clock import Clock
from core.domain.enums import OrderRole, PositionSide, PositionStatus, Side
from core.domain.models import Order, Position
from core.storage.store import Store


class PositionTracker:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def open_position(self, entry: Order, protection: Sequence[Order]) -> Position:
        """Build the position an entry opened, linking its protective orders to it."""
        if entry.role is not OrderRole.ENTRY or entry.filled_volume <= 0:
            raise ValueError("a position opens only from an entry with filled volume")
        stop = next((o for o in protection if o.role is OrderRole.STOP_LOSS), None)
        target = next((o for o in protection if o.role is OrderRole.TAKE_PROFIT), None)
        position = Position(
            id=f"P-{uuid.uuid4().hex[:12]}",
            symbol=entry.symbol,
            side=PositionSide.LONG if entry.side is Side.BUY else PositionSide.SHORT,
            size=entry.filled_volume,
            entry_price=entry.avg_fill_price or entry.price or Decimal("0"),
            stop_loss=stop.price if stop else None,
            take_profit=target.price if target else None,
            run_id=entry.run_id,
            opened_at=self._clock.time(),
            fees=entry.fee,
        )
        for order in (entry, *protection):
            order.position_id = position.id
        return position

    async def add_position(self, entry: Order, protection: Sequence[Order] = ()) -> Position:
        """Store the position with its entry and protective orders in one transaction."""
        position = self.open_position(entry, protection)
        self._store.record_protected_position(position, [entry, *protection])
        return position

    def close(
        self, position: Position, exit_price: Decimal, orders: Sequence[Order], *, at: float | None = None
    ) -> Position:
        """Mark the position closed at `exit_price`, at the exchange's time of the closing
        fill when known (`at`), else now; P&L is net of every order's fees."""
        direction = Decimal(1) if position.side is PositionSide.LONG else Decimal(-1)
        position.fees = sum((o.fee for o in orders), Decimal("0"))
        position.status = PositionStatus.CLOSED
        position.exit_price = exit_price
        position.closed_at = at if at is not None else self._clock.time()
        position.realized_pnl = (exit_price - position.entry_price) * position.size * direction - position.fees
        return position

    def open_positions(self, symbol: str | None = None) -> list[Position]:
        return self._store.positions(status=PositionStatus.OPEN, symbol=symbol)

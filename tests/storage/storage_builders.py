"""Orders and positions as execution builds them, for the storage tests."""

from __future__ import annotations

from decimal import Decimal

from core.domain.enums import OrderRole, OrderType, PositionSide, Side
from core.domain.models import Order, Position


def make_order(client_order_id: str = "C-1", **changes: object) -> Order:
    fields: dict[str, object] = {
        "client_order_id": client_order_id,
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "volume": Decimal("0.1"),
        "role": OrderRole.ENTRY,
        "price": Decimal("45000"),
        "created_at": 1_700_000_000.0,
        "updated_at": 1_700_000_000.0,
    }
    fields.update(changes)
    return Order(**fields)  # type: ignore[arg-type]


def make_position(position_id: str = "P-1", **changes: object) -> Position:
    fields: dict[str, object] = {
        "id": position_id,
        "symbol": "BTC/USDT",
        "side": PositionSide.LONG,
        "size": Decimal("0.1"),
        "entry_price": Decimal("45000"),
        "stop_loss": Decimal("44000"),
        "take_profit": Decimal("48000"),
        "leverage": Decimal("2"),
        "opened_at": 1_700_000_100.0,
    }
    fields.update(changes)
    return Position(**fields)  # type: ignore[arg-type]


def protection_for(position: Position) -> list[Order]:
    """The stop-loss and take-profit orders of a long position, as execution builds them."""
    return [
        make_order(
            "C-SL",
            side=Side.SELL,
            order_type=OrderType.STOP_LOSS,
            role=OrderRole.STOP_LOSS,
            price=position.stop_loss,
            volume=position.size,
            position_id=position.id,
        ),
        make_order(
            "C-TP",
            side=Side.SELL,
            order_type=OrderType.TAKE_PROFIT,
            role=OrderRole.TAKE_PROFIT,
            price=position.take_profit,
            volume=position.size,
            position_id=position.id,
        ),
    ]

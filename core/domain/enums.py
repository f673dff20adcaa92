"""The domain's vocabularies: sides, order types, roles and statuses, regimes, verdicts.

Apart from the dataclasses of core.domain.models so that what only names a choice
(the command line's `--side` and `--status`) does not build every dataclass of the domain."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_LOSS = "stop-loss"
    TAKE_PROFIT = "take-profit"
    STOP_LOSS_LIMIT = "stop-loss-limit"
    TAKE_PROFIT_LIMIT = "take-profit-limit"


class OrderRole(StrEnum):
    ENTRY = "entry"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    CLOSE = "close"


class OrderStatus(StrEnum):
    """Kraken's order statuses, plus the states only tg knows."""

    INTENT = "intent"  # written before the request left; not yet acknowledged
    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # acknowledged, then not found on the exchange

    @property
    def is_live(self) -> bool:
        return self in (OrderStatus.PENDING, OrderStatus.OPEN)

    @property
    def is_final(self) -> bool:
        """The exchange is done with the order: its record can no longer change."""
        return self in (OrderStatus.CLOSED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)


class PositionSide(StrEnum):
    LONG = "long"
    SHORT = "short"


class PositionStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class AlertLevel(StrEnum):
    LOW = "LOW"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class Bias(StrEnum):
    LONG = "long"
    SHORT = "short"
    NEUTRAL = "neutral"


class Regime(StrEnum):
    TRENDING_BULL = "trending_bull"
    TRENDING_BEAR = "trending_bear"
    RANGING = "ranging"
    VOLATILE_BULL = "volatile_bull"
    VOLATILE_BEAR = "volatile_bear"
    CHOPPY = "choppy"
    BREAKOUT_POTENTIAL = "breakout_potential"


class VerdictStatus(StrEnum):
    APPROVED = "approved"
    REDUCED = "reduced"
    REJECTED = "rejected"


class ExecutionStatus(StrEnum):
    FILLED = "FILLED"  # entry filled and protected
    PARTIAL = "PARTIAL"  # entry partly filled, protection sized to the fill
    OPEN = "OPEN"  # entry resting on the book, nothing filled yet
    FAILED = "FAILED"  # nothing left open
    CLOSED = "CLOSED"  # entry filled but closed at once (protection impossible)
    UNKNOWN = "UNKNOWN"  # the exchange acknowledged an order it then did not show

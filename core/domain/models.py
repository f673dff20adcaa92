"""The domain's values: candles, orders, fills, positions, agent outputs, proposals,
risk verdicts and execution results. Money and volumes are Decimal everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from core.domain.enums import (
    Action,
    AlertLevel,
    Bias,
    ExecutionStatus,
    OrderRole,
    OrderStatus,
    OrderType,
    PositionSide,
    PositionStatus,
    Regime,
    Side,
    VerdictStatus,
)


@dataclass(frozen=True)
class Candle:
    time: int  # epoch seconds at the candle's open
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @cached_property
    def hlc(self) -> tuple[float, float, float]:
        """High, low and close as floats, for the indicators (not money): converted once,
        though a closed candle is measured in every window it falls in."""
        return float(self.high), float(self.low), float(self.close)


@dataclass(frozen=True)
class Ticker:
    bid: Decimal
    ask: Decimal
    last: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True)
class MarketSnapshot:
    """What the agents see of one symbol at one moment."""

    symbol: str
    timestamp: float
    ticker: Ticker
    candles: dict[int, list[Candle]]  # interval in minutes -> oldest first

    @property
    def price(self) -> Decimal:
        return self.ticker.last

    def closes(self, interval: int) -> list[Decimal]:
        return [c.close for c in self.candles[interval]]


@dataclass
class Order:
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    volume: Decimal
    role: OrderRole
    price: Decimal | None = None  # limit price, or trigger price of stops and targets
    external_id: str | None = None  # the exchange's txid
    status: OrderStatus = OrderStatus.INTENT
    filled_volume: Decimal = Decimal("0")
    avg_fill_price: Decimal | None = None
    fee: Decimal = Decimal("0")
    position_id: str | None = None
    run_id: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    stop_level: Decimal | None = None
    """An entry's approved stop-loss and take-profit levels, stored with its intent so a
    crash between the fill and the stop leaves what is needed to protect it."""
    target_level: Decimal | None = None


@dataclass(frozen=True)
class Fill:
    trade_id: str
    order_external_id: str
    symbol: str
    side: Side
    price: Decimal
    volume: Decimal
    fee: Decimal
    time: float


@dataclass
class Position:
    id: str
    symbol: str
    side: PositionSide
    size: Decimal
    entry_price: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    status: PositionStatus = PositionStatus.OPEN
    leverage: Decimal = Decimal("1")
    run_id: str | None = None
    opened_at: float = 0.0
    closed_at: float | None = None
    exit_price: Decimal | None = None
    realized_pnl: Decimal | None = None
    fees: Decimal = Decimal("0")


@dataclass(frozen=True)
class TAOutput:
    symbol: str
    bias: Bias
    confidence: float
    trend_direction: str  # up | down | sideways
    trend_strength: float  # 0..1
    momentum: float  # -1..1
    indicators: dict[str, Decimal]
    signals: list[str] = field(default_factory=list)
    support: Decimal | None = None
    resistance: Decimal | None = None


@dataclass(frozen=True)
class RegimeOutput:
    symbol: str
    regime: Regime
    confidence: float
    volatility: float  # ATR as a fraction of price
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelDecision:
    """One model's vote."""

    model: str
    action: Action
    confidence: float
    entry: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    reasoning: str = ""
    valid: bool = True


@dataclass(frozen=True)
class TradingDecisionOutput:
    symbol: str
    action: Action
    consensus_strength: float  # share of valid votes for the winning action
    confidence: float
    model_decisions: list[ModelDecision]
    entry: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None

    @property
    def votes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.model_decisions:
            if d.valid:
                counts[d.action.value] = counts.get(d.action.value, 0) + 1
        return counts


@dataclass(frozen=True)
class TradeProposal:
    symbol: str
    side: Side
    entry_price: Decimal
    stop_loss: Decimal
    take_profit: Decimal
    confidence: float
    volume: Decimal | None = None  # set by the risk engine (or an operator)
    regime: Regime | None = None
    leverage: Decimal = Decimal("1")
    id: str = ""

    @property
    def reward_risk(self) -> Decimal:
        risk = abs(self.entry_price - self.stop_loss)
        if risk == 0:
            return Decimal("0")
        return abs(self.take_profit - self.entry_price) / risk


@dataclass(frozen=True)
class RiskState:
    """What the risk engine knows of the account: read from the exchange and the database."""

    equity: Decimal
    available_quote: Decimal
    entry_fee: Decimal = Decimal("0")  # the taker fee an entry pays, a fraction (0.0026)
    open_positions: int = 0
    available_base: Decimal | None = None  # None: not known (a sell is then not capped by it)
    open_exposure: Decimal = Decimal("0")
    daily_pnl: Decimal = Decimal("0")
    consecutive_losses: int = 0
    weekly_pnl: Decimal = Decimal("0")
    total_exposure: Decimal = Decimal("0")  # notional of every open position
    drawdown: Decimal = Decimal("0")  # realized P&L given back since its peak, as a share of the peak equity
    last_loss_at: float | None = None
    now: float | None = None


@dataclass(frozen=True)
class RiskVerdict:
    status: VerdictStatus
    reasons: list[str]
    proposal: TradeProposal  # the proposal as approved (volume set), or as submitted

    def is_approved(self) -> bool:
        return self.status is not VerdictStatus.REJECTED


@dataclass
class ExecutionResult:
    success: bool
    status: ExecutionStatus
    orders: list[Order] = field(default_factory=list)
    position: Position | None = None
    partial_fill: bool = False
    alert_level: AlertLevel | None = None
    error_message: str | None = None
    retry_count: int = 0
    warnings: list[str] = field(default_factory=list)
    latency_ms: float = 0.0
    unrecorded: list[dict[str, Any]] = field(default_factory=list)
    """Records neither the database nor the spool took (storage row form): printed, never lost."""

    def warnings_contains(self, text: str) -> bool:
        needle = text.lower()
        return any(needle in w.lower() for w in self.warnings)

    def order_for(self, role: OrderRole) -> Order | None:
        for order in reversed(self.orders):
            if order.role is role:
                return order
        return None

    @property
    def order(self) -> Order | None:
        """The entry order."""
        return self.order_for(OrderRole.ENTRY)

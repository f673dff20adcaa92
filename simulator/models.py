"""The exchange's state as plain data: accounts, API keys, orders and trades.

Everything the sandbox must remember between processes lives in `ExchangeState`, so
that persisting it is one dump and one load; the behaviour is in `exchange.py`.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_LOSS = "stop-loss"
    TAKE_PROFIT = "take-profit"
    STOP_LOSS_LIMIT = "stop-loss-limit"
    TAKE_PROFIT_LIMIT = "take-profit-limit"

    @property
    def is_trigger(self) -> bool:
        """Waits for the market to reach `price` before it trades."""
        return self not in (OrderType.MARKET, OrderType.LIMIT)

    @property
    def is_stop(self) -> bool:
        """Triggers on an adverse move (a take-profit triggers on a favourable one)."""
        return self in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)

    @property
    def limit_after_trigger(self) -> bool:
        return self in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


class OrderStatus(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    EXPIRED = "expired"


class OrderFlag(StrEnum):
    POST = "post"
    FCIQ = "fciq"
    NOMPP = "nompp"


@dataclass(frozen=True)
class OrderSpec:
    """What a client asked for in AddOrder, validated."""

    pair: str
    side: Side
    ordertype: OrderType
    volume: Decimal
    price: Decimal | None = None
    """Limit price of a limit order, trigger price of the others."""
    price2: Decimal | None = None
    """Limit price of a stop-loss-limit or take-profit-limit once triggered."""
    userref: int | None = None
    cl_ord_id: str | None = None
    oflags: tuple[OrderFlag, ...] = ()
    expiretm: float | None = None


@dataclass
class Order:
    txid: str
    account: str
    spec: OrderSpec
    opentm: float
    status: OrderStatus = OrderStatus.OPEN
    triggered: bool = False
    closetm: float | None = None
    vol_exec: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    reason: str | None = None
    trades: list[str] = field(default_factory=list)

    @property
    def is_live(self) -> bool:
        return self.status in (OrderStatus.PENDING, OrderStatus.OPEN)

    @property
    def resting_limit(self) -> Decimal | None:
        """The price the order rests in the book at, if it rests there now."""
        if not self.is_live:
            return None
        if self.spec.ordertype is OrderType.LIMIT:
            return self.spec.price
        if self.spec.ordertype.limit_after_trigger and self.triggered:
            return self.spec.price2
        return None

    @property
    def average_price(self) -> Decimal:
        return self.cost / self.vol_exec if self.vol_exec else Decimal(0)


@dataclass
class Trade:
    id: str
    ordertxid: str
    account: str
    pair: str
    time: float
    side: Side
    ordertype: OrderType
    price: Decimal
    vol: Decimal
    cost: Decimal
    fee: Decimal
    maker: bool
    usd_value: Decimal
    """The trade's cost in US dollars, for the 30-day volume that sets fee tiers."""


@dataclass
class ApiKey:
    key: str
    secret: str = field(repr=False)
    """Base64, as Kraken hands it out."""
    account: str
    last_nonce: int = 0


@dataclass
class Account:
    balances: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class ExchangeState:
    seed: int
    origin: float
    """When the exchange opened: its price paths are anchored here."""
    processed_until: float
    """Orders have been matched against the market up to this time."""
    initial_balances: dict[str, Decimal]
    next_serial: int = 0
    accounts: dict[str, Account] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    """By txid, in the order they were placed."""
    trades: dict[str, Trade] = field(default_factory=dict)

    def new_id(self, prefix: str) -> str:
        """A Kraken-shaped id (OXXXXX-XXXXX-XXXXXX): derived from the seed and a serial
        number, so the same seed and the same requests give the same ids."""
        self.next_serial += 1
        return kraken_id(prefix, self.seed, self.next_serial)


_ID_ALPHABET = string.ascii_uppercase + string.digits


def kraken_id(prefix: str, seed: int, serial: int) -> str:
    digest = hashlib.sha256(f"{seed}:{prefix}:{serial}".encode()).digest()
    body = prefix + "".join(_ID_ALPHABET[byte % len(_ID_ALPHABET)] for byte in digest[:16])
    return f"{body[:6]}-{body[6:11]}-{body[11:]}"

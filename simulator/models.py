"""The exchange's state as plain data: accounts, API keys, orders and trades.

Everything the sandbox must remember between processes lives in `ExchangeState`, so
that persisting it is one dump and one load; the behaviour is in `exchange.py`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal


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
    TRAILING_STOP = "trailing-stop"

    @property
    def is_trigger(self) -> bool:
        """Waits for the market to reach `price` before it trades."""
        return self not in (OrderType.MARKET, OrderType.LIMIT)

    @property
    def is_stop(self) -> bool:
        """Triggers on an adverse move (a take-profit triggers on a favourable one)."""
        return self in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT, OrderType.TRAILING_STOP)

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
    FCIB = "fcib"
    """Fee in the base currency (the sandbox's default is the quote currency)."""
    FCIQ = "fciq"
    NOMPP = "nompp"
    VIQC = "viqc"
    """Volume in quote currency: a market order's volume is what it spends or receives."""


class SystemStatus(StrEnum):
    """Kraken's trading modes (SystemStatus): what may be sent, and whether orders match."""

    ONLINE = "online"
    MAINTENANCE = "maintenance"
    CANCEL_ONLY = "cancel_only"
    POST_ONLY = "post_only"


class LedgerType(StrEnum):
    TRADE = "trade"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    ADJUSTMENT = "adjustment"


class AmendKind(StrEnum):
    ORIGINAL = "original"
    """The order as it was entered."""
    USER = "user"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    """Whatever does not fill on arrival is canceled."""
    GTD = "GTD"


@dataclass(frozen=True)
class TrailingOffset:
    """How far a trailing stop trails the best price since it was placed."""

    amount: Decimal
    percent: bool = False

    def level(self, extreme: Decimal, side: Side) -> Decimal:
        """The trigger price when the market's best price so far is `extreme`."""
        distance = extreme * self.amount / 100 if self.percent else self.amount
        return extreme - distance if side is Side.SELL else extreme + distance


@dataclass(frozen=True)
class CloseSpec:
    """A conditional close: the order opened against each fill of its parent."""

    ordertype: OrderType
    price: Decimal | None = None
    price2: Decimal | None = None


USERREFS = range(-(2**31), 2**31)
"""Kraken's userrefs: 32-bit signed integers."""


def as_userref(name: str) -> int | None:
    """The userref a cancel's or an amend's txid names, if it names one: a 32-bit
    integer in ASCII digits. Anything else (a 5,000-digit number, Arabic-Indic digits)
    is a txid or a cl_ord_id: int() refused the one and read the other as a userref."""
    if re.fullmatch(r"-?[0-9]{1,10}", name) is None:
        return None
    value = int(name)
    return value if value in USERREFS else None


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
    timeinforce: TimeInForce = TimeInForce.GTC
    starttm: float | None = None
    """The order waits, "pending", until then."""
    trailing: TrailingOffset | None = None
    """The offset of a trailing stop (whose `price` is then unused)."""
    close: CloseSpec | None = None


@dataclass(frozen=True)
class Amend:
    """One row of an order's amend trail (OrderAmends): the order's terms after it."""

    amend_id: str
    kind: AmendKind
    time: float
    order_qty: Decimal
    remaining_qty: Decimal
    limit_price: Decimal | None
    trigger_price: Decimal | None
    post_only: bool = False


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
    refid: str | None = None
    """The order whose fill opened this one (a conditional close)."""
    amended: bool = False
    amends: list[Amend] = field(default_factory=list)
    """The amend trail once amended, its original terms first; empty while never amended."""
    extreme: Decimal | None = None
    """A trailing stop's best market price since it was placed."""
    fill_attempts: int = 0
    """Chances to fill so far: seeds the fill model's next draw."""
    serial: int = 0
    """The order's place in the requests since the last reset: seeds its fills, so the
    same seed and requests give the same fills whatever its txid."""

    @property
    def is_live(self) -> bool:
        return self.status in (OrderStatus.PENDING, OrderStatus.OPEN)

    @property
    def remaining(self) -> Decimal:
        return self.spec.volume - self.vol_exec

    @property
    def stop_price(self) -> Decimal | None:
        """The trigger price now: fixed, or following the market for a trailing stop."""
        spec = self.spec
        if spec.trailing is not None:
            return spec.trailing.level(self.extreme, spec.side) if self.extreme is not None else None
        return spec.price if spec.ordertype.is_trigger else None

    @property
    def working_at_market(self) -> bool:
        """Part of a market order (or a fired stop) is still to fill at the market."""
        if not self.is_live or self.status is OrderStatus.PENDING or self.vol_exec >= self.spec.volume:
            return False
        ordertype = self.spec.ordertype
        if ordertype is OrderType.MARKET:
            return True
        return ordertype.is_trigger and not ordertype.limit_after_trigger and self.triggered

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
    serial: int = 0
    """Kraken's integer trade_id."""
    ledgers: list[str] = field(default_factory=list)
    """The ledger entries it posted: one per asset it moved."""


@dataclass(frozen=True)
class LedgerEntry:
    """One movement of one asset: `amount` moved and `fee` charged on top, leaving `balance`."""

    id: str
    refid: str
    """What caused it: a trade id, or a funding reference."""
    account: str
    time: float
    type: LedgerType
    asset: str
    amount: Decimal
    fee: Decimal
    balance: Decimal


@dataclass
class ApiKey:
    key: str
    secret: str = field(repr=False)
    """Base64, as Kraken hands it out."""
    account: str
    last_nonce: int = 0
    nonce_window: int = 0
    """Kraken's optional nonce window: a nonce up to this much below the highest one
    seen is still accepted, once, so requests sent concurrently may arrive out of order."""
    recent_nonces: list[int] = field(default_factory=list, repr=False)


@dataclass
class WsToken:
    """A WebSocket token from GetWebSocketsToken: usable until `expires` unless used
    by then (a used token stays valid, as Kraken's do), never after `revoked`."""

    account: str
    issued: float
    expires: float
    used: bool = False
    revoked: float | None = None
    """When a fault made it stop working, used or not."""


@dataclass
class Account:
    balances: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class PriceGap:
    """At `at` the market jumps by `pct` percent (say -8 for a fall of 8%)."""

    at: float
    pct: Decimal


ShapeKind = Literal["jump", "trend", "flat", "flash-crash"]


@dataclass(frozen=True)
class PriceShape:
    """A move laid over a pair's market (simulator.price_shapes says how each acts):
    from `at`, a `jump` of `pct` percent at once, a `trend` of `pct` over `over`
    seconds, a `flat` market held for `over` seconds, or a `flash-crash` of `pct` over
    `over` seconds and back over `recover`. `pair` None: every pair."""

    kind: ShapeKind
    at: float
    pair: str | None = None
    pct: Decimal = Decimal(0)
    over: float = 0.0
    recover: float = 0.0


@dataclass(frozen=True)
class StatusChange:
    """The trading mode becomes `status` at `at` on the exchange's clock (a scenario's
    maintenance window is two of these)."""

    at: float
    status: SystemStatus


def new_id_space() -> str:
    return secrets.token_hex(8)


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
    """By txid, in the order they were placed: every order, or, on an exchange with a
    history (simulator.history), the live ones and those settled since it was saved."""
    trades: dict[str, Trade] = field(default_factory=dict)
    """By id, oldest first: every trade, or those since the history was saved."""
    gaps: list[PriceGap] = field(default_factory=list)
    shapes: list[PriceShape] = field(default_factory=list)
    """Moves laid over the market, in the order they were added."""
    dead_man: dict[str, float] = field(default_factory=dict)
    """By account: when CancelAllOrdersAfter cancels all its orders."""
    ws_tokens: dict[str, WsToken] = field(default_factory=dict)
    """WebSocket tokens by their text."""
    ledger: dict[str, LedgerEntry] = field(default_factory=dict)
    """Every balance movement of every account (or those since the history was
    saved), by ledger id, oldest first."""
    ledger_serial: int = 0
    """Ledger entries posted so far: their own count, so ledgers never shift order serials."""
    system_status: SystemStatus = SystemStatus.ONLINE
    status_changes: list[StatusChange] = field(default_factory=list)
    """Mode changes still to come, earliest first; each becomes `system_status` when the
    matching reaches its time."""
    requests: int = 0
    """Order-entry requests so far: seeds the latency model's draws."""
    id_space: str = field(default_factory=new_id_space)
    """Mixed into every id: drawn anew when the exchange is created or reset, so an id
    once handed out is never handed out again, as on Kraken. Empty in fixed-id mode."""
    history_id: str = field(default_factory=new_id_space)
    """Drawn anew when the exchange is created or reset: the settled orders, trades
    and ledger entries of a state file saved under another one are a past that is no
    longer this exchange's (simulator.store)."""

    def new_id(self, prefix: str) -> str:
        """A Kraken-shaped id (OXXXXX-XXXXX-XXXXXX), unique for the life of the state
        (and, in fixed-id mode, the same for the same seed and requests)."""
        self.next_serial += 1
        serial = f"{self.id_space}:{self.next_serial}" if self.id_space else self.next_serial
        return kraken_id(prefix, self.seed, serial)

    def renew_history(self) -> None:
        self.history_id = new_id_space()

    def renew_id_space(self) -> None:
        if self.id_space:
            self.id_space = new_id_space()


_ID_ALPHABET = string.ascii_uppercase + string.digits


def kraken_id(prefix: str, seed: int, serial: int | str) -> str:
    digest = hashlib.sha256(f"{seed}:{prefix}:{serial}".encode()).digest()
    body = prefix + "".join(_ID_ALPHABET[byte % len(_ID_ALPHABET)] for byte in digest[:16])
    return f"{body[:6]}-{body[6:11]}-{body[11:]}"

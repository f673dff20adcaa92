"""Kraken's WebSocket v2 messages as pydantic models: every request a client sends,
validated at the boundary, and the envelopes the sandbox answers with.

Requests are `{"method": ..., "params": {...}, "req_id": N}`; answers to a method are
`{"method", "req_id", "success", "result" | "error", "time_in", "time_out"}`; channel
data is `{"channel", "type": "snapshot" | "update", "data": [...]}`. Numbers travel as
JSON numbers (Kraken's v2 does so), read as Decimal on the way in.

Symbols are v2's: BTC/USD, not v1's XBT/USD; assets are BTC, USD, not XXBT, ZUSD.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import simplejson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from simulator.models import Side
from simulator.pairs import ASSETS, PAIRS, Pair
from simulator.params import MAX_AMOUNT

Json = dict[str, Any]
_V2_NAMES = {"XBT": "BTC", "XDG": "DOGE"}
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)


class ProtocolError(Exception):
    """A request Kraken would refuse; `message` is Kraken's v2 error text."""

    def __init__(self, message: str, *, symbol: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.symbol = symbol


def asset_name(asset_id: str) -> str:
    """An asset as v2 names it (BTC for XXBT, USD for ZUSD)."""
    altname = ASSETS[asset_id].altname
    return _V2_NAMES.get(altname, altname)


def symbol(pair: Pair) -> str:
    """A pair as v2 names it: its wsname with v2's asset names (BTC/USD)."""
    return "/".join(_V2_NAMES.get(part, part) for part in pair.wsname.split("/"))


_BY_SYMBOL = {symbol(pair): pair for pair in PAIRS.values()}


def pair_of(name: str) -> Pair:
    pair = _BY_SYMBOL.get(name)
    if pair is None:
        raise ProtocolError(f"Currency pair not supported {name}", symbol=name)
    return pair


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch(text: str, field: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ProtocolError(f"EGeneral:Invalid arguments:{field}") from None


def encode(message: BaseModel | Json) -> str:
    """JSON text, each Decimal written as a JSON number with all its places, as Kraken
    sends them ("full precision on the wire": qty 0.00100000, not 0.001), which is what
    its documented book checksum is computed from. (simplejson's own Decimal writing,
    on by default, is str(): 5.0E-7, 0E-8.)"""
    body = message.model_dump(exclude_none=True) if isinstance(message, BaseModel) else message
    return simplejson.dumps(body, default=_number, use_decimal=False, separators=(",", ":"))


def _number(value: object) -> simplejson.RawJSON:
    if isinstance(value, Decimal) and value.is_finite():
        return simplejson.RawJSON(format(value, "f"))
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON")


# --- requests -----------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


ReqId = Annotated[int, Field(strict=True, ge=-(2**63), lt=2**64)]
"""A JSON integer a 64-bit client holds: 1e5000 read as an integer too long to echo."""
UserRef = Annotated[int, Field(strict=True, ge=-(2**31), lt=2**31)]
"""Kraken's order_userref, a 32-bit JSON integer (a number with an exponent is none)."""


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    req_id: ReqId | None = None


Symbols = Annotated[list[str], Field(min_length=1)]
MAX_PLACES = 28
"""The most a number's exponent may be either way: Decimal's default precision."""


def _bounded(value: Decimal) -> Decimal:
    """A number the sandbox can write out: 1e999999999 reads as a small Decimal but is a
    billion digits once written as a price, which stalled the server for seconds."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or abs(exponent) > MAX_PLACES or abs(value) >= MAX_AMOUNT:
        raise ValueError("number out of range")
    return value


Number = Annotated[Decimal, AfterValidator(_bounded)]


class TickerSubscription(_Strict):
    channel: Literal["ticker"]
    symbol: Symbols
    event_trigger: Literal["bbo", "trades"] = "trades"
    snapshot: bool = True


class BookSubscription(_Strict):
    channel: Literal["book"]
    symbol: Symbols
    depth: Literal[10, 25, 100, 500, 1000] = 10
    snapshot: bool = True


class OhlcSubscription(_Strict):
    channel: Literal["ohlc"]
    symbol: Symbols
    interval: Literal[1, 5, 15, 30, 60, 240, 1440, 10080, 21600]
    snapshot: bool = True


class TradeSubscription(_Strict):
    channel: Literal["trade"]
    symbol: Symbols
    snapshot: bool = False


class InstrumentSubscription(_Strict):
    channel: Literal["instrument"]
    snapshot: bool = True


class StatusSubscription(_Strict):
    channel: Literal["status", "heartbeat"]


class ExecutionsSubscription(_Strict):
    channel: Literal["executions"]
    token: str
    snap_orders: bool = True
    snap_trades: bool = False
    order_status: bool = True
    ratecounter: bool = False
    snapshot: bool | None = None


class BalancesSubscription(_Strict):
    channel: Literal["balances"]
    token: str
    snapshot: bool = True


Subscription = Annotated[
    TickerSubscription
    | BookSubscription
    | OhlcSubscription
    | TradeSubscription
    | InstrumentSubscription
    | StatusSubscription
    | ExecutionsSubscription
    | BalancesSubscription,
    Field(discriminator="channel"),
]
SUBSCRIPTION: TypeAdapter[Subscription] = TypeAdapter(Subscription)
PUBLIC_CHANNELS = frozenset({"ticker", "book", "ohlc", "trade", "instrument", "status", "heartbeat"})


PriceType = Literal["static", "pct", "quote"]
OrderTypeName = Literal[
    "limit",
    "market",
    "iceberg",
    "stop-loss",
    "stop-loss-limit",
    "take-profit",
    "take-profit-limit",
    "trailing-stop",
    "trailing-stop-limit",
    "settle-position",
]


class Triggers(_Strict):
    reference: Literal["last", "index"] = "last"
    price: Number
    price_type: PriceType = "static"


class Conditional(_Strict):
    order_type: OrderTypeName
    limit_price: Number | None = None
    limit_price_type: PriceType = "static"
    trigger_price: Number | None = None
    trigger_price_type: PriceType = "static"


class OrderRequest(_Strict):
    """One order, as add_order and each order of batch_add describe it."""

    order_type: OrderTypeName
    side: Side
    order_qty: Number | None = None
    limit_price: Number | None = None
    limit_price_type: PriceType = "static"
    triggers: Triggers | None = None
    time_in_force: Literal["gtc", "gtd", "ioc"] = "gtc"
    margin: bool = False
    post_only: bool = False
    reduce_only: bool = False
    effective_time: str | None = None
    expire_time: str | None = None
    cl_ord_id: str | None = None
    order_userref: UserRef | None = None
    conditional: Conditional | None = None
    display_qty: Number | None = None
    fee_preference: Literal["base", "quote"] | None = None
    no_mpp: bool = False
    stp_type: Literal["cancel_newest", "cancel_oldest", "cancel_both"] = "cancel_newest"
    sender_sub_id: str | None = None


class AddOrder(OrderRequest):
    symbol: str
    token: str
    deadline: str | None = None
    validate_only: bool = Field(False, alias="validate")


class BatchAdd(_Strict):
    symbol: str
    token: str
    orders: Annotated[list[OrderRequest], Field(min_length=2, max_length=15)]
    deadline: str | None = None
    validate_only: bool = Field(False, alias="validate")


class AmendOrder(_Strict):
    token: str
    symbol: str | None = None
    """Kraken asks for it on some asset classes only; the sandbox's spot orders need no symbol."""
    order_id: str | None = None
    cl_ord_id: str | None = None
    order_qty: Number | None = None
    display_qty: Number | None = None
    limit_price: Number | None = None
    limit_price_type: PriceType = "static"
    trigger_price: Number | None = None
    trigger_price_type: PriceType = "static"
    post_only: bool = False
    deadline: str | None = None


class EditOrder(_Strict):
    token: str
    order_id: str
    symbol: str
    order_qty: Number | None = None
    display_qty: Number | None = None
    limit_price: Number | None = None
    triggers: Triggers | None = None
    post_only: bool | None = None
    reduce_only: bool = False
    order_userref: UserRef | None = None
    fee_preference: Literal["base", "quote"] | None = None
    no_mpp: bool = False
    deadline: str | None = None
    validate_only: bool = Field(False, alias="validate")


class CancelOrder(_Strict):
    token: str
    order_id: list[str] | None = None
    cl_ord_id: list[str] | None = None
    order_userref: list[UserRef] | None = None


class CancelAll(_Strict):
    token: str


class CancelAllAfter(_Strict):
    token: str
    timeout: Annotated[int, Field(strict=True, ge=0)]


class BatchCancel(_Strict):
    token: str
    orders: Annotated[list[str | UserRef], Field(min_length=1, max_length=50)] = Field(default_factory=list)
    cl_ord_id: list[str] | None = None


ORDER_METHODS: dict[str, type[_Strict]] = {
    "add_order": AddOrder,
    "amend_order": AmendOrder,
    "edit_order": EditOrder,
    "cancel_order": CancelOrder,
    "cancel_all": CancelAll,
    "cancel_all_orders_after": CancelAllAfter,
    "batch_add": BatchAdd,
    "batch_cancel": BatchCancel,
}


def read(model: type[_Strict] | TypeAdapter[Any], params: Json, what: str) -> Any:
    """`params` as `model`, or the error Kraken gives for the first thing wrong."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(params)
        return model.model_validate(params)
    except ValidationError as exc:
        raise ProtocolError(_error_text(exc, params, what)) from None


def _error_text(exc: ValidationError, params: Json, what: str) -> str:
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"] if not isinstance(part, int)]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"Channel {params.get('channel')} not found" if "channel" in params else "Missing field: 'channel'"
    if error["type"] == "extra_forbidden":
        return f"Unsupported field: '{location[-1]}' for the given msg type: {what}"
    if error["type"] == "missing":
        return f"Required field: '{location[-1]}' is missing"
    return f"EGeneral:Invalid arguments:{_written(error['loc'], params) or what}"


def _written(location: tuple[int | str, ...], params: Json) -> str | None:
    """The last name in `location` that the request wrote: pydantic's locations also name
    the union member it tried (str, int) or the subscription's channel, which no client did."""
    field: str | None = None
    value: Any = params
    for part in location:
        if isinstance(part, int):
            value = value[part] if isinstance(value, list) and -len(value) <= part < len(value) else None
        elif isinstance(value, dict) and part in value:
            field, value = part, value[part]
    return field


# --- answers ------------------------------------------------------------------


class Answer(BaseModel):
    """The answer to a method call: a result or an error, with the call's req_id."""

    method: str
    req_id: int | None = None
    success: bool
    result: Any = None
    error: str | None = None
    symbol: str | None = None
    time_in: str
    time_out: str


class ChannelMessage(BaseModel):
    channel: str
    type: Literal["snapshot", "update"] | None = None
    data: list[Json] | None = None
    sequence: int | None = None
    timestamp: str | None = None

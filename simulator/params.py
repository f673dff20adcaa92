"""Requests as the handlers see them, and their parameters validated into pydantic
models; anything refused becomes Kraken's "EGeneral:Invalid arguments:<field>".

Private calls forbid parameters they do not know (Kraken refuses them too); public calls
ignore them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal, TypeVar
from urllib.parse import parse_qsl

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from simulator.exceptions import InvalidArguments
from simulator.models import OrderFlag, OrderType, Side, TimeInForce

Params = Mapping[str, object]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    """Lower-cased names; values decoded as Latin-1, as HTTP carries them."""
    query: bytes
    body: bytes

    @property
    def is_json(self) -> bool:
        content_type = self.headers.get("content-type", "")
        return content_type.split(";")[0].strip().lower() == "application/json"


def body_params(request: Request) -> dict[str, object]:
    """The body's parameters: form-encoded, or a JSON object (numbers as Decimal)."""
    if request.is_json:
        if not request.body.strip():
            return {}
        try:
            document = json.loads(request.body, parse_float=Decimal)
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            raise InvalidArguments() from None
        if not isinstance(document, dict):
            raise InvalidArguments()
        return document
    return _form(request.body)


def query_params(request: Request) -> dict[str, object]:
    return _form(request.query)


def merge_params(first: Params, second: Params) -> dict[str, object]:
    """Parameters sent both in the query and in the body are refused, as ambiguous."""
    for name in first.keys() & second.keys():
        raise InvalidArguments(name)
    return {**first, **second}


def _form(raw: bytes) -> dict[str, object]:
    if not raw:  # most calls have an empty query or body
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArguments() from None
    params: dict[str, object] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name in params:
            raise InvalidArguments(name)
        params[name] = value
    return params


Model = TypeVar("Model", bound=BaseModel)


def parse(model: type[Model], params: Params) -> Model:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        location = exc.errors()[0]["loc"]
        # a parameter with an empty name ("&=x") names nothing: no trailing colon
        raise InvalidArguments(str(location[0]) if location and location[0] != "" else None) from None


def _comma_list(value: object) -> object:
    return [item for item in value.split(",") if item] if isinstance(value, str) else value


def _client_order_id(value: str) -> str:
    """Kraken takes a UUID (with or without hyphens) or up to 18 printable characters."""
    if len(value) in (32, 36):
        try:
            uuid.UUID(value)
            return value
        except ValueError:
            pass
    if not 0 < len(value) <= 18 or not all("!" <= c <= "~" for c in value):
        raise ValueError("cl_ord_id is a UUID or at most 18 printable characters")
    return value


LATEST_EPOCH = 10**11
"""Later than any time the sandbox will see (year 5138): bounds client-given times."""
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
ClientOrderId = Annotated[str, AfterValidator(_client_order_id)]
MAX_AMOUNT = Decimal(10) ** 9
"""Above every price, volume and balance the sandbox takes: its money is Decimal at the
default 28 digits, which hold a cost (volume x price, under 10^18) to 10 decimals.
Past it a number failed to round onto the wire, after the order it named was placed."""
Positive = Annotated[Decimal, Field(gt=0, lt=MAX_AMOUNT, allow_inf_nan=False)]


class _Public(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class _Private(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    nonce: int
    otp: str | None = None


class AssetsParams(_Public):
    asset: str | None = None
    aclass: Literal["currency"] = "currency"


class AssetPairsParams(_Public):
    pair: str | None = None
    info: Literal["info", "leverage", "fees", "margin"] = "info"


class TickerParams(_Public):
    pair: str | None = None


class OHLCParams(_Public):
    pair: str
    interval: int = 1
    since: Annotated[int, Field(ge=0, le=LATEST_EPOCH)] | None = None


class AdvanceParams(_Public):
    seconds: Decimal = Field(ge=0, allow_inf_nan=False)


class BalanceParams(_Private):
    pass


def _price_text(value: object) -> object:
    """Kraken's prices: a number, or relative ("+5", "-1.5%", "#2") as a string."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


PriceText = Annotated[str, BeforeValidator(_price_text), Field(pattern=r"^[+\-#]?[0-9]+(\.[0-9]+)?%?$", max_length=40)]
"""A price as Kraken takes it; `order_prices.resolve` turns it into one."""
Flags = Annotated[tuple[OrderFlag, ...], BeforeValidator(_comma_list)]


class OrderFields(BaseModel):
    """What AddOrder and each order of AddOrderBatch say about one order."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False, defer_build=True)

    type: Side
    ordertype: OrderType
    volume: Positive
    displayvol: Positive | None = None
    price: PriceText | None = None
    price2: PriceText | None = None
    trigger: Literal["last", "index"] = "last"
    """Kraken's trigger reference; the sandbox has one price, which serves as both."""
    leverage: Literal["none", "1", "1:1"] | None = None
    reduce_only: bool = False
    stptype: Literal["cancel-newest", "cancel-oldest", "cancel-both"] = "cancel-newest"
    userref: Int32 | None = None
    cl_ord_id: ClientOrderId | None = None
    oflags: Flags = ()
    timeinforce: TimeInForce = TimeInForce.GTC
    starttm: Annotated[str, BeforeValidator(_price_text)] | None = None
    expiretm: Annotated[str, BeforeValidator(_price_text)] | None = None
    close_ordertype: OrderType | None = Field(None, alias="close[ordertype]")
    close_price: PriceText | None = Field(None, alias="close[price]")
    close_price2: PriceText | None = Field(None, alias="close[price2]")


class AddOrderParams(OrderFields):
    nonce: int
    otp: str | None = None
    pair: str
    asset_class: Literal["currency", "tokenized_asset"] = "currency"
    deadline: str | None = None
    trading_agreement: Literal["agree"] | None = None
    validate_only: bool = Field(False, alias="validate")


class BatchOrderParams(OrderFields):
    pass


class AddOrderBatchParams(_Private):
    pair: str
    orders: Annotated[list[dict[str, object]], Field(min_length=2, max_length=15)]
    asset_class: Literal["currency", "tokenized_asset"] = "currency"
    deadline: str | None = None
    validate_only: bool = Field(False, alias="validate")


class AmendOrderParams(_Private):
    txid: str | None = None
    cl_ord_id: str | None = None
    order_qty: Positive | None = None
    display_qty: Positive | None = None
    limit_price: PriceText | None = None
    trigger_price: PriceText | None = None
    post_only: bool = False
    deadline: str | None = None


class EditOrderParams(_Private):
    txid: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]
    pair: str
    volume: Positive | None = None
    displayvol: Positive | None = None
    price: PriceText | None = None
    price2: PriceText | None = None
    oflags: Flags | None = None
    userref: Int32 | None = None
    deadline: str | None = None
    cancel_response: bool = False
    validate_only: bool = Field(False, alias="validate")


class CancelAllParams(_Private):
    pass


class CancelAllOrdersAfterParams(_Private):
    timeout: Annotated[int, Field(ge=0)]


class CancelOrderBatchParams(_Private):
    orders: Annotated[list[str | int], Field(max_length=50)] = []
    cl_ord_ids: Annotated[list[str], Field(max_length=50)] = []


class BalanceExParams(_Private):
    pass


class GetWebSocketsTokenParams(_Private):
    pass


class TradeBalanceParams(_Private):
    asset: str = "ZUSD"
    aclass: Literal["currency"] = "currency"


class TradesHistoryParams(_Private):
    type: Literal["all", "any position", "closed position", "closing position", "no position"] = "all"
    trades: bool = False
    start: str | None = None
    end: str | None = None
    ofs: int = Field(0, ge=0)
    without_count: bool = False
    consolidate_taker: bool = True
    ledgers: bool = False


class QueryTradesParams(_Private):
    txid: Annotated[list[str], BeforeValidator(_comma_list), Field(min_length=1, max_length=20)]
    trades: bool = False


class DepthParams(_Public):
    pair: str
    count: Annotated[int, Field(ge=1, le=500)] = 100


class TradesParams(_Public):
    pair: str
    since: Annotated[str, BeforeValidator(_price_text), Field(pattern=r"^[0-9]{1,20}$")] | None = None
    count: Annotated[int, Field(ge=1, le=1000)] = 1000


class QueryOrdersParams(_Private):
    txid: Annotated[list[str], BeforeValidator(_comma_list), Field(max_length=50)] | None = None
    trades: bool = False
    userref: Int32 | None = None
    cl_ord_id: str | None = None
    consolidate_taker: bool = True


class OpenOrdersParams(_Private):
    trades: bool = False
    userref: Int32 | None = None
    cl_ord_id: str | None = None


class ClosedOrdersParams(_Private):
    trades: bool = False
    userref: Int32 | None = None
    cl_ord_id: str | None = None
    start: str | None = None
    end: str | None = None
    ofs: int = Field(0, ge=0)
    closetime: Literal["open", "close", "both"] = "both"
    consolidate_taker: bool = True
    without_count: bool = False


class CancelOrderParams(_Private):
    txid: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)] | None = None
    cl_ord_id: str | None = None


RebaseMultiplier = Literal["rebased", "base"]
"""Kraken's xStocks display switch: no tokenized assets are listed, so it changes nothing."""


class LedgersParams(_Private):
    asset: str = "all"
    aclass: str = "currency"
    type: Literal[
        "all",
        "trade",
        "deposit",
        "withdrawal",
        "transfer",
        "margin",
        "adjustment",
        "rollover",
        "credit",
        "settled",
        "staking",
        "dividend",
        "sale",
        "nft_rebate",
    ] = "all"
    start: Annotated[str, BeforeValidator(_price_text)] | None = None
    end: Annotated[str, BeforeValidator(_price_text)] | None = None
    ofs: int = Field(0, ge=0)
    without_count: bool = False
    rebase_multiplier: RebaseMultiplier = "rebased"


class QueryLedgersParams(_Private):
    id: Annotated[list[str], BeforeValidator(_comma_list), Field(min_length=1, max_length=20)]
    trades: bool = False
    rebase_multiplier: RebaseMultiplier = "rebased"


class TradeVolumeParams(_Private):
    pair: Annotated[list[str], BeforeValidator(_comma_list)] | None = None
    fee_info: bool | None = Field(None, alias="fee-info")
    """Kraken's legacy switch, without effect: fees come with `pair`."""
    fee_schedule: bool = False
    rebase_multiplier: RebaseMultiplier = "rebased"


class OpenPositionsParams(_Private):
    txid: Annotated[list[str], BeforeValidator(_comma_list)] | None = None
    docalcs: bool = False
    consolidation: Literal["market"] | None = None
    rebase_multiplier: RebaseMultiplier = "rebased"


class OrderAmendsParams(_Private):
    order_id: str
    rebase_multiplier: RebaseMultiplier = "rebased"


class SpreadParams(_Public):
    pair: str
    since: Annotated[int, Field(ge=0, le=LATEST_EPOCH)] | None = None

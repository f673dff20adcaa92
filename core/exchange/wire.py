"""Pydantic models of Kraken's REST results. Numbers arrive as JSON strings or as
Decimals (the body is parsed with parse_float=Decimal) and stay Decimal."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import AliasPath, BaseModel, ConfigDict, Field, field_validator


class WireModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ServerTime(WireModel):
    unixtime: int


class AssetPair(WireModel):
    altname: str
    wsname: str | None = None  # Kraken documents it as "if available"
    base: str
    quote: str
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int
    ordermin: Decimal
    costmin: Decimal | None = None
    tick_size: Decimal | None = None
    fees: list[tuple[Decimal, Decimal]]  # [volume tier, percent], lowest tier first
    fees_maker: list[tuple[Decimal, Decimal]] = []


class TickerEntry(WireModel):
    a: tuple[Decimal, Decimal, Decimal]  # ask price, whole-lot volume, lot volume
    b: tuple[Decimal, Decimal, Decimal]  # bid
    c: tuple[Decimal, Decimal]  # last trade price, lot volume


OhlcRow = tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, int]
"""time, open, high, low, close, vwap, volume, count."""


class OrderDescription(WireModel):
    order: str


class AddOrderResult(WireModel):
    descr: OrderDescription
    txid: list[str] = []  # absent when the order was only validated


class CancelOrderResult(WireModel):
    count: int


class ExchangeOrder(WireModel):
    """One Kraken order object. Prices Kraken reports as "0" (none set) are None."""

    txid: str
    status: str
    # pydantic-alias: a path into "descr" has no keyword for the plugin to type __init__ with;
    # ExchangeOrder is only built by from_wire/model_validate, and validate_by_name is no
    # way out, it would let Kraken's top-level "price" (the average) stand in for descr.price
    pair: str = Field(validation_alias=AliasPath("descr", "pair"))  # type: ignore[pydantic-alias]  # the altname
    side: str = Field(validation_alias=AliasPath("descr", "type"))  # type: ignore[pydantic-alias]
    ordertype: str = Field(validation_alias=AliasPath("descr", "ordertype"))  # type: ignore[pydantic-alias]
    price: Decimal | None = Field(None, validation_alias=AliasPath("descr", "price"))  # type: ignore[pydantic-alias]
    description: str = Field(validation_alias=AliasPath("descr", "order"))  # type: ignore[pydantic-alias]
    volume: Decimal = Field(validation_alias="vol")
    volume_executed: Decimal = Field(validation_alias="vol_exec")
    cost: Decimal
    fee: Decimal
    avg_price: Decimal = Field(validation_alias="price")
    stop_price: Decimal | None = Field(None, validation_alias="stopprice")
    userref: int | None = None
    cl_ord_id: str | None = None
    refid: str | None = None  # the order that opened this one (a conditional close's parent)
    opentm: float
    closetm: float | None = None
    reason: str | None = None
    trades: list[str] = []

    @field_validator("price", "stop_price", mode="after")
    @classmethod
    def _zero_is_unset(cls, value: Decimal | None) -> Decimal | None:
        return None if value is not None and value.is_zero() else value

    @property
    def limit_price(self) -> Decimal | None:
        """descr.price: the limit price of a limit order, the trigger of a stop or target."""
        return self.price

    @classmethod
    def from_wire(cls, txid: str, raw: Mapping[str, Any]) -> ExchangeOrder:
        """Kraken keys orders by txid instead of carrying it in the object."""
        return cls.model_validate({**raw, "txid": txid})


class OpenOrdersResult(WireModel):
    open: dict[str, dict[str, Any]]


class ClosedOrdersResult(WireModel):
    closed: dict[str, dict[str, Any]]
    count: int

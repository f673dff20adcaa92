"""Kraken's JSON shapes for the sandbox's objects: amounts as strings with the decimals
Kraken gives them, times as epoch numbers, pairs keyed by their Kraken key."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from simulator.exchange import Ticker
from simulator.models import Order, OrderFlag, OrderSpec, OrderType
from simulator.pairs import ASSETS, PAIRS, Asset, FeeTiers, Pair
from simulator.price_path import Bar

Json = dict[str, Any]

_ORDER_WORDS = {
    OrderType.STOP_LOSS: "stop loss",
    OrderType.TAKE_PROFIT: "take profit",
    OrderType.STOP_LOSS_LIMIT: "stop loss",
    OrderType.TAKE_PROFIT_LIMIT: "take profit",
}


def amount(value: Decimal, places: int) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-places)):f}"


def order_description(spec: OrderSpec) -> str:
    """Kraken's one-line summary, e.g. "sell 0.01000000 XBTUSDT @ stop loss 58000.0"."""
    pair = PAIRS[spec.pair]
    volume = amount(spec.volume, pair.lot_decimals)
    head = f"{spec.side} {volume} {pair.altname} @ "
    if spec.ordertype is OrderType.MARKET:
        return head + "market"
    assert spec.price is not None
    price = amount(spec.price, pair.pair_decimals)
    if spec.ordertype is OrderType.LIMIT:
        return head + f"limit {price}"
    text = head + f"{_ORDER_WORDS[spec.ordertype]} {price}"
    if spec.ordertype.limit_after_trigger and spec.price2 is not None:
        text += f" -> limit {amount(spec.price2, pair.pair_decimals)}"
    return text


def describe(spec: OrderSpec) -> Json:
    pair = PAIRS[spec.pair]
    return {
        "pair": pair.altname,
        "type": str(spec.side),
        "ordertype": str(spec.ordertype),
        "price": amount(spec.price or Decimal(0), pair.pair_decimals),
        "price2": amount(spec.price2 or Decimal(0), pair.pair_decimals),
        "leverage": "none",
        "order": order_description(spec),
        "close": "",
    }


def order(value: Order, *, with_trades: bool) -> Json:
    spec = value.spec
    pair = PAIRS[spec.pair]
    stopprice = spec.price if spec.ordertype.is_trigger else None
    limitprice = spec.price2 if spec.ordertype.limit_after_trigger and value.triggered else None
    encoded: Json = {
        "refid": None,
        "userref": spec.userref if spec.userref is not None else 0,
        "status": str(value.status),
        "opentm": _epoch(value.opentm),
        "starttm": 0,
        "expiretm": _epoch(spec.expiretm) if spec.expiretm is not None else 0,
        "descr": describe(spec),
        "vol": amount(spec.volume, pair.lot_decimals),
        "vol_exec": amount(value.vol_exec, pair.lot_decimals),
        "cost": amount(value.cost, pair.cost_decimals),
        "fee": amount(value.fee, pair.cost_decimals),
        "price": amount(value.average_price, pair.pair_decimals),
        "stopprice": amount(stopprice or Decimal(0), pair.pair_decimals),
        "limitprice": amount(limitprice or Decimal(0), pair.pair_decimals),
        "misc": "",
        "oflags": ",".join(spec.oflags) if spec.oflags else str(OrderFlag.FCIQ),
        "reason": value.reason,
    }
    if spec.cl_ord_id is not None:
        encoded["cl_ord_id"] = spec.cl_ord_id
    if value.closetm is not None:
        encoded["closetm"] = _epoch(value.closetm)
    if with_trades and value.trades:
        encoded["trades"] = list(value.trades)
    return encoded


def _epoch(seconds: float) -> float:
    """Kraken's order times: float epoch seconds to a ten-thousandth."""
    return round(float(seconds), 4)


def balances(values: dict[str, Decimal]) -> Json:
    return {asset: amount(value, ASSETS[asset].decimals) for asset, value in values.items()}


def asset(value: Asset) -> Json:
    return {
        "aclass": "currency",
        "altname": value.altname,
        "decimals": value.decimals,
        "display_decimals": value.display_decimals,
        "status": "enabled",
    }


_PAIR_INFO_FIELDS = {
    "leverage": ("leverage_buy", "leverage_sell"),
    "fees": ("fees", "fees_maker", "fee_volume_currency"),
    "margin": ("margin_call", "margin_stop"),
}


def asset_pair(value: Pair, info: str) -> Json:
    full: Json = {
        "altname": value.altname,
        "wsname": value.wsname,
        "aclass_base": "currency",
        "base": value.base,
        "aclass_quote": "currency",
        "quote": value.quote,
        "lot": "unit",
        "cost_decimals": value.cost_decimals,
        "pair_decimals": value.pair_decimals,
        "lot_decimals": value.lot_decimals,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": _fee_tiers(value.fees),
        "fees_maker": _fee_tiers(value.fees_maker),
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": f"{value.ordermin:f}",
        "costmin": f"{value.costmin:f}",
        "tick_size": f"{value.tick_size:f}",
        "status": "online",
    }
    if info == "info":
        return full
    return {name: full[name] for name in _PAIR_INFO_FIELDS[info]}


def _fee_tiers(tiers: FeeTiers) -> list[list[int | float]]:
    # Kraken sends fee tiers as JSON numbers: [[volume, percent], ...]
    return [[int(volume), float(percent)] for volume, percent in tiers]


def ticker(pair: Pair, value: Ticker) -> Json:
    def price(number: Decimal) -> str:
        return amount(number, pair.pair_decimals)

    def volume(number: Decimal) -> str:
        return amount(number, pair.lot_decimals)

    today, day = value.today, value.last_24h
    return {
        "a": [price(value.ask), "1", "1.000"],
        "b": [price(value.bid), "1", "1.000"],
        "c": [price(value.last), volume(pair.ordermin)],
        "v": [volume(today.volume), volume(day.volume)],
        "p": [price(today.vwap), price(day.vwap)],
        "t": [today.count, day.count],
        "l": [price(today.low), price(day.low)],
        "h": [price(today.high), price(day.high)],
        "o": price(today.open),
    }


def candle(pair: Pair, bar: Bar) -> list[Any]:
    def price(number: Decimal) -> str:
        return amount(number, pair.pair_decimals)

    return [bar.time, price(bar.open), price(bar.high), price(bar.low), price(bar.close),
            price(bar.vwap), amount(bar.volume, pair.lot_decimals), bar.count]


def server_time(now: float) -> Json:
    moment = datetime.fromtimestamp(now, UTC)
    return {"unixtime": int(now), "rfc1123": moment.strftime("%a, %d %b %y %H:%M:%S +0000")}


def iso_time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

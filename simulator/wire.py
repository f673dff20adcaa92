"""Kraken's JSON shapes for the sandbox's objects: amounts as strings with the decimals
Kraken gives them, times as epoch numbers, pairs keyed by their Kraken key."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from simulator.accounts import TradeBalance
from simulator.market import Spread, Ticker
from simulator.market_data import Book, BookLevel
from simulator.matching import FeeTier, fee_tier_index
from simulator.models import (
    Amend,
    CloseSpec,
    LedgerEntry,
    Order,
    OrderFlag,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    Trade,
    kraken_id,
)
from simulator.pairs import ASSETS, PAIRS, Asset, FeeTiers, Pair
from simulator.price_path import Bar
from simulator.tape import PublicTrade

Json = dict[str, Any]

_ORDER_WORDS = {
    OrderType.STOP_LOSS: "stop loss",
    OrderType.TAKE_PROFIT: "take profit",
    OrderType.STOP_LOSS_LIMIT: "stop loss",
    OrderType.TAKE_PROFIT_LIMIT: "take profit",
    OrderType.TRAILING_STOP: "trailing stop",
}


_QUANTA = [Decimal(1).scaleb(-places) for places in range(19)]
"""1, 0.1, 0.01, ...: made once, because every number on the wire is rounded to one."""


def amount(value: Decimal, places: int) -> str:
    return f"{value.quantize(_quantum(places)):f}"


def _quantum(places: int) -> Decimal:
    return _QUANTA[places] if 0 <= places < len(_QUANTA) else Decimal(1).scaleb(-places)


def order_description(spec: OrderSpec) -> str:
    """Kraken's one-line summary, e.g. "sell 0.01000000 XBTUSDT @ stop loss 58000.0"."""
    pair = PAIRS[spec.pair]
    volume = amount(spec.volume, pair.lot_decimals)
    return f"{spec.side} {volume} {pair.altname} @ {_terms(pair, spec.ordertype, spec)}"


def close_description(spec: OrderSpec) -> str:
    """Kraken's summary of a conditional close, e.g. "close position @ limit 65000.0"."""
    if spec.close is None:
        return ""
    return f"close position @ {_terms(PAIRS[spec.pair], spec.close.ordertype, spec.close)}"


def _terms(pair: Pair, ordertype: OrderType, spec: OrderSpec | CloseSpec) -> str:
    if ordertype is OrderType.MARKET:
        return "market"
    if ordertype is OrderType.LIMIT:
        return f"limit {_price(pair, spec.price)}"
    if isinstance(spec, OrderSpec) and spec.trailing is not None:
        return f"{_ORDER_WORDS[ordertype]} {_offset(pair, spec)}"
    text = f"{_ORDER_WORDS[ordertype]} {_price(pair, spec.price)}"
    if ordertype.limit_after_trigger and spec.price2 is not None:
        text += f" -> limit {_price(pair, spec.price2)}"
    return text


def _price(pair: Pair, value: Decimal | None) -> str:
    return amount(value or Decimal(0), pair.pair_decimals)


def _offset(pair: Pair, spec: OrderSpec) -> str:
    assert spec.trailing is not None
    if spec.trailing.percent:
        return f"+{amount(spec.trailing.amount, 4)}%"
    return f"+{_price(pair, spec.trailing.amount)}"


def describe(spec: OrderSpec) -> Json:
    pair = PAIRS[spec.pair]
    return {
        "pair": pair.altname,
        "type": str(spec.side),
        "ordertype": str(spec.ordertype),
        "price": _offset(pair, spec) if spec.trailing is not None else _price(pair, spec.price),
        "price2": _price(pair, spec.price2),
        "leverage": "none",
        "order": order_description(spec),
        "close": close_description(spec),
    }


def order(value: Order, *, with_trades: bool) -> Json:
    spec = value.spec
    pair = PAIRS[spec.pair]
    limitprice = spec.price2 if spec.ordertype.limit_after_trigger and value.triggered else None
    encoded: Json = {
        "refid": value.refid,
        "userref": spec.userref if spec.userref is not None else 0,
        "status": str(value.status),
        "opentm": _epoch(value.opentm),
        "starttm": _epoch(spec.starttm) if spec.starttm is not None else 0,
        "expiretm": _epoch(spec.expiretm) if spec.expiretm is not None else 0,
        "descr": describe(spec),
        "vol": amount(spec.volume, pair.lot_decimals),
        "vol_exec": amount(value.vol_exec, pair.lot_decimals),
        "cost": amount(value.cost, pair.cost_decimals),
        "fee": amount(value.fee, pair.cost_decimals),
        "price": amount(value.average_price, pair.pair_decimals),
        "stopprice": _price(pair, value.stop_price),
        "limitprice": _price(pair, limitprice),
        "misc": _misc(value),
        "oflags": ",".join(_flags(spec)),
        "timeinforce": str(spec.timeinforce),
        "reason": value.reason,
        "amended": value.amended,
    }
    if spec.cl_ord_id is not None:
        encoded["cl_ord_id"] = spec.cl_ord_id
    if value.closetm is not None:
        encoded["closetm"] = _epoch(value.closetm)
    if with_trades and value.trades:
        encoded["trades"] = list(value.trades)
    return encoded


def _flags(spec: OrderSpec) -> list[str]:
    """The order's flags, with the fee currency Kraken always states."""
    flags = [str(flag) for flag in spec.oflags]
    if OrderFlag.FCIB not in spec.oflags and OrderFlag.FCIQ not in spec.oflags:
        flags.append(str(OrderFlag.FCIQ))
    return flags


def _misc(value: Order) -> str:
    """Kraken's comma list: "stopped"/"touched" once a trigger fired, "partial" for an
    order that ended filled in part."""
    notes = []
    if value.triggered:
        notes.append("stopped" if value.spec.ordertype.is_stop else "touched")
    if value.status is not OrderStatus.CLOSED and 0 < value.vol_exec < value.spec.volume:
        notes.append("partial")
    return ",".join(notes)


def trade(value: Trade, seed: int, *, with_ledgers: bool = False) -> Json:
    pair = PAIRS[value.pair]
    encoded: Json = {
        "ordertxid": value.ordertxid,
        "postxid": kraken_id("T", seed, f"position:{value.id}"),
        "pair": value.pair,
        "aclass": "currency",
        "time": _epoch(value.time),
        "type": str(value.side),
        "ordertype": str(value.ordertype),
        "price": amount(value.price, pair.pair_decimals),
        "cost": amount(value.cost, pair.cost_decimals),
        "fee": amount(value.fee, pair.cost_decimals),
        "vol": amount(value.vol, pair.lot_decimals),
        "margin": amount(Decimal(0), pair.cost_decimals),
        "leverage": "0",
        "misc": "",
        "trade_id": value.serial,
        "maker": value.maker,
    }
    if with_ledgers:
        encoded["ledgers"] = list(value.ledgers)
    return encoded


def _epoch(seconds: float) -> float:
    """Kraken's order times: float epoch seconds to a ten-thousandth."""
    return round(float(seconds), 4)


def balances(values: dict[str, Decimal]) -> Json:
    return {asset: amount(value, ASSETS[asset].decimals) for asset, value in values.items()}


def extended_balances(values: dict[str, Decimal], holds: dict[str, Decimal]) -> Json:
    """Spot accounts have no credit line: credit and credit_used are zero."""

    def money(asset: str, value: Decimal) -> str:
        return amount(value, ASSETS[asset].decimals)

    return {
        asset: {
            "balance": money(asset, value),
            "credit": money(asset, Decimal(0)),
            "credit_used": money(asset, Decimal(0)),
            "hold_trade": money(asset, holds.get(asset, Decimal(0))),
        }
        for asset, value in values.items()
    }


def ledger_entry(value: LedgerEntry) -> Json:
    places = ASSETS[value.asset].decimals
    return {
        "refid": value.refid,
        "time": _epoch(value.time),
        "type": str(value.type),
        "subtype": "",
        "aclass": "currency",
        "asset": value.asset,
        "amount": amount(value.amount, places),
        "fee": amount(value.fee, places),
        "balance": amount(value.balance, places),
    }


_FEE_PLACES = 4


def fee_tier(value: FeeTier) -> Json:
    """One pair's place on a fee schedule, in percent and US dollars to 4 decimals;
    the next tier's fields are null at the last tier."""

    def number(figure: Decimal | None) -> str | None:
        return None if figure is None else amount(figure, _FEE_PLACES)

    return {
        "fee": number(value.fee),
        "minfee": number(value.minfee),
        "maxfee": number(value.maxfee),
        "nextfee": number(value.nextfee),
        "tiervolume": number(value.tiervolume),
        "nextvolume": number(value.nextvolume),
    }


def fee_schedule(pair: Pair, volume: Decimal) -> Json:
    """The pair's whole schedule, the tier `volume` reaches marked active."""
    active = fee_tier_index(pair.fees, volume)
    return {
        "pair": pair.altname,
        "class": "forex",
        "tiers": [
            {
                "maker_fee": amount(maker, _FEE_PLACES),
                "taker_fee": amount(taker, _FEE_PLACES),
                "min_spot_volume": amount(threshold, _FEE_PLACES),
                **({"active": True} if index == active else {}),
            }
            for index, ((threshold, taker), (_, maker)) in enumerate(zip(pair.fees, pair.fees_maker))
        ],
    }


def order_amend(pair: Pair, value: Amend) -> Json:
    encoded: Json = {
        "amend_id": value.amend_id,
        "amend_type": str(value.kind),
        "order_qty": amount(value.order_qty, pair.lot_decimals),
        "remaining_qty": amount(value.remaining_qty, pair.lot_decimals),
        "post_only": value.post_only,
        "timestamp": int(nanoseconds(value.time)),
    }
    if value.limit_price is not None:
        encoded["limit_price"] = amount(value.limit_price, pair.pair_decimals)
    if value.trigger_price is not None:
        encoded["trigger_price"] = amount(value.trigger_price, pair.pair_decimals)
    return encoded


def spread(pair: Pair, value: Spread) -> list[Any]:
    return [int(value.time), amount(value.bid, pair.pair_decimals), amount(value.ask, pair.pair_decimals)]


def trade_balance(value: TradeBalance) -> Json:
    """Kraken's spot account has no margin positions: no cost, valuation or p&l."""
    places = value.asset.decimals

    def money(number: Decimal) -> str:
        return amount(number, places)

    zero = money(Decimal(0))
    return {
        "eb": money(value.equivalent),
        "tb": money(value.equivalent),
        "m": zero,
        "n": zero,
        "c": zero,
        "v": zero,
        "e": money(value.equivalent),
        "mf": money(value.equivalent),
        "uv": money(value.unexecuted),
    }


def book(pair: Pair, value: Book) -> Json:
    def levels(rows: list[BookLevel]) -> list[list[Any]]:
        return [
            [amount(level.price, pair.pair_decimals), amount(level.volume, pair.lot_decimals), level.timestamp]
            for level in rows
        ]

    return {"asks": levels(value.asks), "bids": levels(value.bids)}


def public_trade(pair: Pair, value: PublicTrade) -> list[Any]:
    return [
        amount(value.price, pair.pair_decimals),
        amount(value.volume, pair.lot_decimals),
        value.time,
        "b" if value.side is Side.BUY else "s",
        "m" if value.market else "l",
        "",
        value.trade_id,
    ]


def nanoseconds(seconds: float) -> str:
    """Kraken's Trades cursor: the last trade's time in nanoseconds, as a string."""
    return str(round(Decimal(repr(seconds)) * 1_000_000_000))


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
    """A pair's AssetPairs entry; the same object on every call (the pairs are fixed:
    the fee schedules alone were 50 numbers to convert per pair and call)."""
    full = _pair_entry(value)
    if info == "info":
        return full
    return {name: full[name] for name in _PAIR_INFO_FIELDS[info]}


@functools.cache
def _pair_entry(value: Pair) -> Json:
    return {
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
    # `amount` inlined: an OHLC answer formats some 1,400 numbers
    tick = _quantum(pair.pair_decimals)
    return [
        bar.time,
        f"{bar.open.quantize(tick):f}",
        f"{bar.high.quantize(tick):f}",
        f"{bar.low.quantize(tick):f}",
        f"{bar.close.quantize(tick):f}",
        f"{bar.vwap.quantize(tick):f}",
        f"{bar.volume.quantize(_quantum(pair.lot_decimals)):f}",
        bar.count,
    ]


def server_time(now: float) -> Json:
    moment = datetime.fromtimestamp(now, UTC)
    return {"unixtime": int(now), "rfc1123": moment.strftime("%a, %d %b %y %H:%M:%S +0000")}


def iso_time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
